"""`mer-tag scan`: walk a library, skip what an earlier run already did, predict the rest, stream rows out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer_tag.errors import MerTagError
from mer_tag.sinks.paths import path_text
from mer_tag.sinks.results import ResultsError

__all__ = ["NoAudioError", "ResultsError", "ScanPlan", "ScanSummary", "check_out", "scan"]


class NoAudioError(MerTagError):
    """Nothing to scan: no audio file in any PATH given (an empty folder, a file of another kind)."""


@dataclass
class ScanSummary:
    ok: int = 0
    failed: int = 0  # failed in this run
    skipped: int = 0  # done by an earlier run and unchanged since, still failing ones included
    still_failing: int = 0  # of the skipped: failed in an earlier run, unchanged since, not tried again
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run's
    unmet: list[str] = field(default_factory=list)  # options that did not reach the rows already done, and why
    empty: list[str] = field(default_factory=list)  # paths given that hold no audio file (others did)

    @property
    def failing(self) -> int:
        """Tracks of this scan whose row says error: this run's failures and the earlier ones left alone."""
        return self.failed + self.still_failing


@dataclass
class ScanPlan:
    """What a scan will do: every track found, those still to do, and the earlier rows it keeps."""

    tracks: list
    todo: list
    keep: object = None  # a polars DataFrame of earlier rows kept as they are, or None
    still_failing: int = 0  # tracks skipped whose earlier row is a failure (the file unchanged since)
    set_aside: bool = False  # --force: the earlier results move to `<out>.bak` before the first new row
    unmet: list[str] = field(default_factory=list)  # options the skipped tracks' rows do not reflect (unmet_options)
    empty: list[str] = field(default_factory=list)  # paths given that hold no audio file


def scan(
    paths: Sequence[str | Path],
    out: str | Path = "moods.csv",
    model: str | Path = "default",
    jobs: int = 2,
    force: bool = False,
    timeline: bool = False,
    chunk_hop: float | None = None,
    lyrics_dir: str | Path | None = None,
    midi_dir: str | Path | None = None,
    progress: bool = True,
    on_row=None,
    engine: str = "local",
    address: str | None = None,
    precision: str = "auto",
    retry_failed: bool = False,
) -> ScanSummary:
    """Predict a mood for every audio file under `paths`, writing one row per file to `out`.

    `engine`: 'local' (this machine) or 'ray' (a Ray cluster at `address`; mer_tag.engines.ray).
    `precision`: of the frozen encoders, 'auto' (bf16 where the CPU has it natively), 'fp32' or 'bf16'.
    `retry_failed`: try again tracks an earlier run failed on even if their file is unchanged.
    `progress`: say on stderr what is happening (mer_tag.progress). ResultsError when `out` cannot take
    the rows (checked before anything loads); the process is left as it was found: the CLI, not this
    function, tunes threads and memory.
    """
    from mer_tag import engines
    from mer_tag.progress import ScanFeedback

    started = time.monotonic()  # one clock for the bar and the summary
    check_out(out)
    settings = engines.EngineSettings(model, jobs=jobs, timeline=timeline, precision=precision, chunk_hop=chunk_hop)
    runner = engines.create(engine, settings, ray=_ray_options(engine, address))  # reads the card only: no torch
    card = runner.card  # its name@version tells which earlier rows still stand
    feedback = ScanFeedback(progress, started, rows_on_stdout=str(out) == "-")
    try:
        feedback.stage("finding tracks…")
        plan = _plan(paths, out, card.ref, force, lyrics_dir, midi_dir, retry_failed, found=feedback.found)
        if not plan.tracks:  # before the results are touched: an empty folder or an unmounted disk
            raise NoAudioError(f"no audio files in {', '.join(map(str, paths))} ({_what_is_scanned()})")
        hop = chunk_hop or card.audio_config.chunk_hop_seconds
        plan.unmet = unmet_options(plan, out, hop if timeline else 0.0, lyrics_dir is not None, midi_dir is not None)
        feedback.note(_plan_line(plan))
        # A resumed scan with nothing new starts no engine: no workers, no torch, no weights; the results
        # are still finished (a killed run's journal folded in).
        if plan.todo:
            feedback.start_bar(len(plan.todo), runner.starting)  # what its `start` does first
            # A model that cannot load fails here, before the results are touched; the workers decode meanwhile.
            runner.start(stage=feedback.stage, tracks=plan.todo)
        rows = runner.rows(plan.todo) if plan.todo else iter(())
        summary = _write_rows(plan, out, card.labels, timeline, rows, feedback, on_row, runner.parquet_parts)
        summary.unmet, summary.empty = plan.unmet, plan.empty
    finally:
        feedback.stop()
        runner.close()
    summary.seconds = time.monotonic() - started
    return summary


