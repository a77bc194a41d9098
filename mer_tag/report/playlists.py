"""One M3U8 playlist per mood, most confident track first, with paths relative to the playlist folder; and,
when the results have valence–arousal, one per quadrant of the valence–arousal plane.

A relative entry that climbs out of the playlist folder (`../...`) is written only when the file it
names really is there: a results file from another machine, or a crafted one, cannot make a playlist
point somewhere the library is not. Tags are one line of display text each; paths with line breaks are
skipped, since M3U has no way to quote them. Each track left out is named with the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mer_tag import _fs
from mer_tag.labels import QUADRANT_WORDS
from mer_tag.report.summary import class_names, normalize, predicted
from mer_tag.sinks.paths import URI_PREFIX, path_of

GONE = "not there any more (moved or deleted since the scan?)"
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
UNSAFE_FILE_NAME = re.compile(r"[^\w\- ]+")


@dataclass
class PlaylistsWritten:
    files: dict[str, Path] = field(default_factory=dict)  # playlist name -> file: each mood, then each quadrant
    entries: dict[str, int] = field(default_factory=dict)  # playlist name -> tracks listed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (track path, why no playlist lists it), each once
    quadrants: bool = False  # whether the results had valence–arousal, so the quadrant playlists were written
    emptied: list[str] = field(default_factory=list)  # an earlier run's quadrant playlists, emptied: none here


def write_playlists(results: pl.DataFrame, out: str | Path, *, min_confidence: float = 0.0) -> PlaylistsWritten:
    """Write `<k>-<Mood>.m3u8` into folder `out` for every class, even one with no tracks (so a player's
    list of mood playlists stays the same from scan to scan). When any predicted track has a quadrant,
    also `Q<q>-<words>.m3u8` for each of the four, ranked and cut by the quadrant's own probability; when none
    has, such files already in `out` (an earlier run's) are emptied, never deleted."""
    results = normalize(results)
    names = class_names(results)
    out = Path(os.path.abspath(out))
    out.mkdir(parents=True, exist_ok=True)
    pred = predicted(results, len(names))
    ranked = pred.filter(pl.col("confidence") >= min_confidence).sort(["confidence", "path"], descending=[True, False])
    written = PlaylistsWritten()
    for cluster, name in enumerate(names, 1):
        tracks = ranked.filter(pl.col("cluster") == cluster)
        write_playlist(written, tracks, name, out / playlist_file_name(cluster, name))
    placed = pred.filter(pl.col("quadrant").is_between(1, len(QUADRANT_WORDS)))
    written.quadrants = placed.height > 0
    if written.quadrants:
        ranked = quadrant_ranked(placed, min_confidence)
        for quadrant, words in enumerate(QUADRANT_WORDS, 1):
            tracks = ranked.filter(pl.col("quadrant") == quadrant)
            write_playlist(written, tracks, f"Q{quadrant} {words}", out / quadrant_file_name(quadrant))
    else:  # an earlier run's would go on listing that run's tracks: emptied, as a mood with none is
        for quadrant, words in enumerate(QUADRANT_WORDS, 1):
            if (out / quadrant_file_name(quadrant)).exists():
                write_playlist(written, placed, f"Q{quadrant} {words}", out / quadrant_file_name(quadrant))
                written.emptied.append(f"Q{quadrant} {words}")
    written.skipped = list(dict(written.skipped).items())  # a track is in a mood's and a quadrant's playlist
    return written


def write_playlist(written: PlaylistsWritten, tracks: pl.DataFrame, name: str, target: Path) -> None:
    lines, skipped = playlist_lines(tracks, name, target.parent)
    _fs.write_text(target, "\n".join(lines) + "\n")  # a player never reads half a playlist
    written.files[name] = target
    written.entries[name] = (len(lines) - 2) // 2
    written.skipped += skipped


def quadrant_ranked(placed: pl.DataFrame, min_confidence: float) -> pl.DataFrame:
    """Tracks with a quadrant, most probable first by their quadrant's own probability (`prob_quadrant_<q>`);
    --min-confidence cuts on that probability, so a track with none is listed only without a cut."""
    columns = [f"prob_quadrant_{q}" for q in range(1, len(QUADRANT_WORDS) + 1)]
    probability = pl.coalesce(
        [
            pl.when(pl.col("quadrant") == q).then(
                pl.col(column).cast(pl.Float64, strict=False).fill_nan(None) if column in placed.columns else None
            )
            for q, column in enumerate(columns, 1)
        ]
    )
    ranked = placed.with_columns(probability.alias("quadrant_probability"))
    if min_confidence > 0:
        ranked = ranked.filter(pl.col("quadrant_probability") >= min_confidence)
    return ranked.sort(["quadrant_probability", "path"], descending=[True, False], nulls_last=True)


def playlist_file_name(cluster: int, name: str) -> str:
    """`3-Wistful.m3u8`: the number keeps names unique and in class order; odd characters become `_`."""
    return f"{cluster}-{UNSAFE_FILE_NAME.sub('_', name).strip() or 'mood'}.m3u8"


def quadrant_file_name(quadrant: int) -> str:
    """`Q1-positive energetic.m3u8`: the mood playlists' scheme, `Q` keeping the quadrants apart from the
    classes and after them in a sorted folder; the words without their comma (the mood names have none)."""
    return f"Q{quadrant}-{QUADRANT_WORDS[quadrant - 1].replace(',', '')}.m3u8"


def playlist_lines(tracks: pl.DataFrame, name: str, out: Path) -> tuple[list[str], list[tuple[str, str]]]:
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(name)}"]
    skipped = []
    for row in tracks.select("path", "title", "artist", "file", "duration_s").iter_rows(named=True):
        entry = playlist_entry(row["path"], out)
        if isinstance(entry, Unlisted):
            skipped.append((row["path"], entry.reason))
            continue
        lines += [f"#EXTINF:{extinf_seconds(row['duration_s'])},{display_name(row)}", entry]
    return lines, skipped


