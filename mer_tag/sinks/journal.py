"""JSON-lines journals: rows appended one flushed line at a time, read back whatever a kill left of them."""

from __future__ import annotations

import json
from pathlib import Path


def journal_path(path: str | Path) -> Path:
    """Where rows bound for a Parquet result (a file or a part folder) wait: `<out>.partial.jsonl`."""
    path = Path(path)
    return path.with_name(path.name + ".partial.jsonl")


def complete_lines(raw: bytes) -> bytes:
    """Drop a last line cut short by a kill (no trailing newline)."""
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
    return raw


def read_rows(path: Path) -> list[dict]:
    """Every complete row of a JSON-lines file; a line torn by a kill is skipped (its track is redone)."""
    rows = []
    for line in complete_lines(path.read_bytes()).splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict):  # whole JSON that is not a row: not a results file at all
                raise ValueError(f"a line holds {type(row).__name__}, not a row (a JSON object)")
            rows.append(row)
    return rows


def read_frame(path: Path):
    """`read_rows` as a polars DataFrame (types inferred from every row)."""
    import polars as pl

    rows = read_rows(path)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
