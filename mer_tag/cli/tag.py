"""`mer-tag tag` and `mer-tag untag`: write each track's mood into its file, and put the old tags back."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer


def tag(
    results_path: Annotated[Path, typer.Argument(metavar="RESULTS", help="Scan results: .csv, .parquet or .jsonl.", show_default=False)],
    template: Annotated[str, typer.Option("--template", "-t", help="A preset from presets/tag-templates.toml (name, cluster, adjectives, name-confidence, ...) or a template such as '{name} ({confidence:.0%})'.")] = "name",
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Leave tracks below this confidence untagged.")] = 0.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a mood the file already has.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would change; touch nothing.")] = False,
    keep_mtime: Annotated[bool, typer.Option("--keep-mtime", help="Keep each file's modification time.")] = False,
    extra_fields: Annotated[bool, typer.Option("--extra-fields", help="Also write MER_TAG_CLUSTER, MER_TAG_CONFIDENCE, MER_TAG_PROB_1..K and MER_TAG_MODEL.")] = False,
    journal: Annotated[Optional[Path], typer.Option(help="Where to journal the old values (default: RESULTS.tags-TIME.jsonl).")] = None,
) -> None:
    """Write each track's mood into its file, where players read it.

    ID3v2.4 TMOO (TXXX:MOOD in ID3v2.3), Vorbis MOOD, MP4
    ----:com.apple.iTunes:MOOD, APEv2 Mood. Each file is copied, the copy
    written and checked (fields read back, other tags and the audio
    unchanged), then swapped in atomically. Old values go to a journal that
    `mer-tag untag` replays. A mood a file already has is kept unless
    --overwrite.

    Examples:

      mer-tag tag moods.csv --dry-run

      mer-tag tag moods.csv -t adjectives --min-confidence 0.5 --keep-mtime

      mer-tag tag moods.csv -t '{name} ({confidence:.0%})' --extra-fields
    """
    from mer_tag.tags import write_tags

    with _progress("tagging") as report:
        try:
            summary = write_tags(results_path, template=template, min_confidence=min_confidence, overwrite=overwrite,
                                 dry_run=dry_run, keep_mtime=keep_mtime, extra_fields=extra_fields, journal=journal,
                                 progress=report)
        except ValueError as exc:
            _usage_error(exc)
    _print_summary(summary, listed="would tag")


def untag(
    journal_path: Annotated[Path, typer.Argument(metavar="JOURNAL", help="A journal written by `mer-tag tag`.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be restored; touch nothing.")] = False,
    keep_mtime: Annotated[bool, typer.Option("--keep-mtime", help="Keep each file's modification time.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Restore fields even where they were edited since tagging.")] = False,
) -> None:
    """Put back every tag a `mer-tag tag` run changed, exactly as it was.

    Fields that were absent are removed again. Files are restored newest
    change first, through the same copy, check and atomic swap. A file
    whose mood was edited since tagging is left alone and reported, unless
    --force.

    Examples:

      mer-tag untag moods.csv.tags-20250101-120000.jsonl --dry-run

      mer-tag untag moods.csv.tags-20250101-120000.jsonl
    """
    from mer_tag.tags import untag as untag_files

    with _progress("restoring") as report:
        try:
            summary = untag_files(journal_path, dry_run=dry_run, keep_mtime=keep_mtime, force=force, progress=report)
        except ValueError as exc:
            _usage_error(exc)
    _print_summary(summary, listed="would restore")


@contextmanager
def _progress(verb: str):
    """A progress bar on stderr when it is a terminal; yields the library's progress callback."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(verb, total=None)
        yield lambda done, total, result: bar.update(task, completed=done, total=total)


def _usage_error(exc: Exception) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
    raise SystemExit(2)  # not typer.Exit: main() runs click with standalone_mode=False, which returns its code


def _print_summary(summary, listed: str) -> None:
    """What a dry run would change, each failure on one line, the counts, and how to undo; exit 1 on failures."""
    from collections import Counter

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for result in summary.results:
        if result.action == listed:
            console.print(f"{result.path}: {result.detail}", markup=False, highlight=False, soft_wrap=True)
    for result in summary.failed:
        console.print(f"[red]failed[/] {escape(result.path)}: {escape(result.detail)}", highlight=False, soft_wrap=True)
    table = Table(show_header=False, box=None)
    for action, count in Counter(r.action for r in summary.results).most_common():
        table.add_row(action, str(count), style="red" if action == "failed" else None)
    console.print(table if table.row_count else "nothing to do")
    if summary.journal and listed == "would tag":
        console.print(f"journal: {summary.journal}\nundo with: mer-tag untag {summary.journal}",
                      markup=False, highlight=False, soft_wrap=True)
    if summary.failed:
        raise SystemExit(1)
