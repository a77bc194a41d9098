"""Scan results -> one summary dict: moods overall and by artist, album and folder, confidence, lyrics and
MIDI coverage, long-track timelines, top tracks per mood and failures.

Every number is aggregated in polars before anything is drawn, so a 100k-row library becomes a few
kilobytes of chart data. The class count K comes from the data (`prob_cluster_*` columns, `cluster`,
`cluster_name`), so a custom-label model reports its own classes.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import cast
from urllib.parse import quote

import polars as pl

from mer_tag.labels import BUILTIN, QUADRANT_WORDS
from mer_tag.sinks.columns import class_number, polars_schema
from mer_tag.sinks.paths import URI_PREFIX, shown

SCHEMA = "mer-tag-report/1"

# The columns the report reads, typed by the one column table (sinks.columns, docs/output.md). CSV infers an
# all-null column as a string, and a file of error rows has no prediction columns at all, so every one is cast
# or added.
READ_COLUMNS = (
    "path",
    "status",
    "error",
    "notes",
    "title",
    "artist",
    "album",
    "duration_s",
    "cluster",
    "cluster_name",
    "confidence",
    "lyrics_source",
    "midi_path",
    "model",
    "timeline",
    "quadrant",
    "valence",
    "arousal",
)
COLUMN_TYPES = polars_schema(READ_COLUMNS)
CONFIDENCE_BINS = 20
UNKNOWN_ARTIST = "Unknown artist"
UNKNOWN_ALBUM = "Unknown album"
ROOT_FOLDER = "."
WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # C:\ or C:/
WINDOWS_UNC = re.compile(r"\\\\[^\\/]")  # \\server\share


def normalize(results: pl.DataFrame) -> pl.DataFrame:
    """The results with every column the report reads, typed, plus `file` (the path's last part) and
    `folder` (its parent, relative to the library root). Normalizing twice changes nothing."""
    if {"folder", "file"} <= set(results.columns):
        return results
    if "path" not in results.columns:
        raise ValueError("not a mer-tag results file: it has no 'path' column")
    typed = results.with_columns(
        pl.col(name).cast(dtype, strict=False) if name in results.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in COLUMN_TYPES.items()
    )
    # A name that is not UTF-8 is spelled as a file URI in the results (sinks/paths.py): its folder and file
    # name are shown as a person reads them, its links keep the URI.
    spelled = "path"
    if typed["path"].str.starts_with(URI_PREFIX).any():
        typed = typed.with_columns(pl.col("path").map_elements(shown, return_dtype=pl.String).alias("shown_path"))
        spelled = "shown_path"
    typed = typed.with_columns(pl.col(pl.Float64).fill_nan(None)).with_columns(
        # A row without a status but with a prediction came from a hand-edited file: trust the prediction.
        pl.col("status").fill_null(pl.when(pl.col("cluster").is_null()).then(pl.lit("error")).otherwise(pl.lit("ok"))),
        parent_folder(spelled).alias("abs_folder"),
        pl.col(spelled).str.extract(r"([^\\/]*)$").alias("file"),
    )
    root = library_root(typed, spelled)
    return typed.with_columns(relative_folder(root)).drop("abs_folder", "shown_path", strict=False)


def parent_folder(column: str = "path") -> pl.Expr:
    """The path up to its last separator, kept so that '/a.flac' has folder '/'; null for a bare name.
    Cutting the file name off the end is 5x faster than capturing the folder (`^(.*[\\/])`) at 100k rows."""
    folder = pl.col(column).str.replace(r"[^\\/]*$", "")
    return pl.when(folder != "").then(folder)


def library_root(results: pl.DataFrame, column: str = "path") -> str:
    """The deepest folder holding every track: folder names in the report are shown relative to it."""
    folders = results.select(parent_folder(column).unique()).to_series().drop_nulls().to_list()
    try:
        return os.path.commonpath(folders) if folders else ""
    except ValueError:  # relative and absolute paths mixed, or several Windows drives
        return ""


def relative_folder(root: str) -> pl.Expr:
    folder = pl.col("abs_folder")
    inside = (
        pl.when(pl.lit(bool(root)) & folder.str.starts_with(root)).then(folder.str.slice(len(root))).otherwise(folder)
    )
    relative = inside.str.strip_chars("/\\")
    return pl.when(relative == "").then(pl.lit(ROOT_FOLDER)).otherwise(relative).fill_null(ROOT_FOLDER).alias("folder")


def class_names(results: pl.DataFrame) -> list[str]:
    """One display name per class 1..K. Names come from the rows; a class nobody was predicted as borrows
    its name from the built-in label set the known names agree with, else it is 'Cluster k'."""
    named = (
        results.filter(pl.col("cluster") >= 1, pl.col("cluster_name").is_not_null())
        .group_by("cluster")
        .agg(pl.col("cluster_name").first())
    )
    known = dict(named.iter_rows())
    prob_classes = [k for name in results.columns if (k := class_number(name)) is not None]
    max_cluster = results.get_column("cluster").max() or 0
    k = max([0, max_cluster, *prob_classes, *known])
    builtin = next(
        (s.names for s in BUILTIN.values() if len(s) == k and all(s.names[i - 1] == n for i, n in known.items())),
        None,
    )
    return [known.get(i) or (builtin[i - 1] if builtin else f"Cluster {i}") for i in range(1, k + 1)]


def predicted(results: pl.DataFrame, k: int) -> pl.DataFrame:
    """Rows with a usable prediction: status ok and a class inside 1..K."""
    return results.filter(pl.col("status") == "ok", pl.col("cluster").is_between(1, k))


def summarize(
    results: pl.DataFrame,
    *,
    top_n: int = 10,
    group_limit: int = 25,
    long_track_s: float = 300.0,
    timeline_limit: int = 40,
    error_limit: int = 500,
) -> dict:
    """The whole report as plain data (what `--format json` prints and the HTML page draws)."""
    results = normalize(results)
    names = class_names(results)
    k = len(names)
    pred = predicted(results, k)
    return {
        "schema": SCHEMA,
        "library_root": library_root(results),
        "models": sorted(results.get_column("model").drop_nulls().unique().to_list()),
        "classes": [{"cluster": i, "name": name} for i, name in enumerate(names, 1)],
        "totals": totals(results, pred),
        "distribution": distribution(pred, k),
        "by_artist": mood_by(
            pred.with_columns(pl.col("artist").fill_null(UNKNOWN_ARTIST)), "artist", None, k, group_limit
        ),
        "by_album": mood_by(
            pred.with_columns(pl.col("album").fill_null(UNKNOWN_ALBUM), pl.col("artist").fill_null(UNKNOWN_ARTIST)),
            "album",
            "artist",
            k,
            group_limit,
        ),
        "by_folder": mood_by(pred, "folder", None, k, group_limit),
        "confidence": confidence_histogram(pred, k),
        "valence_arousal": valence_arousal(pred),
        "top_tracks": top_tracks(pred, names, top_n),
        "timelines": timelines(pred, long_track_s, timeline_limit),
        "errors": failures(results, error_limit),
    }


def totals(results: pl.DataFrame, pred: pl.DataFrame) -> dict:
    lyrics = pl.col("lyrics_source")
    row = pred.select(
        predicted=pl.len(),
        lyrics_sidecar=(lyrics == "sidecar").sum(),
        lyrics_embedded=(lyrics == "embedded").sum(),
        with_midi=pl.col("midi_path").is_not_null().sum(),
        with_timeline=pl.col("timeline").is_not_null().sum(),
        mean_confidence=pl.col("confidence").mean(),
        duration_s=pl.col("duration_s").sum(),
    ).row(0, named=True)
    status = results.get_column("status")
    return {
        "tracks": results.height,
        "ok": int((status == "ok").sum()),
        "errors": int((status == "error").sum()),
        **row,
        "with_lyrics": row["lyrics_sidecar"] + row["lyrics_embedded"],
        "with_notes": int(results.get_column("notes").is_not_null().sum()),
        "mean_confidence": rounded(row["mean_confidence"]),
        "duration_s": rounded(row["duration_s"], 1),
    }


def distribution(pred: pl.DataFrame, k: int) -> list[dict]:
    """Tracks per class, their share, mean confidence, and the library's mean fused probability (a soft
    count that also credits runner-up moods)."""
    per_class = pred.group_by("cluster").agg(count=pl.len(), mean_confidence=pl.col("confidence").mean())
    by_cluster = {row["cluster"]: row for row in per_class.iter_rows(named=True)}
    prob_columns = [f"prob_cluster_{i}" for i in range(1, k + 1) if f"prob_cluster_{i}" in pred.columns]
    # No prob_cluster_* columns (a trimmed or hand-made file) selects nothing: there is no mean to take.
    prob_means = pred.select(pl.col(prob_columns).cast(pl.Float64, strict=False).mean())
    mean_prob = prob_means.row(0, named=True) if pred.height and prob_columns else {}
    total = pred.height or 1
    return [
        {
            "cluster": i,
            "count": by_cluster.get(i, {}).get("count", 0),
            "share": rounded(by_cluster.get(i, {}).get("count", 0) / total),
            "mean_confidence": rounded(by_cluster.get(i, {}).get("mean_confidence")),
            "mean_probability": rounded(mean_prob.get(f"prob_cluster_{i}")),
        }
        for i in range(1, k + 1)
    ]


def plane_values(pred: pl.DataFrame) -> pl.DataFrame:
    """Predicted rows with valence and arousal both known and inside 0–1: the dots of the plane."""
    return pred.filter(pl.col("valence").is_between(0, 1), pl.col("arousal").is_between(0, 1))


def valence_arousal(pred: pl.DataFrame) -> dict | None:
    """Tracks per valence–arousal quadrant and the library's mean valence and arousal; None when no
    predicted track has them (a model without a valence–arousal head, or results from before it)."""
    with_quadrant = pred.filter(pl.col("quadrant").is_between(1, len(QUADRANT_WORDS)))
    placed = plane_values(pred)
    if not with_quadrant.height and not placed.height:
        return None
    counts = dict(with_quadrant.group_by("quadrant").len().iter_rows())
    means = placed.select(pl.col("valence").mean(), pl.col("arousal").mean()).row(0, named=True)
    total = with_quadrant.height or 1
    return {
        "tracks": with_quadrant.height,  # with a quadrant
        "on_plane": placed.height,  # with valence and arousal
        "without": pred.height - with_quadrant.height,  # predicted, but with no quadrant
        "mean_valence": rounded(means["valence"]),
        "mean_arousal": rounded(means["arousal"]),
        "quadrants": [
            {
                "quadrant": q,
                "name": name,
                "count": counts.get(q, 0),
                "share": rounded(counts.get(q, 0) / total),
            }
            for q, name in enumerate(QUADRANT_WORDS, 1)
        ],
    }


def mood_by(pred: pl.DataFrame, key: str, detail: str | None, k: int, limit: int) -> dict:
    """Class counts for the `limit` biggest groups of `key` (and `detail`, shown beside the name)."""
    keys = [key] if detail is None else [key, detail]
    counts = pred.group_by(keys).agg(
        total=pl.len(), **{f"c{i}": (pl.col("cluster") == i).sum() for i in range(1, k + 1)}
    )
    biggest = counts.sort(["total", *keys], descending=[True] + [False] * len(keys)).head(limit)
    return {
        "groups": counts.height,
        "rows": [
            {
                "name": row[key],
                "detail": row[detail] if detail else None,
                "total": row["total"],
                "counts": [row[f"c{i}"] for i in range(1, k + 1)],
            }
            for row in biggest.iter_rows(named=True)
        ],
    }


def confidence_histogram(pred: pl.DataFrame, k: int) -> dict:
    """Tracks per confidence bin (width 1/CONFIDENCE_BINS) and class: counts[bin][class - 1]."""
    confidence_bin = (
        (pl.col("confidence").clip(0, 1) * CONFIDENCE_BINS).floor().cast(pl.Int64).clip(0, CONFIDENCE_BINS - 1)
    )
    cells = pred.filter(pl.col("confidence").is_not_null()).group_by(confidence_bin.alias("bin"), "cluster").len()
    counts = [[0] * k for _ in range(CONFIDENCE_BINS)]
    for bin_index, cluster, n in cells.iter_rows():
        counts[bin_index][cluster - 1] = n
    median = cast("float | None", pred.get_column("confidence").median())  # polars types it as any scalar
    return {"bin_width": 1 / CONFIDENCE_BINS, "counts": counts, "median": rounded(median)}


def track_fields() -> list[pl.Expr | str]:
    """What a listed track shows: the title falls back to the file name, as players do."""
    title = pl.when(pl.col("title").str.strip_chars() != "").then(pl.col("title")).otherwise(pl.col("file"))
    return [title.alias("title"), "artist", "album", "path", pl.col("confidence").round(4), "duration_s"]


def file_url(path: str | None) -> str | None:
    """A file:// URL that opens `path` (POSIX, Windows drive or UNC), None for a relative path. Every byte
    but letters, digits, `_.-~` and the separators is percent-encoded as UTF-8, so spaces, `#`, `?`, `%` and
    accents survive. Written out: pathlib's as_uri drops a folder's trailing separator, which the page needs."""
    if not path:
        return None
    if path.startswith(URI_PREFIX):  # a name that is not UTF-8, already a URI of its bytes (sinks/paths.py)
        return path
    if path.startswith("/"):
        return "file://" + quote(path)
    if WINDOWS_DRIVE.match(path):  # the drive stays literal: file:///C:/Music/...
        return "file:///" + path[:2] + quote(path[2:].replace("\\", "/"))
    if WINDOWS_UNC.match(path):  # \\server\share\x -> file://server/share/x
        return "file:" + quote(path.replace("\\", "/"))
    return None


def with_urls(tracks: list[dict]) -> list[dict]:
    return [{**track, "url": file_url(track["path"])} for track in tracks]


def top_tracks(pred: pl.DataFrame, names: list[str], top_n: int) -> list[dict]:
    best = (
        pred.sort(["confidence", "path"], descending=[True, False], nulls_last=True)
        .group_by("cluster", maintain_order=True)
        .head(top_n)
        .select("cluster", *track_fields())
    )
    return [
        {
            "cluster": i,
            "name": name,
            "tracks": with_urls(best.filter(pl.col("cluster") == i).drop("cluster").to_dicts()),
        }
        for i, name in enumerate(names, 1)
    ]


def timelines(pred: pl.DataFrame, long_track_s: float, limit: int) -> dict:
    """Per-chunk moods of the longest tracks scanned with `--timeline` (at least `long_track_s` long)."""
    long_tracks = pred.filter(pl.col("timeline").is_not_null(), pl.col("duration_s") >= long_track_s)
    longest = long_tracks.sort(["duration_s", "path"], descending=[True, False]).head(limit)
    tracks = []
    for row in longest.select(*track_fields(), "timeline").iter_rows(named=True):
        segments = parse_timeline(row.pop("timeline"))
        if len(segments) >= 2:  # one chunk is no timeline: the track's mood already says it
            tracks.append({**row, "url": file_url(row["path"]), "segments": segments})
    return {"long_track_s": long_track_s, "long_tracks": long_tracks.height, "tracks": tracks}


def parse_timeline(text: str) -> list[dict]:
    """The valid segments of a `timeline` cell; a malformed cell or segment is dropped, not fatal."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError):
        return []
    segments = []
    for item in raw if isinstance(raw, list) else []:
        try:
            start_s, end_s = float(item["start_s"]), float(item["end_s"])
            segment = {
                "start_s": start_s,
                "end_s": end_s,
                "cluster": int(item["cluster"]),
                "confidence": rounded(float(item.get("confidence", math.nan))),
            }
        except (TypeError, KeyError, ValueError, AttributeError):
            continue
        if math.isfinite(start_s) and math.isfinite(end_s) and end_s > start_s:
            segments.append(segment)
    return segments


def failures(results: pl.DataFrame, limit: int) -> dict:
    errors = results.filter(pl.col("status") == "error")
    reasons = (
        errors.group_by(pl.col("error").fill_null("unknown error"))
        .len()
        .sort(["len", "error"], descending=[True, False])
        .head(10)
    )
    return {
        "count": errors.height,
        "reasons": [{"error": error, "count": n} for error, n in reasons.iter_rows()],
        "failures": errors.sort("path").head(limit).select("path", "error").to_dicts(),
    }


def rounded(value: float | None, digits: int = 4) -> float | None:
    """JSON-friendly: None for missing or NaN, few digits for compact output."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