def _ray_options(engine: str, address: str | None):
    """The Ray engine's options for `address`; None for the local engine (which refuses an address)."""
    if engine != "ray":
        if address is not None:
            raise ValueError("an address is for the ray engine")
        return None
    from mer_tag.engines.ray import RayOptions

    return RayOptions(address=address)


def _plan_line(plan: ScanPlan) -> str:
    """'1,204 tracks: 12 to do, 1,192 already done (1 of them failing, unchanged since)'."""
    done = len(plan.tracks) - len(plan.todo)
    line = f"{len(plan.tracks):,} track{'s' if len(plan.tracks) != 1 else ''}: {len(plan.todo):,} to do"
    if done:
        line += f", {done:,} already done"
        if plan.still_failing:
            line += f" ({plan.still_failing:,} of them failing, unchanged since)"
    return line


def unmet_options(plan: ScanPlan, out, timeline_hop: float, lyrics_dir: bool, midi_dir: bool) -> list[str]:
    """One line per option this scan was given that the rows of the tracks it skips (done earlier, files
    unchanged) do not reflect, each with its remedy: options act on the tracks a scan does, never on rows
    already written. `timeline_hop`: the seconds between timeline stretches asked for (0: no timeline)."""
    skipped = _skipped_ok_rows(plan)
    if skipped is None:
        return []
    remedy = f"--force redoes every track (the earlier results are kept as {Path(out).name}.bak)"
    lines = []
    if timeline_hop:
        timelines = _column(skipped, "timeline")
        if without := sum(1 for t in timelines if not t):
            lines.append(
                f"{_tracks(without, 'has', 'have')} no timeline: --timeline adds one to the tracks a scan "
                f"does, not to rows already written; {remedy}"
            )
        if other := sum(1 for t in timelines if t and not _has_hop(t, timeline_hop)):
            lines.append(f"{_tracks(other, 'has', 'have')} a timeline in steps other than {timeline_hop:g} s; {remedy}")
    found = {path_text(t.path): t for t in plan.tracks}  # by the path as rows spell it
    for given, option, column, what in (
        (lyrics_dir, "--lyrics-dir", "lyrics_path", "lyrics"),
        (midi_dir, "--midi-dir", "midi_path", "MIDI"),
    ):
        if not given:
            continue
        rows = zip(skipped["path"], _column(skipped, column), _column(skipped, "notes"))
        # A row without the file and without a note about it: done before the file was there to find (an
        # unreadable file is named in the row's notes, and a redo would not read it either).
        lacking = sum(1 for p, used, notes in rows if not used and not notes and getattr(found[p], column))
        if lacking:
            lines.append(f"{_tracks(lacking, 'was', 'were')} scanned without the {what} {option} finds; {remedy}")
    return lines


def _column(frame, name: str) -> list:
    return frame[name].to_list() if name in frame.columns else [None] * frame.height


def _skipped_ok_rows(plan: ScanPlan):
    """The earlier ok rows of the tracks this scan found and skips, or None when there are none."""
    if plan.keep is None or len(plan.tracks) == len(plan.todo):
        return None
    import polars as pl

    todo = {path_text(t.path) for t in plan.todo}  # as rows spell paths (a name that is not UTF-8: a URI)
    skipped = [path_text(t.path) for t in plan.tracks if path_text(t.path) not in todo]
    earlier: Any = plan.keep
    keep = earlier.filter(pl.col("path").is_in(skipped))
    if "status" in keep.columns:
        keep = keep.filter(pl.col("status") == "ok")
    return keep if keep.height else None


