"""`mer-tag scan`: walk a library, skip what an earlier run already did, predict the rest, stream rows out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ScanSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass
class ScanPlan:
    """What a scan will do: every track found, those still to do, and the earlier rows it keeps."""

    tracks: list
    todo: list
    keep: object = None  # a polars DataFrame of earlier rows kept as they are, or None
    set_aside: bool = False  # --force: the earlier results move to `<out>.bak` before the first new row


def scan(paths: Sequence[str | Path], out: str | Path = "moods.csv", model: str | Path = "default", jobs: int = 2,
         force: bool = False, timeline: bool = False, chunk_hop: float | None = None,
         lyrics_dir: str | Path | None = None, midi_dir: str | Path | None = None, progress: bool = True,
         on_row=None, engine: str = "local", address: str | None = None, precision: str = "auto") -> ScanSummary:
    """Predict a mood for every audio file under `paths`, writing one row per file to `out`.

    `engine`: 'local' (this machine) or 'ray' (a Ray cluster at `address`; mer_tag.engines.ray).
    `precision`: of the frozen encoders, 'auto' (bf16 where the CPU has it natively), 'fp32' or 'bf16'.
    The process is left as it was found: the CLI, not this function, tunes threads and memory.
    """
    from mer_tag import bundle as bundle_io
    from mer_tag import engines

    started = time.time()
    runner = engines.create(engine, model, jobs=jobs, timeline=timeline, precision=precision, chunk_hop=chunk_hop,
                            address=address)  # reads the card only; unknown names fail here, before any work
    card = bundle_io.read_card(model)  # its name@version tells which earlier rows still stand
    plan = _plan(paths, out, card.ref, force, lyrics_dir, midi_dir)
    try:
        # A resumed scan with nothing new starts no engine: no workers, no torch, no weights; the results
        # are still finished (a killed run's journal folded in).
        if plan.todo:
            runner.start()  # a model that cannot load fails here, before the results are touched
        rows = runner.rows(plan.todo) if plan.todo else iter(())
        summary = _write_rows(plan, out, card.labels, timeline, rows, progress, on_row, runner.parquet_parts)
    finally:
        runner.close()
    summary.seconds = time.time() - started
    return summary


def _plan(paths, out, model_ref: str, force: bool, lyrics_dir, midi_dir) -> ScanPlan:
    """The walk and the resume decision: a track is skipped when this model finished it ok and the file
    is unchanged since (size and modification time); with `force`, nothing is skipped."""
    from mer_tag.library import walk

    tracks = list(walk(paths, lyrics_dir=lyrics_dir, midi_dir=midi_dir))
    if force:
        return ScanPlan(tracks, tracks, set_aside=str(out) != "-")
    previous = None if str(out) == "-" else _previous_rows(Path(out))
    done = _unchanged_ok(previous, model_ref) if previous is not None else {}
    todo = [t for t in tracks if done.get(str(t.path)) != _identity(t.path)]
    keep = None
    if previous is not None and previous.height:
        import polars as pl

        keep = previous.filter(~pl.col("path").is_in([str(t.path) for t in todo]))
    return ScanPlan(tracks, todo, keep)


def _write_rows(plan, out, labels, timeline, rows, progress, on_row, parquet_parts: bool) -> ScanSummary:
    """Stream `rows` (those of `plan.todo`) into `out` beside the kept earlier rows, counting as they come.
    The results are opened (earlier rows set aside or the ones to redo taken out) only when the first row
    arrives, or when it is clear none will: a scan that fails before its first row leaves them untouched."""
    from mer_tag import sinks

    def open_writer():
        if plan.set_aside:
            _set_aside(Path(out))
        return sinks.open_writer(out, sinks.columns(len(labels), timeline), keep=plan.keep,
                                 redo={str(t.path) for t in plan.todo}, parts=parquet_parts)

    summary = ScanSummary(skipped=len(plan.tracks) - len(plan.todo))
    writer = None
    bar = _progress_bar(progress, len(plan.todo))
    try:
        for row in rows:
            writer = writer or open_writer()
            writer.write(row)
            if row["status"] == "ok":
                summary.ok += 1
            else:
                summary.failed += 1
                summary.failures.append((row["path"], row["error"]))
            if on_row:
                on_row(row)
            bar.advance()
        writer = writer or open_writer()
    finally:
        bar.stop()
        if writer is not None:
            writer.close()
    return summary


def _identity(path: Path) -> tuple[int, float] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime


def _previous_rows(out: Path):
    """Rows of an earlier run (its results and a killed run's journal), or None."""
    from mer_tag.sinks import journal_path, read_results

    if not out.exists() and not journal_path(out).exists():
        return None
    return read_results(out)


def _set_aside(out: Path) -> None:
    """--force: earlier results (and a killed run's journal) are kept as `<out>.bak`, never deleted."""
    from mer_tag.sinks import journal_path, read_results

    if out.exists() and read_results(out).height:  # an empty file is simply rewritten
        _move_aside(out)
    if journal_path(out).exists():
        _move_aside(journal_path(out))  # a killed run's rows (Parquet): kept aside like the results


def _move_aside(out: Path) -> None:
    """`out` → `<out>.bak`, replacing an older backup (a file, a journal, or a Parquet folder from `--engine ray`)."""
    import shutil

    backup = out.with_name(out.name + ".bak")
    if backup.is_dir():
        shutil.rmtree(backup)  # a rename cannot replace a folder
    elif out.is_dir():
        backup.unlink(missing_ok=True)  # nor put a folder where a file is
    out.replace(backup)


def _unchanged_ok(previous, model_ref: str) -> dict[str, tuple[int, float]]:
    """path → (size, mtime) of rows that this model finished ok: those tracks are skipped if the file is
    unchanged. Rows of another model (another name or version) are redone, so one file never mixes models."""
    if previous.height == 0 or "status" not in previous.columns:
        return {}
    ok = previous.filter(previous["status"] == "ok")
    if "model" in ok.columns:
        ok = ok.filter(ok["model"] == model_ref)
    return {p: (int(s), float(m)) for p, s, m in zip(ok["path"], ok["size"], ok["mtime"]) if s is not None and m is not None}


class _progress_bar:
    """A rich progress bar on stderr (tracks/s, ETA); silent when stderr is not a terminal."""

    def __init__(self, enabled: bool, total: int):
        import sys

        self.progress = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            class Rate(TextColumn):
                def render(self, task):
                    speed = task.finished_speed or task.speed
                    return f"{speed:.2f} tracks/s" if speed else "… tracks/s"

            self.progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), Rate(""),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.task = self.progress.add_task("scan", total=total)
            self.progress.start()

    def advance(self) -> None:
        if self.progress:
            self.progress.advance(self.task)

    def stop(self) -> None:
        if self.progress:
            self.progress.stop()
