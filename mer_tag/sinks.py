"""Result files: CSV, Parquet, JSON lines. Rows are appended as tracks finish; reading tolerates a torn tail.

Parquet cannot be appended to safely, so a Parquet scan streams its rows to a JSON-lines journal beside
the target (`<out>.partial.jsonl`) and rewrites the Parquet file (temp file, then rename) when the scan
ends; reading a Parquet result also reads a journal left by a killed scan.
"""

from __future__ import annotations

import io
import os
import json
from pathlib import Path

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def result_format(path: str | Path) -> str:
    """'csv', 'parquet' or 'jsonl' from the file extension; '-' means JSON lines on stdout."""
    if str(path) == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown results format {suffix!r}: use .csv, .parquet or .jsonl")
    return FORMATS[suffix]


def journal_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial.jsonl")


def _complete_lines(raw: bytes) -> bytes:
    """Drop a last line cut short by a kill (no trailing newline)."""
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
    return raw


def _read_jsonl(path: Path):
    import polars as pl

    rows = []
    for line in _complete_lines(path.read_bytes()).splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a kill; the track will be redone
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def read_results(path: str | Path):
    """Every complete row of a result file (and of its journal, for Parquet) as a polars DataFrame."""
    import polars as pl

    path = Path(path)
    fmt = result_format(path)
    frames = []
    if fmt == "csv" and path.exists():
        raw = _complete_lines(path.read_bytes())
        if raw.strip():
            frames.append(pl.read_csv(io.BytesIO(raw), infer_schema_length=None))
    elif fmt == "jsonl" and path.exists():
        frames.append(_read_jsonl(path))
    elif fmt == "parquet":
        if path.exists():
            frames.append(pl.read_parquet(path))
        if journal_path(path).exists():
            frames.append(_read_jsonl(journal_path(path)))
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    result = pl.concat(frames, how="diagonal_relaxed")
    # A rerun appends a fresh row for a changed track: the last row per path is the current one.
    return result.unique(subset="path", keep="last", maintain_order=True)


class RowWriter:
    """Appends rows to a result file as they come, one flush per row, so a kill keeps every finished row.

    `keep` holds rows from an earlier run that stay: when the file must change shape or drop rows that
    are about to be redone, it is rewritten first (temp file, then rename), so it never holds two rows
    for one path.
    """

    def __init__(self, path: str | Path, columns: list[str], keep=None):
        self.path = str(path)
        self.columns = columns
        self.format = result_format(path)
        self.stream = None
        if self.path == "-":
            import sys

            self.stream = sys.stdout
            return
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.file_path = journal_path(target) if self.format == "parquet" else target
        if self.format == "parquet":
            _rewrite(target, "parquet", keep, columns)  # earlier rows live in the Parquet file
            self.file_path.unlink(missing_ok=True)
        else:
            _rewrite(target, self.format, keep, columns)
        self.stream = self.file_path.open("a", encoding="utf-8", newline="")
        if self.format == "csv" and self.file_path.stat().st_size == 0:
            self._write_csv_row(columns)

    def write(self, row: dict) -> None:
        if self.format == "csv":
            self._write_csv_row(["" if row.get(c) is None else row.get(c) for c in self.columns])
        else:
            self.stream.write(json.dumps({c: row.get(c) for c in self.columns}, ensure_ascii=False) + "\n")
        self.stream.flush()

    def _write_csv_row(self, values) -> None:
        import csv

        csv.writer(self.stream, lineterminator="\n").writerow(values)

    def close(self) -> None:
        """Flush; for Parquet, fold the journal into the Parquet file (temp file, then rename)."""
        if self.stream is None or self.path == "-":
            return
        self.stream.close()
        self.stream = None
        if self.format == "parquet":
            rows = read_results(self.path)
            _rewrite(Path(self.path), "parquet", rows, self.columns, force=True)
            self.file_path.unlink(missing_ok=True)


def _rewrite(target: Path, fmt: str, keep, columns: list[str], force: bool = False) -> None:
    """Make `target` hold exactly the rows of `keep` (a polars DataFrame or None) in `columns` order."""
    import polars as pl

    if keep is None or keep.height == 0:
        starts_empty = not target.exists() or target.stat().st_size == 0
        if starts_empty and fmt != "parquet" and not force:
            return  # a new CSV / JSON-lines file: the writer starts it (CSV with its header)
        keep = pl.DataFrame(schema={c: pl.String for c in columns})  # Parquet always holds its schema
    for column in columns:
        if column not in keep.columns:
            keep = keep.with_columns(pl.lit(None).alias(column))
    keep = keep.select(columns)
    tmp = target.with_name(f".{target.name}.tmp")
    if fmt == "csv":
        keep.write_csv(tmp)
    elif fmt == "parquet":
        keep.write_parquet(tmp)
    else:
        keep.write_ndjson(tmp)
    os.replace(tmp, target)
