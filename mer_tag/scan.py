"""`mer-tag scan`: walk a library, skip what an earlier run already did, predict the rest, stream rows out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ScanSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def scan(paths: list[str | Path], out: str | Path = "moods.csv", model: str | Path = "default", jobs: int = 2,
         force: bool = False, timeline: bool = False, chunk_hop: float | None = None,
         lyrics_dir: str | Path | None = None, midi_dir: str | Path | None = None, progress: bool = True,
         on_row=None, engine: str = "local", address: str | None = None, precision: str = "auto") -> ScanSummary:
    """Predict a mood for every audio file under `paths`, writing one row per file to `out`.

    `engine`: 'local' (this machine) or 'ray' (a Ray cluster at `address`; mer_tag.engines.ray_engine).
    `precision`: of the frozen encoders, 'auto' (bf16 where the CPU has it natively), 'fp32' or 'bf16'.
    """
    import dataclasses

    from mer_tag import engines
    from mer_tag.predict import (check_precision, let_idle_threads_sleep, model_threads, reuse_freed_memory,
                                  start_decode_pool)

    check_precision(precision)  # an unknown name fails here, before any work (and before torch starts)
    engines.check(engine)
    started = time.time()
    let_idle_threads_sleep()  # before torch starts
    reuse_freed_memory()  # before the workers spawn: they inherit it
    # Decode workers spawn and import their stack while this process imports torch (about 1 s).
    pool = start_decode_pool(jobs) if engine == "local" and jobs > 0 else None
    try:
        import torch

        from mer_tag import bundle as bundle_io

        torch.set_num_threads(model_threads(jobs))
        bundle = bundle_io.load(model)
        if chunk_hop:
            bundle.audio_config = dataclasses.replace(bundle.audio_config, chunk_hop_seconds=float(chunk_hop))
        summary = _scan_tracks(paths, out, bundle, model, jobs, force, timeline, lyrics_dir, midi_dir, progress,
                               on_row, engine, address, precision, pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # already done unless the scan stopped early
    summary.seconds = time.time() - started
    return summary


def _scan_tracks(paths, out, bundle, model, jobs, force, timeline, lyrics_dir, midi_dir, progress, on_row,
                 engine, address, precision, pool) -> ScanSummary:
    """The walk, the resume decision, and the rows of the tracks still to do, written as they come."""
    from mer_tag import engines
    from mer_tag.library import walk
    from mer_tag.predict import columns

    tracks = list(walk(paths, lyrics_dir=lyrics_dir, midi_dir=midi_dir))
    summary = ScanSummary()
    previous = None if str(out) == "-" else _previous_rows(Path(out), force)
    done = _unchanged_ok(previous, bundle.ref) if previous is not None else {}
    todo = [t for t in tracks if done.get(str(t.path)) != _identity(t.path)]
    summary.skipped = len(tracks) - len(todo)
    keep = None
    if previous is not None and previous.height:
        import polars as pl

        keep = previous.filter(~pl.col("path").is_in([str(t.path) for t in todo]))
    writer = engines.open_writer(out, columns(len(bundle.labels), timeline), keep=keep,
                                 redo={str(t.path) for t in todo}, engine=engine)
    bar = _progress_bar(progress, len(todo))
    try:
        for row in engines.predict_rows(engine, todo, bundle, model, jobs=jobs, timeline=timeline, address=address,
                                       precision=precision, pool=pool):
            writer.write(row)
            if row["status"] == "ok":
                summary.ok += 1
            else:
                summary.failed += 1
                summary.failures.append((row["path"], row["error"]))
            if on_row:
                on_row(row)
            bar.advance()
    finally:
        bar.stop()
        writer.close()
    return summary


def _identity(path: Path) -> tuple[int, float] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime


def _previous_rows(out: Path, force: bool):
    """Rows of an earlier run, or None. With `force` they are kept aside as `<out>.bak`, never deleted."""
    import polars as pl

    from mer_tag.sinks import journal_path, read_results

    if not out.exists() and not journal_path(out).exists():
        return None
    if not force:
        return read_results(out)
    if out.exists() and read_results(out).height:
        _move_aside(out)
    if journal_path(out).exists():
        _move_aside(journal_path(out))  # a killed run's rows (Parquet): kept aside like the results
    return pl.DataFrame()


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
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

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
