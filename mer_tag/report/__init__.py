"""Library reports (HTML page, Markdown, JSON) and mood playlists from a scan results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from mer_tag.report.html import render_html
from mer_tag.report.playlists import PlaylistsWritten, write_playlists
from mer_tag.report.summary import summarize
from mer_tag.report.text import render_markdown
from mer_tag.sinks import read_results

__all__ = [
    "FORMATS",
    "PlaylistsWritten",
    "ResultsError",
    "load_results",
    "render_html",
    "render_markdown",
    "render_report",
    "summarize",
    "write_playlists",
    "write_report",
]

FORMATS = ("html", "md", "json")


class ResultsError(ValueError):
    """The results file is missing, unreadable or has no rows."""


def load_results(results: str | Path) -> pl.DataFrame:
    results = Path(results)
    if not results.exists():  # a file, or the Parquet folder of part files that `scan --engine ray` writes
        raise ResultsError(f"results file not found: {results}")
    try:
        frame = read_results(results)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        raise ResultsError(f"cannot read results file {results}: {exc}") from exc
    if frame.height == 0:
        raise ResultsError(f"results file has no rows: {results}")
    if "path" not in frame.columns:
        raise ResultsError(f"not a mer-tag results file (no 'path' column): {results}")
    return frame


def render_report(frame: pl.DataFrame, *, format: str = "html", top_n: int = 10, title: str = "Library moods") -> str:
    """The report as text in `format`: 'html', 'md' or 'json'."""
    if format not in FORMATS:
        raise ValueError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
    summary = summarize(frame, top_n=top_n)
    if format == "json":
        return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if format == "md":
        return render_markdown(summary, title=title)
    return render_html(frame, summary=summary, title=title)


def write_report(results: str | Path, out: str | Path | None = None, *, format: str = "html", top_n: int = 10) -> Path | None:
    """Read `results` and write its report to `out` (default `report.<format>` here; '-' is stdout).
    Returns the file written, or None for stdout."""
    frame = load_results(results)
    text = render_report(frame, format=format, top_n=top_n, title=f"Library moods: {Path(results).name}")
    if str(out) == "-":
        sys.stdout.write(text)
        return None
    from mer_tag import _fs

    target = Path(out) if out is not None else Path(f"report.{format}")
    return _fs.write_text(target, text)  # a reader never sees half a report