@dataclass(frozen=True)
class Unlisted:
    """Why a track cannot be a playlist entry: one line, for the person who expected it there."""

    reason: str


def playlist_entry(track_path: str, out: Path) -> str | Unlisted:
    """`track_path` relative to the playlist folder, `/`-separated, or why it cannot be listed safely. A name
    that is not UTF-8 (a file URI in the results, sinks/paths.py) is listed as that URI, which players open."""
    if track_path.startswith(URI_PREFIX):
        return track_path if os.path.isfile(path_of(track_path)) else Unlisted(GONE)
    if LINE_BREAKS.search(track_path):
        return Unlisted("its name has a line break, which an M3U playlist cannot hold (rename the file to list it)")
    if not os.path.isabs(track_path):
        return Unlisted("a relative path in the results, so no playlist folder can point to it")
    target = os.path.normpath(track_path)
    try:
        relative = os.path.relpath(target, out)
    except ValueError:  # another drive on Windows: no relative path exists
        return Unlisted(f"on another drive than {out}")
    if relative.split(os.sep)[0] == os.pardir and not os.path.isfile(out / relative):
        return Unlisted(f"outside {out} and {GONE}")
    entry = relative.replace(os.sep, "/")
    return f"./{entry}" if entry.startswith("#") else entry  # a line starting with # is an M3U comment


def extinf_seconds(duration_s: float | None) -> int:
    return -1 if duration_s is None else round(duration_s)  # -1: length unknown, per the M3U convention


def display_name(row: dict) -> str:
    title = row["title"] if row["title"] and row["title"].strip() else row["file"]
    return one_line(f"{row['artist']} - {title}" if row["artist"] else title)


def one_line(text: str) -> str:
    return LINE_BREAKS.sub(" ", text).strip()
