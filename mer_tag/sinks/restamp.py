"""After `tag` or `untag` rewrites files, the result rows that described them get the files' new size and mtime.

`scan` skips a track whose file has the size and mtime its row records. A tag edit changes both without
touching the audio the mood was predicted from, so without this a rescan would redo every tagged track.
Only rows that were current (their size and mtime were the file's just before mer-tag wrote it) are
updated: a row already stale stays stale, and its track is redone as it should be.

The results file is rewritten once, at the end of a run, in its own format (CSV, JSON lines, Parquet:
a single file and a `--engine ray` folder of parts, part by part, and a killed scan's journal beside
either), each file through a temp file and an atomic rename: a kill leaves it old or new, never half.
CSV and JSON lines are edited cell by cell; every other byte stays as it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from mer_tag import _fs
from mer_tag.sinks.results import ResultsError

__all__ = ["Restamp"]

Stamp = tuple[int, float]  # (size in bytes, mtime in seconds): scan's identity of a file


def json_lines(text: str) -> list[str]:
    """`text` cut after each newline and nowhere else, ends kept. (`str.splitlines` also cuts at U+2028,
    U+2029 and U+0085, which a JSON row holds as they are in a title or a path.)"""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


class Restamp:
    """Rows to update: path as the results spell it → (stamp before mer-tag's first write, stamp after its last)."""

    def __init__(self):
        self.changes: dict[str, tuple[Stamp, Stamp]] = {}

    def note(self, row_path: str, before: os.stat_result, after: os.stat_result) -> None:
        old, new = (before.st_size, before.st_mtime), (after.st_size, after.st_mtime)
        if row_path in self.changes and self.changes[row_path][1] == old:
            old = self.changes[row_path][0]  # written twice in one run: the row holds the first stamp
        self.changes[row_path] = (old, new)

    def __len__(self) -> int:
        return len(self.changes)

    def apply(self, results: str | Path) -> int:
        """Update the rows in `results`; how many were updated. Raises OSError or a MerTagError (ResultsError;
        _fs.ChangedMeanwhile when a scan wrote the file meanwhile); the file changed not at all then."""
        from mer_tag.sinks.journal import journal_path
        from mer_tag.sinks.results import result_format

        results = Path(results)
        if not self.changes:
            return 0
        if not results.exists() and not journal_path(results).exists():
            raise ResultsError(f"no results file at {results}")
        fmt = result_format(results)
        if fmt == "csv":
            return _text_file(results, self._csv)
        if fmt == "jsonl":
            return _text_file(results, self._jsonl)
        parts = sorted(results.glob("part-*.parquet")) if results.is_dir() else [results] if results.exists() else []
        done = sum(_parquet_file(part, self.changes) for part in parts)
        if journal_path(results).exists():  # rows of a killed scan, not yet folded into the Parquet
            done += _text_file(journal_path(results), self._jsonl)
        return done

    def _matches(self, path, size, mtime) -> tuple[Stamp, Stamp] | None:
        change = self.changes.get(path)
        try:
            return change if change and (int(float(size)), float(mtime)) == change[0] else None
        except (TypeError, ValueError):  # an empty cell: an error row without a size
            return None

    def _csv(self, text: str) -> tuple[str, int]:
        lines = text.splitlines(keepends=True)
        header = next(csv.reader(lines[:1]), [])
        if not {"path", "size", "mtime"} <= set(header):
            return text, 0
        where = {name: header.index(name) for name in ("path", "size", "mtime")}
        out, done = io.StringIO(newline=""), 0
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(io.StringIO(text, newline="")):
            cells = [row[where[n]] for n in ("path", "size", "mtime")] if len(row) == len(header) else None
            change = self._matches(*cells) if cells else None
            if change:
                row[where["size"]], row[where["mtime"]] = str(change[1][0]), repr(change[1][1])
                done += 1
            writer.writerow(row)
        return out.getvalue(), done

    def _jsonl(self, text: str) -> tuple[str, int]:
        out, done = [], 0
        for line in json_lines(text):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                row = {}
            change = self._matches(row.get("path"), row.get("size"), row.get("mtime"))
            if change:
                row["size"], row["mtime"] = change[1]
                line = json.dumps(row, ensure_ascii=False) + "\n"  # as sinks.RowWriter writes a row
                done += 1
            out.append(line)
        return "".join(out), done


def _text_file(path: Path, edit) -> int:
    """Edit the complete lines of a CSV or JSON-lines file; a last line torn by a killed scan stays as it is."""
    from mer_tag.sinks.journal import complete_lines

    st = path.stat()
    raw = path.read_bytes()
    complete = complete_lines(raw)
    text, done = edit(complete.decode("utf-8"))
    if done:
        _replace(path, st, lambda tmp: tmp.write_bytes(text.encode("utf-8") + raw[len(complete) :]))
    return done


def _parquet_file(path: Path, changes: dict[str, tuple[Stamp, Stamp]]) -> int:
    import polars as pl

    st = path.stat()
    frame = pl.read_parquet(path)
    if not {"path", "size", "mtime"} <= set(frame.columns) or frame.height == 0:
        return 0
    paths = list(changes)

    def lookup(which: int, field: int, dtype):
        return pl.col("path").replace_strict(
            paths, [changes[p][which][field] for p in paths], default=None, return_dtype=dtype
        )

    size_type, mtime_type = frame.schema["size"], frame.schema["mtime"]
    hit = (
        (pl.col("size").cast(pl.Int64, strict=False) == lookup(0, 0, pl.Int64))
        & (pl.col("mtime").cast(pl.Float64, strict=False) == lookup(0, 1, pl.Float64))
    ).fill_null(False)
    done = int(frame.select(hit.sum()).item())
    if done:
        frame = frame.with_columns(
            size=pl.when(hit).then(lookup(1, 0, pl.Int64).cast(size_type)).otherwise(pl.col("size")),
            mtime=pl.when(hit).then(lookup(1, 1, pl.Float64).cast(mtime_type)).otherwise(pl.col("mtime")),
        )
        _replace(path, st, frame.write_parquet)
    return done


def _replace(path: Path, st: os.stat_result, write) -> None:
    """`write(tmp)`, then tmp replaces `path` with its permissions, unless `path` changed since it was read as
    `st` (a scan running): _fs.ChangedMeanwhile. A part's temp file waits beside its folder, never read as a part."""
    if not st.st_mode & 0o222:  # chmod a-w: the user wants it kept as it is (a swap would need only the folder)
        raise ResultsError("the file is read-only")
    is_part = path.name.startswith("part-") and path.suffix == ".parquet"
    with _fs.atomic_file(path, staging=path.parent.parent if is_part else None, keep=st) as tmp:
        write(tmp)
