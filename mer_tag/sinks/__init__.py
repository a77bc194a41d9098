"""Result files: CSV, Parquet, JSON lines, and Parquet part folders; one column table (columns.py).

Rows are appended as tracks finish, and reading tolerates what a kill leaves. Parquet cannot be appended
to, so rows bound for it go to a JSON-lines journal beside it (`<out>.partial.jsonl`) first: a single
Parquet file is rewritten from it when the scan ends (rows.py), a part folder gains a part every so many
rows (parts.py). Every rewrite is atomic (mer_tag._fs).
"""

from __future__ import annotations

from pathlib import Path

from mer_tag.sinks.columns import columns
from mer_tag.sinks.journal import journal_path
from mer_tag.sinks.parts import PartWriter
from mer_tag.sinks.rows import RowWriter

__all__ = [
    "FORMATS",
    "PartWriter",
    "RowWriter",
    "columns",
    "journal_path",
    "open_writer",
    "read_results",
    "result_format",
]

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def result_format(path: str | Path) -> str:
    """'csv', 'parquet' or 'jsonl' from the file extension; '-' means JSON lines on stdout."""
    if str(path) == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown results format {suffix!r}: use .csv, .parquet or .jsonl")
    return FORMATS[suffix]


def read_results(path: str | Path):
    """Every complete row of a result file or part folder (and of its journal) as a polars DataFrame."""
    import io

    import polars as pl

    from mer_tag.sinks.journal import complete_lines, read_frame

    path = Path(path)
    fmt = result_format(path)
    frames = []
    if fmt == "csv" and path.exists():
        raw = complete_lines(path.read_bytes())
        if raw.strip():
            frames.append(pl.read_csv(io.BytesIO(raw), infer_schema_length=None))
    elif fmt == "jsonl" and path.exists():
        frames.append(read_frame(path))
    elif fmt == "parquet":
        if path.exists():
            frames.append(pl.read_parquet(path))
        if journal_path(path).exists():
            frames.append(read_frame(journal_path(path)))
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    result = pl.concat(frames, how="diagonal_relaxed")
    # A rerun appends a fresh row for a changed track: the last row per path is the current one.
    return result.unique(subset="path", keep="last", maintain_order=True)


def is_part_folder(out: str | Path, parts: bool) -> bool:
    """Whether results go to a folder of Parquet part files (`out.parquet/part-*.parquet`): asked for
    (`parts`, the Ray engine's way), or already one (any engine keeps writing a folder that is)."""
    if str(out) == "-" or Path(out).suffix.lower() != ".parquet":
        return False
    return Path(out).is_dir() or parts


def open_writer(out: str | Path, columns: list[str], keep=None, redo: set[str] | None = None, parts: bool = False):
    """The writer for a scan's results: a RowWriter (one file; `keep`: earlier rows that stay), or a
    PartWriter for a part folder (`redo`: paths whose earlier rows go, as they are about to be redone)."""
    if is_part_folder(out, parts):
        return PartWriter(out, columns, redo=redo)
    return RowWriter(out, columns, keep=keep)