def _has_hop(timeline: str, hop: float) -> bool:
    """Whether a row's timeline (JSON) steps by `hop` seconds; one with a single stretch fits any."""
    import json

    try:
        starts = [stretch["start_s"] for stretch in json.loads(timeline)]
    except (ValueError, TypeError, KeyError):
        return False
    return len(starts) < 2 or abs(starts[1] - starts[0] - hop) < 0.02  # start_s is rounded to 0.01 s


def _tracks(n: int, verb_one: str, verb_many: str) -> str:
    """'1 track already done has' / '3 tracks already done have'."""
    return f"{n:,} track{'s' if n != 1 else ''} already done {verb_one if n == 1 else verb_many}"


def _plan(
    paths, out, model_ref: str, force: bool, lyrics_dir, midi_dir, retry_failed: bool = False, found=None
) -> ScanPlan:
    """The walk and the resume decision: a track is skipped when this model already did it (ok, or failed
    unless `retry_failed`) and the file is unchanged since (size and modification time); with `force`,
    nothing is skipped. A broken file that has not changed would only fail again, and redoing it means
    loading the model: a library with one broken file would never get a quick rerun. `found(n)` hears
    how many tracks the walk has found so far."""
    from mer_tag.library import walk

    previous = None if str(out) == "-" else _previous_rows(Path(out))  # not results: refused before the walk
    tracks = []
    for track in walk(paths, lyrics_dir=lyrics_dir, midi_dir=midi_dir):
        tracks.append(track)
        if found:
            found(len(tracks))
    empty = _without_tracks(paths, tracks)
    if force:
        return ScanPlan(tracks, tracks, set_aside=str(out) != "-", empty=empty)
    done = _unchanged_done(previous, model_ref, retry_failed) if previous is not None else {}
    todo, still_failing = [], 0
    for track in tracks:
        earlier = done.get(path_text(track.path))
        if earlier is None or earlier[0] != _identity(track.path):
            todo.append(track)
        elif earlier[1] != "ok":
            still_failing += 1
    keep = None
    if previous is not None and previous.height:
        import polars as pl

        keep = previous.filter(~pl.col("path").is_in([path_text(t.path) for t in todo]))
    return ScanPlan(tracks, todo, keep, still_failing=still_failing, empty=empty)


def _without_tracks(paths, tracks) -> list[str]:
    """The paths given (as given) under which the walk found no track."""
    import os

    def under(root: str, found: list[str]) -> bool:
        inside = root.rstrip(os.sep) + os.sep
        return any(path == root or path.startswith(inside) for path in found)

    found = [str(t.path) for t in tracks]
    real: list[str] | None = None  # resolved only when needed: a link to a folder also given has no tracks of its own
    empty = []
    for given in paths:
        if under(os.path.abspath(given), found):  # as the walk makes a track's path: absolute, not resolved
            continue
        real = real if real is not None else [os.path.realpath(path) for path in found]
        if not under(os.path.realpath(given), real):
            empty.append(str(given))
    return empty


def _what_is_scanned() -> str:
    from mer_tag.sources.audio import AUDIO_EXTENSIONS

    return f"mer-tag reads {', '.join(sorted(AUDIO_EXTENSIONS))} files; folders are searched through"


def _write_rows(plan, out, labels, timeline, rows, feedback, on_row, parquet_parts: bool) -> ScanSummary:
    """Stream `rows` (those of `plan.todo`) into `out` beside the kept earlier rows, counting as they come.
    The results are opened (earlier rows set aside or the ones to redo taken out) only when the first row
    arrives, or when it is clear none will: a scan that fails before its first row leaves them untouched."""
    from mer_tag import sinks

    def open_writer():
        if plan.set_aside:
            _set_aside(Path(out))
        kept_timelines = plan.keep is not None and "timeline" in plan.keep.columns  # earlier rows keep theirs
        return sinks.open_writer(
            out,
            sinks.columns(len(labels), timeline or kept_timelines),
            keep=plan.keep,
            redo={path_text(t.path) for t in plan.todo},
            parts=parquet_parts,
        )

    summary = ScanSummary(skipped=len(plan.tracks) - len(plan.todo), still_failing=plan.still_failing)
    writer = None
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
            feedback.advance()
        writer = writer or open_writer()
    finally:
        feedback.stop()  # before the last lines: the summary prints below the bar
        if writer is not None:
            writer.close()
    if plan.set_aside:
        _forcing(Path(out)).unlink(missing_ok=True)  # the forced run is whole: its results are the ones to keep
    return summary


