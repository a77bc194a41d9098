"""`mer-tag tag` and `mer-tag untag`: write each track's mood into its file, and put the old tags back."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mer_tag.tags import SURE_ENOUGH


def _list_templates(wanted: bool) -> None:
    """--list-templates: every preset, its template, and what it writes for a sample row; then exit."""
    if not wanted:
        return
    from mer_tag.tags import SAMPLE_ROW, TEMPLATE_FIELDS, mood_text, presets

    named = presets()
    name_width, text_width = max(map(len, named)), max(map(len, named.values()))
    typer.echo(f"{'preset':<{name_width}}  {'template':<{text_width}}  example")
    for name, text in named.items():
        typer.echo(f"{name:<{name_width}}  {text:<{text_width}}  {mood_text(text, SAMPLE_ROW)}")
    sample = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in SAMPLE_ROW.items())
    typer.echo(
        f"\nExamples from a row with {sample}.\nFields: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}. "
        "Your own template: mer-tag tag moods.csv -t '{name} ({confidence:.0%})'"
    )
    raise typer.Exit()


def tag(
    results_path: Annotated[
        Path, typer.Argument(metavar="RESULTS", help="Scan results: .csv, .parquet or .jsonl.", show_default=False)
    ],
    template: Annotated[
        str,
        typer.Option(
            "--template",
            "-t",
            metavar="NAME|TEMPLATE",
            help="A preset (see --list-templates: name, cluster, adjectives, name-confidence, ...) "
            "or your own template such as '{name} ({confidence:.0%})'.",
        ),
    ] = "name",
    min_confidence: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Leave tracks below this confidence untagged. The default 0.5 tags about half of a library, the "
            "half the model is surest of: on artists it never heard, those were right 62–65 % of the time, "
            "against 53 % for all tracks (docs/model-card.md). 0 tags every track.",
        ),
    ] = SURE_ENOUGH,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a mood the file already has.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would change; touch nothing.")] = False,
    keep_mtime: Annotated[bool, typer.Option("--keep-mtime", help="Keep each file's modification time.")] = False,
    extra_fields: Annotated[
        bool,
        typer.Option(
            "--extra-fields",
            help="Also write MER_TAG_CLUSTER, MER_TAG_CONFIDENCE, MER_TAG_PROB_1..K and MER_TAG_MODEL.",
        ),
    ] = False,
    journal: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Where to journal the old values (default: RESULTS.tags-TIME.jsonl)."),
    ] = None,
    list_templates: Annotated[
        bool,
        typer.Option(
            "--list-templates",
            is_eager=True,
            callback=_list_templates,
            help="List the preset templates with an example of each, and exit.",
        ),
    ] = False,
) -> None:
    """Write each track's mood into its file, where players read it.

    ID3v2.4 TMOO (TXXX:MOOD in ID3v2.3), Vorbis MOOD, MP4
    ----:com.apple.iTunes:MOOD, APEv2 Mood. Each file is copied, the copy
    written and checked (fields read back, other tags and the audio
    unchanged), then swapped in atomically. A journal keeps what `mer-tag
    untag` needs to put every file back byte for byte. A mood a file already
    has is kept unless --overwrite. RESULTS gets each tagged file's new size
    and mtime, so the next scan skips it.

    Examples:

      mer-tag scan ~/Music -o moods.csv

      mer-tag tag moods.csv --dry-run

      mer-tag tag moods.csv -t adjectives --min-confidence 0.5 --keep-mtime

      mer-tag tag moods.csv -t '{name} ({confidence:.0%})' --extra-fields

      mer-tag tag --list-templates
    """
    from mer_tag.cli._errors import usage_error
    from mer_tag.tags import write_tags

    if journal is not None and journal.is_dir():  # else every file would fail on it, one by one
        raise usage_error(f"--journal {journal} is a folder: give a file, e.g. {journal / 'moods.tags.jsonl'}")
    with _progress("tagging") as report:  # a TemplateError or ResultsError: mer_tag.cli.main's error line
        summary = write_tags(
            results_path,
            template=template,
            min_confidence=min_confidence,
            overwrite=overwrite,
            dry_run=dry_run,
            keep_mtime=keep_mtime,
            extra_fields=extra_fields,
            journal=journal,
            progress=report,
        )
    _print_summary(summary, listed="would tag", dry_run=dry_run, min_confidence=min_confidence)


def untag(
    journal_path: Annotated[
        Path,
        typer.Argument(
            metavar="JOURNAL", help="A journal written by `mer-tag tag` (RESULTS.tags-TIME.jsonl).", show_default=False
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be restored; touch nothing.")] = False,
    keep_mtime: Annotated[bool, typer.Option("--keep-mtime", help="Keep each file's modification time.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Restore fields even where they were edited since tagging.")
    ] = False,
    results: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="The results file to give the restored files' new size and mtime "
            "(default: the one the journal names).",
        ),
    ] = None,
) -> None:
    """Put back every file a `mer-tag tag` run changed, byte for byte.

    A file untouched since tagging is rebuilt exactly as it was from the
    journal; one changed since (another tagger saved it) gets its old fields
    back and is listed as not byte for byte. Files are restored newest
    change first, through the same copy, check and atomic swap. A file
    whose mood was edited since tagging is left alone and reported, unless
    --force. The results file the journal names gets the restored files'
    new size and mtime, so the next scan skips them.

    Examples:

      mer-tag untag moods.csv.tags-20250101-120000.jsonl --dry-run

      mer-tag untag moods.csv.tags-20250101-120000.jsonl
    """
    from mer_tag.cli._errors import usage_error
    from mer_tag.tags import untag as untag_files

    if results is not None and not results.exists():  # else the files are restored and then it is found out
        raise usage_error(f"--results: no results file at {results}")

    with _progress("restoring") as report:  # a JournalError: mer_tag.cli.main's error line
        summary = untag_files(
            journal_path, dry_run=dry_run, keep_mtime=keep_mtime, force=force, results=results, progress=report
        )
    _print_summary(summary, listed="would restore", dry_run=dry_run, noun="file")


@contextmanager
def _progress(verb: str):
    """A progress bar on stderr when it is a terminal; yields the library's progress callback."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(verb, total=None)
        yield lambda done, total, result: bar.update(task, completed=done, total=total)


