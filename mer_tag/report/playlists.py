"""One M3U8 playlist per mood, most confident track first, with paths relative to the playlist folder.

A relative entry that climbs out of the playlist folder (`../...`) is written only when the file it
names really is there: a results file from another machine, or a crafted one, cannot make a playlist
point somewhere the library is not. Tags are one line of display text each; paths with line breaks are
skipped, since M3U has no way to quote them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mer_tag.report.summary import class_names, normalize, predicted

LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
UNSAFE_FILE_NAME = re.compile(r"[^\w\- ]+")


@dataclass
class PlaylistsWritten:
    files: dict[str, Path] = field(default_factory=dict)  # mood name -> playlist file
    entries: dict[str, int] = field(default_factory=dict)  # mood name -> tracks listed
    skipped: list[str] = field(default_factory=list)  # track paths no playlist could reach


def write_playlists(results: pl.DataFrame, out: str | Path, *, min_confidence: float = 0.0) -> PlaylistsWritten:
    """Write `<k>-<Mood>.m3u8` into folder `out` for every class, even one with no tracks (so a player's
    list of mood playlists stays the same from scan to scan)."""
    results = normalize(results)
    names = class_names(results)
    out = Path(os.path.abspath(out))
    out.mkdir(parents=True, exist_ok=True)
    chosen = predicted(results, len(names)).filter(pl.col("confidence") >= min_confidence)
    ranked = chosen.sort(["confidence", "path"], descending=[True, False])
    written = PlaylistsWritten()
    for cluster, name in enumerate(names, 1):
        tracks = ranked.filter(pl.col("cluster") == cluster)
        lines, skipped = playlist_lines(tracks, name, out)
        target = out / playlist_file_name(cluster, name)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
        temporary.replace(target)  # a player never reads half a playlist
        written.files[name] = target
        written.entries[name] = (len(lines) - 2) // 2
        written.skipped += skipped
    return written


def playlist_file_name(cluster: int, name: str) -> str:
    """`3-Wistful.m3u8`: the number keeps names unique and in class order; odd characters become `_`."""
    return f"{cluster}-{UNSAFE_FILE_NAME.sub('_', name).strip() or 'mood'}.m3u8"


def playlist_lines(tracks: pl.DataFrame, name: str, out: Path) -> tuple[list[str], list[str]]:
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(name)}"]
    skipped = []
    for row in tracks.select("path", "title", "artist", "file", "duration_s").iter_rows(named=True):
        entry = playlist_entry(row["path"], out)
        if entry is None:
            skipped.append(row["path"])
            continue
        lines += [f"#EXTINF:{extinf_seconds(row['duration_s'])},{display_name(row)}", entry]
    return lines, skipped


def playlist_entry(track_path: str, out: Path) -> str | None:
    """`track_path` relative to the playlist folder, `/`-separated; None when it cannot be listed safely."""
    if LINE_BREAKS.search(track_path) or not os.path.isabs(track_path):
        return None
    target = os.path.normpath(track_path)
    try:
        relative = os.path.relpath(target, out)
    except ValueError:  # another drive on Windows: no relative path exists
        return None
    if relative.split(os.sep)[0] == os.pardir and not os.path.isfile(out / relative):
        return None
    return relative.replace(os.sep, "/")


def extinf_seconds(duration_s: float | None) -> int:
    return -1 if duration_s is None else round(duration_s)  # -1: length unknown, per the M3U convention


def display_name(row: dict) -> str:
    title = row["title"] if row["title"] and row["title"].strip() else row["file"]
    return one_line(f"{row['artist']} - {title}" if row["artist"] else title)


def one_line(text: str) -> str:
    return LINE_BREAKS.sub(" ", text).strip()
