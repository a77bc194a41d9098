"""Result files: CSV, Parquet, JSON lines, and Parquet part folders; one column table (columns.py), one reader
(results.py: `load_results` checks a file for a person, `ResultsError` says what is wrong in one line).

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
from mer_tag.sinks.results import FORMATS, ResultsError, load_results, read_results, result_format
from mer_tag.sinks.rows import RowWriter

__all__ = [
    "FORMATS",
    "PartWriter",
    "ResultsError",
    "RowWriter",
    "columns",
    "journal_path",
    "load_results",
    "open_writer",
    "read_results",
    "result_format",
]


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