# How each action reads after a count ("102 tracks tagged"), in the order the summary gives them.
ACTION_WORDS = {
    "tagged": "tagged",
    "would tag": "would be tagged",
    "restored": "restored byte for byte",
    "would restore": "would be restored",
    "fields restored": "with only their fields restored (changed since tagging: not byte for byte)",
    "unchanged": "unchanged (nothing to change)",
    "failed": "failed (each named above)",
}
NOT_TAGGED = ("skipped", "kept")  # the actions the "not tagged" lines break down by their reason


def _reasons(min_confidence: float) -> dict[str, str]:
    """Why tracks were not tagged, each with how to include them (tags.outcome's reasons)."""
    from mer_tag.tags.outcome import BELOW_CONFIDENCE, FAILED_IN_SCAN, HAS_A_MOOD, NO_PREDICTION

    return {
        BELOW_CONFIDENCE: f"below the {min_confidence:g} confidence threshold (--min-confidence 0 tags them too)",
        FAILED_IN_SCAN: "failed in the scan (mer-tag scan --retry-failed tries them again; then tag again)",
        NO_PREDICTION: "with no prediction in their row (mer-tag scan --force redoes every track)",
        HAS_A_MOOD: "already had a mood of their own (--overwrite replaces it)",
    }


def _print_summary(summary, listed: str, dry_run: bool, noun: str = "track", min_confidence: float = 0.0) -> None:
    """What a dry run would change, each failure and each file not restored byte for byte on one line (sorted
    by path), then the counts in words, what was not tagged and why (with how to include it), temp copies
    cleared, results updated, and how to undo; exit 1 on failures."""
    from collections import Counter

    from rich.console import Console
    from rich.markup import escape

    from mer_tag.report.text import plural

    console = Console()
    for result in sorted(summary.results, key=lambda r: r.path):
        if result.action == listed:
            console.print(f"{result.path}: {result.detail}", markup=False, highlight=False, soft_wrap=True)
        elif result.action in ("failed", "fields restored"):
            colour = "red" if result.action == "failed" else "yellow"
            console.print(
                f"[{colour}]{result.action}[/] {escape(result.path)}: {escape(result.detail)}",
                highlight=False,
                soft_wrap=True,
            )
    counts = Counter(r.action for r in summary.results)
    for action, words in ACTION_WORDS.items():
        if counts[action]:
            style = "red" if action == "failed" else None
            console.print(f"{plural(counts[action], noun)} {words}", style=style, markup=False, highlight=False)
    not_tagged = [r for r in summary.results if r.action in NOT_TAGGED]
    if not_tagged:
        console.print(f"{plural(len(not_tagged), noun)} not tagged:", markup=False, highlight=False)
        reasons = _reasons(min_confidence)
        by_reason = Counter(r.why for r in not_tagged)
        width = len(f"{max(by_reason.values()):,}")
        for why, count in by_reason.most_common():
            console.print(f"  {count:>{width},} {reasons.get(why, why)}", markup=False, highlight=False, soft_wrap=True)
    if not summary.results:
        console.print("nothing to do")
    if summary.cleared:
        verb = "would remove" if dry_run else "removed"
        console.print(
            f"{verb} {plural(len(summary.cleared), 'temp file')} an interrupted mer-tag run left "
            "(.NAME.XXXXXXXX.mer-tag.EXT)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for results, rows in summary.restamped.items():
        if not rows:  # none was current (already stale): nothing to say
            continue
        console.print(
            f"{results}: {plural(rows, 'row')} given their file's new size and mtime (the next scan skips them)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for note in summary.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    if summary.journal and listed == "would tag":
        console.print(
            f"journal: {summary.journal}\nundo with: mer-tag untag {summary.journal}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if summary.failed:
        raise SystemExit(1)
