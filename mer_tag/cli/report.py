"""`mer-tag report` and `mer-tag playlists`: thin layers over mer_tag.report (imported inside each body,
so `mer-tag --help` stays instant)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mer_tag.cli._errors import usage_error

RESULTS_HELP = "Results file from `mer-tag scan` (.csv, .parquet or .jsonl)."
SKIPS_SHOWN = 20  # tracks `playlists` names one line each; then a count


class ReportFormat(str, Enum):
    html = "html"
    md = "md"
    json = "json"


def report(
    results: Annotated[Path, typer.Argument(metavar="FILE", help=RESULTS_HELP, show_default=False)],
    out: Annotated[
        str | None,  # not a Path: "reports/" must keep its slash to be told apart from a file name
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            show_default=False,
            # "\\[": rich markup would take "[default: ...]" for a style tag and drop it.
            help="File to write, .html/.htm, .md or .json: its extension sets the format. '-' prints to stdout. "
            "\\[default: report.html, or report.md / report.json with --format]",
        ),
    ] = None,
    format: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format",
            "-f",
            show_default=False,
            help="html: one offline page; md: Markdown; json: data. Only needed for stdout or the default "
            "file (html); with --out it must match the extension.",
        ),
    ] = None,
    top_n: Annotated[int, typer.Option("--top-n", min=1, help="Tracks listed per mood.")] = 10,
) -> None:
    """Summarise a scan: moods overall and by artist, album and folder, confidence, lyrics and MIDI
    coverage, mood timelines of long tracks, top tracks per mood, every track and every failure.

    The HTML page is one self-contained file that opens offline; its table sorts, filters and pages
    through any number of tracks, and each title opens its file.

    Examples:

      mer-tag report library.parquet --out report.html

      mer-tag report library.csv --format md --out -

      mer-tag report library.jsonl --out moods.json
    """
    from mer_tag.report import write_report

    written = write_report(results, out, format=format.value if format else None, top_n=top_n)
    if written is not None:
        typer.echo(f"Wrote {written}", err=True)


def playlists(
    results: Annotated[Path, typer.Argument(metavar="FILE", help=RESULTS_HELP, show_default=False)],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="FOLDER", help="Folder for the playlists (created if missing).", show_default=False
        ),
    ],
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="Leave out tracks predicted less confidently (in a quadrant's playlist: less probably in it).",
        ),
    ] = 0.0,
) -> None:
    """Write one M3U8 playlist per mood (`1-Passionate.m3u8` ...), most confident track first.

    When the results have valence and arousal (a model with them scanned the tracks), also one per
    quadrant of the valence-arousal plane: `Q1-positive energetic.m3u8`, `Q2-negative energetic.m3u8`,
    `Q3-negative calm.m3u8`, `Q4-positive calm.m3u8`, most probable first.

    Entries are paths relative to the playlist folder; one outside it (`../`) is written only if the
    file is really there, so put the folder inside the library you scanned.

    Examples:

      mer-tag playlists library.parquet --out ~/Music/Moods

      mer-tag playlists library.csv --out ~/Music/Moods --min-confidence 0.6
    """
    from mer_tag.report import load_results, plural, write_playlists

    _check_playlists_folder(out)
    frame = load_results(results)  # not results: one line, exit 2 (mer_tag.cli.main)
    try:
        written = write_playlists(frame, out, min_confidence=min_confidence)
    except OSError as exc:  # the folder cannot be created or written
        raise usage_error(f"cannot write playlists to {out}: {exc.strerror or exc}") from None
    counts = {name: plural(n, "track") for name, n in written.entries.items()}
    width = max(map(len, counts.values()), default=0)
    name_width = max(map(len, counts), default=0)
    for name, path in written.files.items():
        typer.echo(f"{counts[name]:>{width}}  {name:<{name_width}}  {path}")
    for track, reason in written.skipped[:SKIPS_SHOWN]:  # repr: a name with a line break stays on one line
        typer.echo(f"skipped {track!r}: {reason}", err=True)
    if len(written.skipped) > SKIPS_SHOWN:
        typer.echo(f"… and {len(written.skipped) - SKIPS_SHOWN} more tracks skipped", err=True)
    if not written.quadrants:
        emptied = " (those there from an earlier run are now empty)" if written.emptied else ""
        typer.echo(
            f"No quadrant playlists{emptied}: no track here has valence–arousal (the model that scanned them has "
            "none, or an older mer-tag wrote these results).",
            err=True,
        )


def _check_playlists_folder(out: Path) -> None:
    """A usage error unless `out` can be the playlists' folder: not a file, nor named like one playlist."""
    if out.exists() and not out.is_dir():
        raise usage_error(
            f"{out} is a file: playlists go into a folder, one file per mood, e.g. {out.parent / 'playlists'}"
        )
    if out.suffix.lower() in (".m3u", ".m3u8"):
        raise usage_error(f"{out}: playlists go into a folder, one .m3u8 file per mood, e.g. {out.with_suffix('')}")
