"""Reading results back: the one reader every command that takes a results file goes through (scan's resume,
tag, report, playlists), and the one error it raises.

`read_results` reads what a writer of ours left (a kill's torn last line and a Parquet journal included).
`load_results` is that read checked for a person: a missing file, a folder, a tag journal, another program's
table, a file no reader can parse, or (where rows are needed) one with none is a `ResultsError` whose one
line names the file, says what it is, and what to do. Nothing here writes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

from mer_tag.errors import MerTagError, first_line
from mer_tag.sinks.columns import column_type
from mer_tag.sinks.journal import complete_lines, journal_path, read_frame

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
RESULT_KEYS = ("path", "status")  # every row a scan writes has them
JOURNAL_KEYS = ("fields", "format")  # every record of a tag journal (mer_tag.tags) has them, and no status


class ResultsError(MerTagError):
    """A results file that cannot be used: missing, not results (a tag journal, another table), unreadable,
    without the rows asked for, or that cannot be written where it was asked for."""


def result_format(path: str | Path) -> str:
    """'csv', 'parquet' or 'jsonl' from the file extension; '-' means JSON lines on stdout."""
    if str(path) == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        named = f"{suffix!r}" if suffix else "no extension"
        raise ResultsError(f"unknown results format ({named}) for {path}: name it .csv, .parquet or .jsonl")
    return FORMATS[suffix]


def _text_columns(raw: bytes) -> dict:
    """The CSV's text columns (the column table's, and any it does not know), read as text: a title "007" or an
    album "1e3" is not a number, and a rewrite of the file must give it back as it was."""
    import csv

    import polars as pl

    from mer_tag.sinks.columns import column_type

    header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")]), [])
    return {name: pl.String for name in header if column_type(name) in (None, "str")}


def read_results(path: str | Path):
    """Every complete row of a result file or part folder (and of its journal) as a polars DataFrame; the last
    row per path when a rerun appended a newer one. Unchecked: the reader for files our writers made."""
    import polars as pl

    path = Path(path)
    fmt = result_format(path)
    frames = []
    if fmt == "csv" and path.exists():
        raw = complete_lines(path.read_bytes())
        if raw.strip():
            frames.append(pl.read_csv(io.BytesIO(raw), infer_schema_length=None, schema_overrides=_text_columns(raw)))
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
    if "path" not in result.columns:
        return result  # not results: load_results says so
    # A rerun appends a fresh row for a changed track: the last row per path is the current one.
    return result.unique(subset="path", keep="last", maintain_order=True)


def load_results(
    path: str | Path,
    *,
    need: Sequence[str] = RESULT_KEYS,
    empty_ok: bool = False,
    purpose: str = "read",
    remedy: str = "",
):
    """The rows of a results file `mer-tag scan` wrote, checked: a ResultsError (one line) unless `path` holds
    results with every column in `need` and, unless `empty_ok`, at least one row. `purpose` says what a
    file without rows leaves nothing to do ('tag', 'report'); `remedy` ends the message of a file that is
    not results (what the command's user can do about it)."""
    path = Path(path)
    if not path.exists() and not journal_path(path).exists():
        raise ResultsError(f"no results file at {path}")
    if path.is_dir() and path.suffix.lower() != ".parquet":
        raise ResultsError(f"{path} is a folder: give a results file, e.g. {path / 'moods.csv'}")
    fmt = result_format(path)

    def not_results(why: str) -> ResultsError:
        return ResultsError(f"{path} is not a mer-tag results file ({why}){remedy}")

    if _is_tag_journal(path, fmt):
        raise ResultsError(
            f"{path} is a tag journal, not scan results (undo the tagging it records: mer-tag untag {path})"
        )
    try:
        rows = read_results(path)
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or first_line(exc)}") from None
    except Exception as exc:  # polars and json each have their own errors for a file of another kind
        raise not_results(first_line(exc)) from None
    if rows.height == 0 and _holds_other_data(path, fmt):
        raise not_results("no rows with a path")
    missing = [name for name in need if name not in rows.columns]
    if rows.height and missing:
        raise not_results(f"no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}")
    nested = [name for name, dtype in rows.schema.items() if column_type(name) and dtype.is_nested()]
    if nested:  # a list or a record where a result has one value
        raise not_results(f"column {nested[0]!r} holds {rows.schema[nested[0]]}")
    if rows.height == 0 and not empty_ok:
        raise ResultsError(
            f"{path} holds no tracks, so there is nothing to {purpose} (write it first: mer-tag scan ~/Music -o {path})"
        )
    return rows


def _first_record(path: Path, fmt: str) -> dict | None:
    """The first complete JSON-lines record of `path` (or its journal), None when there is none to read."""
    if fmt != "jsonl" or not path.is_file():
        return None
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    return None
                return record if isinstance(record, dict) else None
    return None


def _is_tag_journal(path: Path, fmt: str) -> bool:
    record = _first_record(path, fmt)
    return record is not None and all(k in record for k in JOURNAL_KEYS) and "status" not in record


def _holds_other_data(path: Path, fmt: str) -> bool:
    """A file that gave no rows but is not empty either: another table's header, lines that are not JSON,
    a Parquet file of other columns. A writer would replace it. (A torn last line is a killed scan's.)"""
    import polars as pl

    if not path.is_file():
        return False  # a part folder, or only a journal
    if fmt == "parquet":
        return "path" not in pl.read_parquet_schema(path)
    lines = complete_lines(path.read_bytes()).decode("utf-8", "replace").splitlines()
    lines = [line for line in lines if line.strip()]
    if fmt == "csv":
        return bool(lines) and "path" not in lines[0].split(",")
    return bool(lines)  # JSON lines: a complete line that gave no row was not a row
