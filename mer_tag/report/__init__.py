"""Library reports (HTML page, Markdown, JSON) and mood playlists from a scan results file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl

from mer_tag.errors import MerTagError, first_line
from mer_tag.report.html import render_html
from mer_tag.report.playlists import PlaylistsWritten, write_playlists
from mer_tag.report.summary import file_url, summarize
from mer_tag.report.text import plural, render_markdown
from mer_tag.sinks import ResultsError
from mer_tag.sinks import load_results as load_checked

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FormatError",
    "OutputError",
    "PlaylistsWritten",
    "ReportError",
    "ResultsError",
    "file_url",
    "library_title",
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


class ReportError(MerTagError):
    """A report or playlists that cannot be written as asked (the results file's own problems are
    sinks.ResultsError)."""


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
    if str(out).endswith(("/", os.sep)) or Path(out).is_dir():
        raise FormatError(f"{out} is a folder: give a report file, e.g. {Path(out) / f'report.{format or FORMATS[0]}'}")
    by_name = EXTENSIONS.get(Path(out).suffix.lower())
    if by_name is None:
        raise FormatError(f"cannot tell the report format from {str(out)!r}: name it .html, .htm, .md or .json")
    if format is not None and format != by_name:
        raise FormatError(f"--format {format} contradicts the output name {str(out)!r} ({by_name}): drop one")
    return by_name


def load_results(results: str | Path) -> pl.DataFrame:
    """The rows of `results` to report on; ResultsError (one line) when it is not a results file with rows."""
    return load_checked(results, need=("path",), purpose="report on")


def render_report(
    frame: pl.DataFrame, *, format: str = "html", top_n: int = 10, title: str | None = None, source: str = ""
) -> str:
    """The report as text in `format`: 'html', 'md' or 'json'. Without a `title`, the library's (see
    `library_title`; `source` names the results file, for results whose tracks share no folder)."""
    if format not in FORMATS:
        raise FormatError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
    summary = summarize(frame, top_n=top_n)
    title = title or library_title(summary["library_root"], source)
    if format == "json":
        return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if format == "md":
        return render_markdown(summary, title=title)
    return render_html(frame, summary=summary, title=title)


def library_title(library_root: str, source: str = "") -> str:
    """The report's title: the library a person knows by its folder's name ("Library moods: Music" for
    tracks under /home/me/Music), not the results file's; the file's name only when the tracks share no folder."""
    name = Path(library_root).name or library_root  # "/" has no name: show it whole
    shown = name or source
    return f"Library moods: {shown}" if shown else "Library moods"


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
    text = render_report(frame, format=format, top_n=top_n, source=Path(results).name)
    if target is None:
        sys.stdout.write(text)
        return None
    from mer_tag import _fs

    try:
        return _fs.write_text(target, text)  # a reader never sees half a report
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or first_line(exc)}") from exc
