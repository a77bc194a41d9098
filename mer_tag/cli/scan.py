"""`mer-tag scan`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mer_tag._process import MAX_JOBS


def scan(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH", show_default=False, help="Music folders or files (folders are searched through)."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", metavar="FILE", help="Results file: .csv, .parquet or .jsonl; '-' prints JSON lines instead."
        ),
    ] = "moods.csv",
    model: Annotated[
        str,
        typer.Option(metavar="NAME|FOLDER", help="'default' (the one shipped) or a folder written by `mer-tag train`."),
    ] = "default",
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            max=MAX_JOBS,
            help="Processes reading audio files beside the one that listens (0 = none: slower, less memory).",
        ),
    ] = 2,
    force: Annotated[
        bool, typer.Option("--force", help="Redo every track; the earlier results are kept as FILE.bak.")
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Try again the tracks that failed before, even if their files have not changed."
        ),
    ] = False,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline",
            help="Also say how the mood moves through each song: a mood for every 30 seconds, in a 'timeline' column.",
        ),
    ] = False,
    chunk_hop: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            min=0.5,
            help="Seconds from one 30-second stretch to the next (default 30 for the shipped model; 15 makes "
            "them overlap, for twice the work): the stretches each song is judged on, and with --timeline its steps.",
        ),
    ] = None,
    lyrics_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="Lyrics kept apart from the music, in the same folder layout (Artist/Song.txt for Artist/Song.mp3).",
        ),
    ] = None,
    midi_dir: Annotated[
        Path | None,
        typer.Option(metavar="FOLDER", help="MIDI files kept apart from the music, in the same folder layout."),
    ] = None,
    tag: Annotated[
        bool,
        typer.Option(
            "--tag",
            help="Also write each mood into its file's tags, as `mer-tag tag` does by default (tracks below 0.5 "
            "confidence left untagged).",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors: no progress, no summary.")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            metavar="local|ray",
            help="Where the listening runs: 'local' (this computer) or 'ray' (several computers "
            "joined in a Ray cluster; needs `pip install 'mer-tag\\[ray]'`, see docs/scale.md).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="With --engine ray: the cluster to use (default: RAY_ADDRESS, else one started on this computer).",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            metavar="auto|fp32|bf16",
            help="How finely the parts that turn sound and words into numbers calculate: 'auto' uses the faster 16-bit "
            "'bf16' where the processor does it natively (about 1.8 × faster, the same moods in practice), else "
            "the full 32-bit 'fp32'.",
        ),
    ] = "auto",
):
    """Listen to every song under PATH and write its mood to a results file, one row per song.

    Lyrics are read from a file beside each song (Song.txt or Song.lrc) or from its tags, and MIDI
    from Song.mid beside it. Rows are written as songs finish, so an interrupted scan loses nothing:
    run the same command again and it carries on. Songs already done, and songs that failed, are
    skipped while their files are unchanged (--retry-failed tries the failed ones again).

    Exit status: 0 when every song has a mood; 1 while any song scanned is failing (this run's
    failures, or earlier ones whose files are unchanged); 2 for a mistake in the command, and when
    PATH holds no audio file at all.

    Examples:

      mer-tag scan ~/Music                            # writes moods.csv

      mer-tag scan ~/Music -o moods.parquet --timeline

      mer-tag scan ~/Music -o - | jq .cluster_name

      mer-tag scan ~/Music --retry-failed             # try the broken files again

      mer-tag scan /shared/Music -o moods.parquet --engine ray --address head:6379
    """
    import sys

    from mer_tag.cli._errors import stderr_console, usage_error
    from mer_tag.models.precision import check as check_precision
    from mer_tag.scan import scan as run_scan

    _check_arguments(paths, out, engine, address, tag, lyrics_dir, midi_dir)
    try:
        check_precision(precision)
    except ValueError as exc:
        raise usage_error(exc) from None
    from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory

    let_idle_threads_sleep()  # this process runs the models (local engine, a Ray it starts): before torch starts
    reuse_freed_memory()  # this process, and the decode workers it spawns
    console = stderr_console()
    summary = run_scan(  # a results file or a model that will not do: one line, exit 2 (mer_tag.cli.main)
        paths,
        out=out,
        model=model,
        jobs=jobs,
        force=force,
        retry_failed=retry_failed,
        timeline=timeline,
        chunk_hop=chunk_hop,
        lyrics_dir=lyrics_dir,
        midi_dir=midi_dir,
        progress=not quiet,
        engine=engine,
        address=address,
        precision=precision,
    )
    if not quiet:
        _print_summary(console, summary, out)
    code = 1 if summary.failing else 0
    if tag:
        code = max(code, _tag(console, out, quiet))
    sys.stdout.flush()
    raise typer.Exit(code)


def _check_arguments(paths, out, engine, address, tag, lyrics_dir, midi_dir) -> None:
    """Every mistake that needs nothing loaded, each a one-line usage error, before any work starts."""
    import importlib.util

    from mer_tag.cli._errors import usage_error
    from mer_tag.engines import ENGINES
    from mer_tag.scan import check_out
    from mer_tag.sources.audio import AUDIO_EXTENSIONS

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise usage_error(f"no such file or folder: {', '.join(missing)}")
    not_audio = [str(p) for p in paths if p.is_file() and p.suffix.lower() not in AUDIO_EXTENSIONS]
    if not_audio:
        raise usage_error(
            f"not an audio file: {', '.join(not_audio)} (mer-tag reads {', '.join(sorted(AUDIO_EXTENSIONS))} files)"
        )
    for option, folder in (("--lyrics-dir", lyrics_dir), ("--midi-dir", midi_dir)):
        if folder is not None and not folder.is_dir():
            raise usage_error(f"{option}: no such folder: {folder}")
    if engine not in ENGINES:
        raise usage_error(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise usage_error("--engine ray needs ray: pip install 'mer-tag[ray]'")
    if address and engine != "ray":
        raise usage_error("--address needs --engine ray")
    if tag and out == "-":
        raise usage_error("--tag needs a results file (--out), not stdout")
    check_out(out)  # ResultsError: one line, exit 2 (mer_tag.cli.main)


def _print_summary(console, summary, out: str) -> None:
    """This run's failures (one line each, never wrapped: grep finds a path and its reason), then one line
    of counts."""
    from rich.markup import escape

    for path, reason in summary.failures[:20]:
        console.print(f"[yellow]failed[/] {escape(path)}: {escape(str(reason))}", highlight=False)
    if len(summary.failures) > 20:
        console.print(
            f"… and {len(summary.failures) - 20} more failures (status=error rows in {escape(out)})", highlight=False
        )
    counts = [f"{summary.ok} ok", f"{summary.failed} failed", f"{summary.skipped} skipped (already done)"]
    if summary.still_failing:
        counts.append(
            f"{summary.still_failing} still failing (unchanged since they failed; --retry-failed tries them again)"
        )
    console.print(
        ", ".join(counts) + f" in {summary.seconds:.1f} s" + ("" if out == "-" else f" → {escape(out)}"),
        highlight=False,
    )
    for path in summary.empty:  # one PATH of several held nothing to scan: a typo, an unmounted disk
        console.print(f"[yellow]warning[/]: no audio files in {escape(path)}", highlight=False)
    for line in summary.unmet:  # an option the rows already done do not reflect, and how to get it
        console.print(f"[yellow]note[/]: {escape(line)}", highlight=False)


def _tag(console, out: str, quiet: bool) -> int:
    """--tag: write the moods into the files; the exit status this adds (1 when a file could not be tagged)."""
    from mer_tag.errors import MerTagError
    from mer_tag.tags import SURE_ENOUGH, write_tags

    try:
        tagged = write_tags(out, min_confidence=SURE_ENOUGH)
    except MerTagError as exc:  # no rows to tag (an empty folder scanned): the scan's own status stands
        console.print(f"tags: {exc}", highlight=False)
        return 0
    if not quiet:
        from mer_tag.report.text import plural
        from mer_tag.tags.outcome import BELOW_CONFIDENCE

        unsure = sum(r.why == BELOW_CONFIDENCE for r in tagged.results)
        console.print(
            f"tags: {plural(tagged.count('tagged'), 'track')} tagged, {len(tagged.failed):,} failed"
            + (
                f", {unsure:,} below {SURE_ENOUGH:g} confidence left untagged "
                f"(mer-tag tag {out} --min-confidence 0 tags them)"
                if unsure
                else ""
            )
            + (f"; undo with: mer-tag untag {tagged.journal}" if tagged.journal else ""),
            highlight=False,
            markup=False,
        )
    return 1 if tagged.failed else 0
