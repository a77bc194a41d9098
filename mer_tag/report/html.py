"""One self-contained HTML page: the summary and a compact track table as inert JSON, drawn by our own
inline script into SVG charts and a paginated table. Nothing is fetched: a Content-Security-Policy allows
no network at all and runs only the page's own script (by hash), so an injected tag could not run even
if escaping failed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from datetime import UTC, datetime
from importlib import resources

import polars as pl

from mer_tag.report.summary import file_url, normalize, parent_folder, predicted, summarize

DATA_ELEMENT_ID = "report-data"

# Readable on white and on the dark theme; the MIREX moods get colours that suit them.
MOOD_COLORS = {
    "passionate": "#ae3ec9",
    "cheerful": "#f59f00",
    "wistful": "#1c7ed6",
    "humorous": "#37b24d",
    "aggressive": "#e03131",
    "positive": "#37b24d",
    "neutral": "#868e96",
    "negative": "#1c7ed6",
}
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")

# Inside <script> the HTML parser ends at "</script" and JS treats U+2028/9 as line ends in old engines.
SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)

# Lyrics source and MIDI packed into one small int per row: bit 0 sidecar, bit 1 embedded, bit 2 MIDI.
LYRICS_FLAGS = {"sidecar": 1, "embedded": 2}
MIDI_FLAG = 4


def render_html(results: pl.DataFrame, *, summary: dict | None = None, title: str = "Library moods") -> str:
    """The report page for `results` (pass `summary` when it is already computed)."""
    results = normalize(results)
    summary = summarize(results) if summary is None else summary
    names = [c["name"] for c in summary["classes"]]
    plane = summary.get("valence_arousal") or {}
    payload = {
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "summary": summary,
        "colors": mood_colors(names),
        "table": table_columns(results, len(names), plane=bool(plane.get("on_plane"))),
    }
    script = asset("report.js")
    parts = {
        "TITLE": html.escape(title),
        "CSP": content_security_policy(script),
        "STYLE": asset("report.css"),
        "DATA_ID": DATA_ELEMENT_ID,
        "DATA": script_json(payload),
        "SCRIPT": script,
    }
    # One pass over the template only, so a "{{...}}" inside inserted data is never substituted.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], asset("template.html"))


def asset(name: str) -> str:
    return resources.files("mer_tag.report").joinpath(name).read_text(encoding="utf-8")


def content_security_policy(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def script_json(payload: dict) -> str:
    """JSON that is safe inside <script type="application/json">: no character can close the element."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(SCRIPT_ESCAPES)


def mood_colors(names: list[str]) -> list[str]:
    """One colour per class: by mood name when every name is known, else a palette that stays distinct."""
    keys = [name.lower() for name in names]
    if all(key in MOOD_COLORS for key in keys) and len(set(keys)) == len(keys):
        return [MOOD_COLORS[key] for key in keys]
    if len(names) <= len(PALETTE):
        return list(PALETTE[: len(names)])
    return [f"hsl({i * 137.508 % 360:.0f} 55% 50%)" for i in range(len(names))]  # golden angle: neighbours differ


def table_columns(results: pl.DataFrame, k: int, *, plane: bool = False) -> dict:
    """Every predicted track, column-wise and compact: artist, album and folder as indexes into sorted
    value lists, confidence in thousandths, duration in seconds. Each track links to its file: the page
    joins `url_prefix`, its folder's entry in `folder_urls` and its percent-encoded file name. With
    `plane`, also valence and arousal in thousandths (-1 where unknown): the dots of the plane."""
    rows = predicted(results, k)
    lyrics_bits = pl.col("lyrics_source").replace_strict(LYRICS_FLAGS, default=0, return_dtype=pl.Int64)
    midi_bit = pl.col("midi_path").is_not_null().cast(pl.Int64) * MIDI_FLAG
    compact = rows.select(
        "title",
        "file",
        *(dictionary_codes(name) for name in ("artist", "album", "folder")),
        "cluster",
        (pl.col("confidence") * 1000).round().cast(pl.Int64).fill_null(-1).alias("confidence"),
        pl.col("duration_s").round().cast(pl.Int64).fill_null(-1).alias("duration"),
        (lyrics_bits + midi_bit).alias("flags"),
        *(plane_coordinate(name) for name in (("valence", "arousal") if plane else ())),
    )
    values = {f"{name}_values": sorted_values(rows, name) for name in ("artist", "album", "folder")}
    links = folder_urls(rows, values["folder_values"])
    return {"count": compact.height, **compact.to_dict(as_series=False), **values, **links}


def plane_coordinate(name: str) -> pl.Expr:
    """Valence or arousal in thousandths (a 1000-pixel plane would place a dot no better), -1 where either
    is unknown or outside 0–1, so a track is drawn with both or not at all (summary.plane_values)."""
    inside = pl.col("valence").is_between(0, 1) & pl.col("arousal").is_between(0, 1)
    thousandths = (pl.col(name) * 1000).round().cast(pl.Int64)
    return pl.when(inside).then(thousandths).otherwise(-1).alias(name)


def folder_urls(rows: pl.DataFrame, folder_values: list[str]) -> dict:
    """The file:// URL (ending in '/') of each folder in `folder_values`, split into the prefix they all
    share and one suffix per folder: no per-track data, and the library root is written once. A folder
    gets null, so its tracks no link, when its path is relative or, in an odd library (relative and
    absolute paths mixed), when two different folders are shown under the one name."""
    pairs = rows.select("folder", parent_folder().alias("path_folder")).unique()
    one_folder = pairs.filter(pl.col("folder").is_unique())
    urls = {name: file_url(folder) for name, folder in one_folder.iter_rows()}
    ordered = [urls.get(name) for name in folder_values]
    prefix = os.path.commonprefix([url for url in ordered if url])
    return {"url_prefix": prefix, "folder_urls": [url and url[len(prefix) :] for url in ordered]}


def dictionary_codes(name: str) -> pl.Expr:
    """0-based position of each value in `sorted_values`; -1 for a missing value."""
    return (pl.col(name).rank("dense").cast(pl.Int64) - 1).fill_null(-1).alias(name)


def sorted_values(rows: pl.DataFrame, name: str) -> list[str]:
    return rows.get_column(name).drop_nulls().unique().sort().to_list()
