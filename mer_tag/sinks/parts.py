"""Results as a Parquet part folder, `out.parquet/part-NNNNNN.parquet`: a million-track scan never rewrites
what it wrote (the Ray engine's Parquet output; docs/scale.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TextIO

from mer_tag.sinks.journal import journal_path


class PartWriter:
    """Rows are appended to the journal beside the folder (`out.parquet.partial.jsonl`, flushed per row,
    read by `read_results` like a single file's journal) and every `part_rows` rows, or `part_seconds`,
    become a new part file; a scan never rewrites the parts it did not touch. On opening, rows that are
    about to be redone (`redo`) and rows a killed run left in the journal are taken out of the parts that
    hold them, and the journal becomes a part: the folder never holds two rows for one path, and it always
    holds at least one part (an empty one at first), so it reads as a dataset at every moment. A
    single-file Parquet result (the local engine's) becomes the folder's first part.
    """

    def __init__(
        self,
        path: str | Path,
        columns: list[str],
        redo: set[str] | None = None,
        part_rows: int = 1000,
        part_seconds: float = 60.0,
    ):
        from mer_tag.sinks.columns import polars_schema
        from mer_tag.sinks.journal import read_rows

        self.path = str(path)
        self.folder = Path(path)
        self.columns = columns
        self.schema = polars_schema(columns)
        self.part_rows, self.part_seconds = part_rows, part_seconds
        self.journal = journal_path(self.folder)
        self.buffer: list[dict] = []
        self.stream: TextIO | None = None  # the journal, open from the end of __init__ until close
        self.seq = 0
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        if not self.folder.is_dir():
            self._create_folder()  # from nothing, or from a single Parquet file's rows
        self.seq = max([self._seq(p) for p in self._parts()] + [0])
        redo = set(redo or ())
        left = (
            list({r["path"]: r for r in read_rows(self.journal) if r.get("path")}.values())
            if self.journal.exists()
            else []
        )  # a killed run's rows, the latest per path
        drop = redo | {r["path"] for r in left}
        if drop:
            self._drop(drop)
        left = [r for r in left if r["path"] not in redo]
        if left:
            self._write_part(left)
        self.journal.unlink(missing_ok=True)
        self.stream = self.journal.open("a", encoding="utf-8")
        self.last_part = time.monotonic()

    # -- writing

    def write(self, row: dict) -> None:
        row = {c: row.get(c) for c in self.columns}
        stream = self._open_stream()
        stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        stream.flush()
        self.buffer.append(row)
        if len(self.buffer) >= self.part_rows or time.monotonic() - self.last_part >= self.part_seconds:
            self.roll()

    def roll(self) -> None:
        """Journal → a new part file, then an empty journal (a kill in between: the next open dedups)."""
        if self.buffer:
            self._write_part(self.buffer)
            self.buffer = []
            self._open_stream().close()
            self.stream = self.journal.open("w", encoding="utf-8")
        self.last_part = time.monotonic()

    def _open_stream(self) -> TextIO:
        if self.stream is None:
            raise ValueError("I/O operation on a closed PartWriter")
        return self.stream

    def close(self) -> None:
        if self.stream is None:
            return
        self.roll()
        self.stream.close()
        self.stream = None
        self.journal.unlink(missing_ok=True)

    # -- the folder

    def _parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    @staticmethod
    def _seq(part: Path) -> int:
        try:
            return int(part.stem.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def _frame(self, rows):
        import polars as pl

        if isinstance(rows, pl.DataFrame):
            for c in self.columns:
                if c not in rows.columns:
                    rows = rows.with_columns(pl.lit(None).alias(c))
            return rows.select([pl.col(c).cast(t, strict=False) for c, t in self.schema.items()])
        return pl.DataFrame([{c: r.get(c) for c in self.columns} for r in rows], schema=self.schema)

    def _save(self, frame, target: Path) -> None:
        from mer_tag import _fs

        with _fs.atomic_file(target, staging=self.folder.parent) as tmp:  # beside the folder: never read as a part
            frame.write_parquet(tmp)

    def _write_part(self, rows) -> None:
        self.seq += 1
        self._save(self._frame(rows), self.folder / f"part-{self.seq:06d}.parquet")

    def _create_folder(self) -> None:
        """The folder, in one step: an empty first part (an empty dataset still reads) and, replacing a
        single Parquet file of earlier results, that file's rows as the next."""
        import polars as pl

        from mer_tag import _fs

        earlier = pl.read_parquet(self.folder) if self.folder.is_file() else None
        with _fs.atomic_folder(self.folder) as tmp:
            self._frame([]).write_parquet(tmp / "part-000000.parquet")
            if earlier is not None and earlier.height:
                self._frame(earlier).write_parquet(tmp / "part-000001.parquet")

    def _drop(self, paths: set[str]) -> None:
        """Take rows for `paths` out of every part holding one (only those parts are rewritten)."""
        import polars as pl

        for part in self._parts():
            held = pl.read_parquet(part, columns=["path"])["path"]
            if not held.is_in(list(paths)).any():
                continue
            rest = pl.read_parquet(part).filter(~pl.col("path").is_in(list(paths)))
            self._save(self._frame(rest), part)  # an emptied part stays, empty: cheap and still readable
