"""Library reports (HTML page, Markdown, JSON) and mood playlists from a scan results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from mer_tag.report.html import render_html
from mer_tag.report.playlists import PlaylistsWritten, write_playlists
from mer_tag.report.summary import COLUMN_TYPES, PROB_COLUMN, file_url, summarize
from mer_tag.report.text import plural, render_markdown
from mer_tag.sinks import read_results

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FormatError",
    "OutputError",
    "PlaylistsWritten",
    "ReportError",
    "ResultsError",
    "file_url",
    "load_results",
    "plural",
    "render_html",
    "render_markdown",
    "render_report",
    "report_format",
    "summarize",
    "write_playlists",
    "write_report",
]

FORMATS = ("html", "md", "json")
# The output's extension names its format; any other name is refused, so `-o r.pdf` cannot silently get HTML.
EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}


class ReportError(ValueError):
    """A usage error the command line shows as one line (exit status 2)."""


class ResultsError(ReportError):
    """The results file is missing, unreadable or has no rows."""


class FormatError(ReportError):
    """The output's name gives no report format, or one that --format contradicts."""


class OutputError(ReportError):
    """The report's folder cannot be created or the report cannot be written there."""


def report_format(out: str | Path | None, format: str | None = None) -> str:
    """The format to write `out` in. A file's extension decides and an explicit `format` must agree with it;
    stdout ('-') and the default file (None) take `format`, html when none is given."""
    if format is not None and format not in FORMATS:
        raise FormatError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
    if out is None or str(out) == "-":
        return format or "html"
    by_name = EXTENSIONS.get(Path(out).suffix.lower())
    if by_name is None:
        raise FormatError(f"cannot tell the report format from {str(out)!r}: name it .html, .htm, .md or .json")
    if format is not None and format != by_name:
        raise FormatError(f"--format {format} contradicts the output name {str(out)!r} ({by_name}): drop one")
    return by_name


def first_line(exc: BaseException) -> str:
    """polars explains some errors over several lines; a usage error is one."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_results(results: str | Path) -> pl.DataFrame:
    results = Path(results)
    if not results.exists():  # a file, or the Parquet folder of part files that `scan --engine ray` writes
        raise ResultsError(f"results file not found: {results}")
    try:
        frame = read_results(results)
    except pl.exceptions.ColumnNotFoundError:  # rows without a path cannot be told apart: reading needs it
        raise ResultsError(f"not a mer-tag results file (no 'path' column): {results}") from None
    except (ValueError, TypeError, OSError, pl.exceptions.PolarsError) as exc:
        raise ResultsError(f"cannot read results file {results}: {first_line(exc)}") from exc
    if frame.height == 0:
        raise ResultsError(f"results file has no rows: {results}")
    if "path" not in frame.columns:
        raise ResultsError(f"not a mer-tag results file (no 'path' column): {results}")
    # A list or a record where the report expects one value cannot be cast: say so here, not in a traceback.
    nested = [
        name
        for name, dtype in frame.schema.items()
        if (name in COLUMN_TYPES or PROB_COLUMN.match(name)) and dtype.is_nested()
    ]
    if nested:
        holds = f"column {nested[0]!r} holds {frame.schema[nested[0]]}"
        raise ResultsError(f"not a mer-tag results file ({holds}): {results}")
    return frame


def render_report(frame: pl.DataFrame, *, format: str = "html", top_n: int = 10, title: str = "Library moods") -> str:
    """The report as text in `format`: 'html', 'md' or 'json'."""
    if format not in FORMATS:
        raise FormatError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
    summary = summarize(frame, top_n=top_n)
    if format == "json":
        return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if format == "md":
        return render_markdown(summary, title=title)
    return render_html(frame, summary=summary, title=title)


def write_report(
    results: str | Path, out: str | Path | None = None, *, format: str | None = None, top_n: int = 10
) -> Path | None:
    """Read `results` and write its report to `out` (default `report.<format>` here; '-' is stdout), in the
    format `out`'s extension names (see `report_format`). Returns the file written, or None for stdout.

    Checks come before work: the output's name, then the results file, then the output's folder; a failed
    write leaves no file behind and an earlier report at `out` untouched."""
    format = report_format(out, format)
    frame = load_results(results)
    to_stdout = str(out) == "-"
    target = None if to_stdout else Path(out) if out is not None else Path(f"report.{format}")
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder for {target}: {exc.strerror or first_line(exc)}") from exc
    text = render_report(frame, format=format, top_n=top_n, title=f"Library moods: {Path(results).name}")
    if target is None:
        sys.stdout.write(text)
        return None
    from mer_tag import _fs

    try:
        return _fs.write_text(target, text)  # a reader never sees half a report
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or first_line(exc)}") from exc
