"""`mer-tag scan`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def scan(
    paths: Annotated[list[Path], typer.Argument(help="Music folders or files to scan (recursively).", show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="Results file: .csv, .parquet or .jsonl; '-' for JSON lines on stdout.")] = "moods.csv",
    model: Annotated[str, typer.Option(help="Model: 'default' (shipped) or a folder written by `mer-tag train`.")] = "default",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Decoding worker processes (0 = decode in this process).")] = 2,
    force: Annotated[bool, typer.Option(help="Redo every track; earlier results are kept aside as OUT.bak.")] = False,
    timeline: Annotated[bool, typer.Option(help="Add a per-chunk mood timeline (JSON) to each row.")] = False,
    chunk_hop: Annotated[float | None, typer.Option(help="Seconds between 30-second chunk starts (default: the model's, 30).")] = None,
    lyrics_dir: Annotated[Path | None, typer.Option(help="A tree of lyrics files parallel to the music tree.")] = None,
    midi_dir: Annotated[Path | None, typer.Option(help="A tree of MIDI files parallel to the music tree.")] = None,
    tag: Annotated[bool, typer.Option("--tag", help="Also write each mood into its file's tags (see `mer-tag tag`).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    engine: Annotated[str, typer.Option(help="Where models run: 'local' (this machine) or 'ray' (a Ray cluster; "
                                        "needs the ray extra, see docs/scale.md).")] = "local",
    address: Annotated[str | None, typer.Option(help="With --engine ray: the cluster's HOST:PORT "
                                                   "(default: RAY_ADDRESS, else a local Ray on this machine).")] = None,
    precision: Annotated[str, typer.Option(help="Arithmetic of the frozen encoders (MiniLM, the audio front-end): "
                                           "'auto' = bf16 where the CPU has it natively (about 1.8 × faster), "
                                           "else fp32; or force 'fp32' / 'bf16'.")] = "auto",
):
    """Predict the mood of every audio file under PATHS and write one row per file.

    Lyrics are found beside each file (Song.txt / Song.lrc) or inside its tags; MIDI beside it
    (Song.mid). Rows stream out as tracks finish; run the same command again to resume (tracks
    already done and unchanged are skipped).

    Examples:

      mer-tag scan ~/Music                       # writes moods.csv

      mer-tag scan ~/Music -o moods.parquet --timeline

      mer-tag scan ~/Music -o - | jq .cluster_name

      mer-tag scan /shared/Music -o moods.parquet --engine ray --address head:6379
    """
    import sys

    from rich.console import Console

    from mer_tag.bundle import BundleError
    from mer_tag.scan import scan as run_scan
    from mer_tag.sinks import result_format

    console = Console(stderr=True)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]error:[/] no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    try:
        result_format(out)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if engine not in ("local", "ray"):
        console.print(f"[red]error:[/] unknown engine {engine!r}: use local or ray")
        raise typer.Exit(2)
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            console.print("[red]error:[/] --engine ray needs ray: pip install 'mer-tag\\[ray]'")
            raise typer.Exit(2)
    from mer_tag.engines import check_precision

    try:
        check_precision(precision)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if address and engine != "ray":
        console.print("[red]error:[/] --address needs --engine ray")
        raise typer.Exit(2)
    if tag and out == "-":
        console.print("[red]error:[/] --tag needs a results file (--out), not stdout")
        raise typer.Exit(2)
    from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory

    let_idle_threads_sleep()  # this process runs the models (local engine): before torch starts
    reuse_freed_memory()  # this process, and the decode workers it spawns
    try:
        summary = run_scan(paths, out=out, model=model, jobs=jobs, force=force, timeline=timeline,
                           chunk_hop=chunk_hop, lyrics_dir=lyrics_dir, midi_dir=midi_dir, progress=not quiet,
                           engine=engine, address=address, precision=precision)
    except BundleError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not quiet:
        for path, reason in summary.failures[:20]:
            console.print(f"[yellow]failed[/] {path}: {reason}", highlight=False)
        if len(summary.failures) > 20:
            console.print(f"… and {len(summary.failures) - 20} more failures (status=error rows in {out})")
        console.print(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped (already done) "
                      f"in {summary.seconds:.1f} s" + ("" if out == "-" else f" → {out}"))
    if tag:
        from mer_tag.tags import write_tags

        try:
            tagged = write_tags(out)
        except ValueError as exc:  # no rows to tag (an empty folder scanned): the scan's own status stands
            console.print(f"tags: {exc}", highlight=False)
            raise typer.Exit(1 if summary.failed else 0) from None
        if not quiet:
            console.print(f"tags: {tagged.count('tagged')} written, {len(tagged.failed)} failed"
                          + (f"; undo with: mer-tag untag {tagged.journal}" if tagged.journal else ""))
        if tagged.failed:
            raise typer.Exit(1)
    sys.stdout.flush()
    raise typer.Exit(1 if summary.failed else 0)
