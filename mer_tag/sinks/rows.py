"""One result file (CSV, JSON lines or Parquet) that rows are appended to as tracks finish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from mer_tag.sinks.journal import journal_path


class RowWriter:
    """Appends rows to a result file as they come, one flush per row, so a kill keeps every finished row.

    `keep` holds rows from an earlier run that stay: when the file must change shape or drop rows that
    are about to be redone, it is rewritten first (atomically), so it never holds two rows for one path.
    Parquet rows go to the journal beside the file and are folded into it by `close`.
    """

    def __init__(self, path: str | Path, columns: list[str], keep=None):
        from mer_tag.sinks.results import result_format

        self.path = str(path)
        self.columns = columns
        self.format = result_format(path)
        self.stream: TextIO | None = None  # open from the end of __init__ until close
        if self.path == "-":
            import sys

            self.stream = sys.stdout
            return
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.file_path = journal_path(target) if self.format == "parquet" else target
        _rewrite(target, self.format, keep, columns)  # for Parquet, earlier rows live in the file itself
        if self.format == "parquet":
            self.file_path.unlink(missing_ok=True)
        self.stream = self.file_path.open("a", encoding="utf-8", newline="")
        if self.format == "csv" and self.file_path.stat().st_size == 0:
            self._write_csv_row(columns)

    def write(self, row: dict) -> None:
        if self.format == "csv":
            self._write_csv_row(["" if row.get(c) is None else row.get(c) for c in self.columns])
        else:
            self._open_stream().write(json.dumps({c: row.get(c) for c in self.columns}, ensure_ascii=False) + "\n")
        self._open_stream().flush()

    def _write_csv_row(self, values) -> None:
        import csv

        csv.writer(self._open_stream(), lineterminator="\n").writerow(values)

    def _open_stream(self) -> TextIO:
        if self.stream is None:
            raise ValueError("I/O operation on a closed RowWriter")
        return self.stream

    def close(self) -> None:
        """Flush; for Parquet, fold the journal into the Parquet file (atomically)."""
        from mer_tag.sinks.results import read_results

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
    if keep is None or keep.height == 0:
        starts_empty = not target.exists() or target.stat().st_size == 0
        if starts_empty and fmt != "parquet" and not force:
            return  # a new CSV / JSON-lines file: the writer starts it, and polars (0.1 CPU-s) stays unloaded
    import polars as pl

    from mer_tag import _fs
    from mer_tag.sinks.columns import polars_schema

    if keep is None or keep.height == 0:
        keep = pl.DataFrame(schema={c: pl.String for c in columns})
    for column in columns:
        if column not in keep.columns:
            keep = keep.with_columns(pl.lit(None).alias(column))
    keep = keep.select(columns)
    with _fs.atomic_file(target) as tmp:
        if fmt == "csv":
            keep.write_csv(tmp)
        elif fmt == "parquet":  # typed by the column table, as part files are: the same schema every time
            schema = polars_schema(columns)
            keep.select([pl.col(c).cast(t, strict=False) for c, t in schema.items()]).write_parquet(tmp)
        else:
            keep.write_ndjson(tmp)