def _identity(path: Path) -> tuple[int, float] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime


def _previous_rows(out: Path):
    """Rows of an earlier run (its results and a killed run's journal), or None. ResultsError when `out`
    holds something else (an unrelated table, a tag journal): it is left alone, never rewritten."""
    from mer_tag.sinks import journal_path, load_results

    if not out.exists() and not journal_path(out).exists():
        return None
    return load_results(out, empty_ok=True, remedy="; it is left as it is: choose another --out or move it away")


def check_out(out: str | Path) -> None:
    """ResultsError unless `out` can take a scan's rows: a known format, in a folder where a file can be
    written (or one that can be made in a folder where it can). Leaves nothing behind."""
    import os
    import tempfile

    from mer_tag.sinks import result_format

    if str(out) == "-":
        return
    if str(out).endswith(("/", os.sep)) or (Path(out).is_dir() and Path(out).suffix.lower() != ".parquet"):
        raise ResultsError(f"{out} is a folder: give a results file, e.g. {Path(out) / 'moods.csv'}")
    result_format(out)  # ResultsError for a name without a results format
    out = Path(out)
    folder = out if out.is_dir() else out.parent  # a Parquet part folder is written inside
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ResultsError(f"cannot write {out}: {blocker} is a file, not a folder")
    existing = next(p for p in [folder, *folder.parents, Path(".")] if p.exists())  # the rest is made later
    try:
        with tempfile.TemporaryFile(dir=existing):  # the writer replaces files atomically: it needs the folder
            pass
    except OSError as exc:
        raise ResultsError(
            f"cannot write {out}: no new file can be made in {existing} ({exc.strerror or exc})"
        ) from None
    if out.is_file() and not os.access(out, os.W_OK):
        raise ResultsError(f"cannot write {out}: permission denied")


def _set_aside(out: Path) -> None:
    """--force: earlier results (and a killed run's journal) are kept as `<out>.bak`, never deleted. Until the
    forced run has written every row, `<out>.forcing` says so: a --force after one that was killed or
    interrupted finds there its partial rows, not the results from before, and leaves `<out>.bak` alone."""
    from mer_tag.sinks import journal_path, read_results

    if _forcing(out).exists():
        return
    if out.exists() and read_results(out).height:  # an empty file is simply rewritten
        _move_aside(out)
    if journal_path(out).exists():
        _move_aside(journal_path(out))  # a killed run's rows (Parquet): kept aside like the results
    _forcing(out).touch()


def _forcing(out: Path) -> Path:
    return out.with_name(out.name + ".forcing")


def _move_aside(out: Path) -> None:
    """`out` → `<out>.bak`, replacing an older backup (a file, a journal, or a Parquet folder from `--engine ray`)."""
    import shutil

    backup = out.with_name(out.name + ".bak")
    if backup.is_dir():
        shutil.rmtree(backup)  # a rename cannot replace a folder
    elif out.is_dir():
        backup.unlink(missing_ok=True)  # nor put a folder where a file is
    out.replace(backup)


def _unchanged_done(previous, model_ref: str, retry_failed: bool) -> dict[str, tuple[tuple[int, float], str]]:
    """path → ((size, mtime), status) of rows this model finished (ok, and failed unless `retry_failed`):
    those tracks are skipped if the file is unchanged. Rows of another model (another name or version) are
    redone, so one file never mixes models."""
    if previous.height == 0 or not {"status", "size", "mtime"} <= set(previous.columns):
        return {}  # rows that cannot say which file they describe: every track is redone
    done = previous if not retry_failed else previous.filter(previous["status"] == "ok")
    if "model" in done.columns:
        done = done.filter(done["model"] == model_ref)
    return {
        p: ((int(s), float(m)), str(status))
        for p, s, m, status in zip(done["path"], done["size"], done["mtime"], done["status"])
        if s is not None and m is not None
    }
