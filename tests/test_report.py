"""Library reports (HTML, Markdown, JSON) and mood playlists, on synthetic results built per docs/output.md."""

from __future__ import annotations

import json
import pathlib
import re
import urllib.parse

import numpy as np
import polars as pl
import pytest

from mer_tag.cli import main
from mer_tag.labels import MIREX
from mer_tag.report import (
    FormatError,
    OutputError,
    file_url,
    library_title,
    load_results,
    plural,
    render_html,
    render_markdown,
    render_report,
    report_format,
    summarize,
    write_playlists,
    write_report,
)
from mer_tag.report.html import DATA_ELEMENT_ID, asset

XSS_TITLE = '</script><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_ARTIST = "<svg onload=window.__xss=3>&amp;"
MODEL = "default@0.1.0"


# The quadrant a synthetic track of each MIREX cluster leans to: Passionate and Cheerful positive and
# energetic, Wistful negative and calm, Humorous positive and calm, Aggressive negative and energetic.
LEANS_TO = {1: 1, 2: 1, 3: 3, 4: 4, 5: 2}
QUADRANT_NAMES = ("positive, energetic", "negative, energetic", "negative, calm", "positive, calm")


def synthetic_results(
    n: int, *, root: str = "/music", seed: int = 0, k: int = 5, valence_arousal: bool = True
) -> pl.DataFrame:
    """`n` result rows shaped like a real scan: ~3% errors, some lyrics and MIDI, timelines on long tracks,
    and (unless not `valence_arousal`) the runner-up and valence–arousal columns, from a generator of their
    own so the other columns stay as they were. Row 0 carries an XSS title and artist, as a stranger's tags
    might."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.6), size=n)
    cluster = probs.argmax(axis=1) + 1
    artist_ids = rng.integers(0, max(1, n // 12), size=n)
    album_ids = rng.integers(0, 3, size=n)
    duration = rng.uniform(90, 720, size=n).round(1)
    is_error = rng.random(n) < 0.03
    lyrics = rng.choice(["sidecar", "embedded", "none"], size=n, p=[0.3, 0.1, 0.6])
    has_midi = rng.random(n) < 0.05
    names = MIREX.names if k == len(MIREX) else tuple(f"Class {i}" for i in range(1, k + 1))
    rows = {
        "path": [
            f"{root}/Artist {a}/Album {b}/{i:06d} Song {i}.flac" for i, (a, b) in enumerate(zip(artist_ids, album_ids))
        ],
        "status": np.where(is_error, "error", "ok").tolist(),
        "error": [
            ("could not decode audio" if i % 2 else "file is empty") if e else None for i, e in enumerate(is_error)
        ],
        "notes": [None] * n,
        "size": rng.integers(1_000_000, 20_000_000, size=n).tolist(),
        "mtime": np.full(n, 1.7e9).tolist(),
        "title": [f"Song {i}" for i in range(n)],
        "artist": [f"Artist {a}" for a in artist_ids],
        "album": [f"Album {b}" for b in album_ids],
        "duration_s": duration.tolist(),
        "cluster": cluster.tolist(),
        "cluster_name": [names[c - 1] for c in cluster],
        "confidence": probs.max(axis=1).round(4).tolist(),
        **{f"prob_cluster_{i + 1}": probs[:, i].round(4).tolist() for i in range(k)},
        "audio_cluster": cluster.tolist(),
        "lyrics_cluster": [int(c) if s != "none" else None for c, s in zip(cluster, lyrics)],
        "midi_cluster": [int(c) if m else None for c, m in zip(cluster, has_midi)],
        "lyrics_source": lyrics.tolist(),
        "lyrics_path": [None] * n,
        "midi_path": [f"{root}/midi/{i}.mid" if m else None for i, m in enumerate(has_midi)],
        "model": [MODEL] * n,
        "timeline": [timeline_json(d, rng) if d >= 300 and i % 3 == 0 else None for i, d in enumerate(duration)],
    }
    va_rows = synthetic_valence_arousal(probs, names, seed) if valence_arousal else {}
    frame = pl.DataFrame(rows | va_rows, infer_schema_length=None)
    prediction_columns = [
        "duration_s",
        "cluster",
        "cluster_name",
        "confidence",
        "audio_cluster",
        "lyrics_cluster",
        "midi_cluster",
        "timeline",
        *(f"prob_cluster_{i}" for i in range(1, k + 1)),
        *va_rows,
    ]
    frame = frame.with_columns(
        pl.when(pl.col("status") == "error").then(None).otherwise(pl.col(c)).alias(c) for c in prediction_columns
    )
    if n:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(XSS_TITLE)).otherwise(pl.col("title")).alias("title"),
            pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(XSS_ARTIST)).otherwise(pl.col("artist")).alias("artist"),
            pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("ok")).otherwise(pl.col("status")).alias("status"),
        )
    return frame


def synthetic_valence_arousal(probs: np.ndarray, names, seed: int) -> dict[str, list]:
    """Runner-up and quadrant columns as docs/output.md gives them, each track leaning to its mood's quadrant."""
    rng = np.random.default_rng(seed + 1)
    n = len(probs)
    order = probs.argsort(axis=1)
    runner_up = order[:, -2] + 1
    leans = np.array([LEANS_TO.get(int(c), int(c) % 4 + 1) for c in order[:, -1] + 1])
    quadrant_probs = rng.dirichlet(np.full(4, 0.7), size=n) + 0.6 * np.eye(4)[leans - 1]
    quadrant_probs = (quadrant_probs / quadrant_probs.sum(axis=1, keepdims=True)).round(4)
    quadrant = quadrant_probs.argmax(axis=1) + 1
    return {
        "runner_up": runner_up.tolist(),
        "runner_up_name": [names[c - 1] for c in runner_up],
        "runner_up_confidence": probs[np.arange(n), runner_up - 1].round(4).tolist(),
        "quadrant": quadrant.tolist(),
        "quadrant_name": [QUADRANT_NAMES[q - 1] for q in quadrant],
        **{f"prob_quadrant_{q}": quadrant_probs[:, q - 1].tolist() for q in range(1, 5)},
        "valence": (quadrant_probs[:, 0] + quadrant_probs[:, 3]).round(4).tolist(),
        "arousal": (quadrant_probs[:, 0] + quadrant_probs[:, 1]).round(4).tolist(),
    }


def with_valence_arousal(frame: pl.DataFrame, quadrants: dict[str, tuple[int, float]]) -> pl.DataFrame:
    """`frame` with the quadrant columns, from path -> (quadrant, its probability; the other three share the
    rest); a path not named gets nulls, as a model without valence–arousal leaves them."""
    columns: dict[str, list] = {name: [] for name in ("quadrant", "quadrant_name", "valence", "arousal")}
    columns |= {f"prob_quadrant_{q}": [] for q in range(1, 5)}
    for path in frame.get_column("path"):
        quadrant, probability = quadrants.get(path, (None, None))
        probs = (
            [None] * 4
            if quadrant is None
            else [probability if q == quadrant else (1 - probability) / 3 for q in range(1, 5)]
        )
        known = quadrant is not None
        columns["quadrant"].append(quadrant)
        columns["quadrant_name"].append(QUADRANT_NAMES[quadrant - 1] if known else None)
        columns["valence"].append(round(probs[0] + probs[3], 4) if known else None)
        columns["arousal"].append(round(probs[0] + probs[1], 4) if known else None)
        for q in range(1, 5):
            columns[f"prob_quadrant_{q}"].append(round(probs[q - 1], 4) if known else None)
    return frame.with_columns(pl.Series(name, values, strict=False) for name, values in columns.items())


def timeline_json(duration_s: float, rng: np.random.Generator, chunk_s: float = 30.0) -> str:
    starts = np.arange(0.0, duration_s, chunk_s)
    return json.dumps(
        [
            {
                "start_s": float(s),
                "end_s": float(min(s + chunk_s, duration_s)),
                "cluster": int(rng.integers(1, 6)),
                "confidence": round(float(rng.uniform(0.3, 0.9)), 3),
            }
            for s in starts
        ]
    )


def small_results() -> pl.DataFrame:
    """Six hand-checked rows: four predictions, one error, one XSS title."""

    def row(path, cluster=None, confidence=None, status="ok", **tags):
        probs = {f"prob_cluster_{i}": (confidence if i == cluster else None) for i in range(1, 6)}
        return {
            "path": path,
            "status": status,
            "error": None if status == "ok" else "decode failed",
            "size": 1,
            "mtime": 1.0,
            "title": tags.get("title"),
            "artist": tags.get("artist"),
            "album": tags.get("album"),
            "duration_s": tags.get("duration_s", 200.0) if status == "ok" else None,
            "cluster": cluster,
            "cluster_name": MIREX.names[cluster - 1] if cluster else None,
            "confidence": confidence,
            **probs,
            "lyrics_source": tags.get("lyrics_source", "none"),
            "midi_path": tags.get("midi_path"),
            "model": MODEL,
            "timeline": tags.get("timeline"),
        }

    timeline = json.dumps(
        [
            {"start_s": 0, "end_s": 200, "cluster": 3, "confidence": 0.7},
            {"start_s": 200, "end_s": 400, "cluster": 5, "confidence": 0.8},
        ]
    )
    return pl.DataFrame(
        [
            row("/lib/A/One/01.flac", 3, 0.9, title="Sad", artist="A", album="One", lyrics_source="sidecar"),
            row("/lib/A/One/02.flac", 3, 0.6, title="Sadder", artist="A", album="One", lyrics_source="embedded"),
            row(
                "/lib/B/Two/01.flac",
                5,
                0.8,
                title="Loud",
                artist="B",
                album="Two",
                midi_path="/lib/B/Two/01.mid",
                duration_s=400.0,
                timeline=timeline,
            ),
            row("/lib/B/Two/02.flac", 2, 0.4, title=XSS_TITLE, artist="B", album="Two"),
            row("/lib/B/Two/03.flac", status="error", title="Broken", artist="B"),
            row("/lib/C/03.flac", 3, 0.5, artist=None, album=None),
        ],
        infer_schema_length=None,
    )


# --- summary numbers -------------------------------------------------------------------------------


def test_summary_counts_moods_groups_and_failures():
    summary = summarize(small_results())
    assert [c["name"] for c in summary["classes"]] == list(MIREX.names)
    totals = summary["totals"]
    assert (totals["tracks"], totals["ok"], totals["errors"], totals["predicted"]) == (6, 5, 1, 5)
    assert (totals["with_lyrics"], totals["lyrics_sidecar"], totals["with_midi"], totals["with_timeline"]) == (
        2,
        1,
        1,
        1,
    )
    assert [d["count"] for d in summary["distribution"]] == [0, 1, 3, 0, 1]
    assert summary["distribution"][2]["mean_confidence"] == pytest.approx((0.9 + 0.6 + 0.5) / 3, abs=1e-4)
    assert summary["library_root"] == "/lib"
    artists = {r["name"]: r["counts"] for r in summary["by_artist"]["rows"]}
    assert artists == {"A": [0, 0, 2, 0, 0], "B": [0, 1, 0, 0, 1], "Unknown artist": [0, 0, 1, 0, 0]}
    folders = {r["name"]: r["total"] for r in summary["by_folder"]["rows"]}
    assert folders == {"A/One": 2, "B/Two": 2, "C": 1}
    assert summary["errors"]["failures"] == [{"path": "/lib/B/Two/03.flac", "error": "decode failed"}]
    assert [t["title"] for t in summary["top_tracks"][2]["tracks"]] == ["Sad", "Sadder", "03.flac"]
    assert sum(map(sum, summary["confidence"]["counts"])) == 5


def test_summary_timeline_only_for_long_tracks():
    timelines = summarize(small_results(), long_track_s=300)["timelines"]
    assert [t["title"] for t in timelines["tracks"]] == ["Loud"]
    assert [s["cluster"] for s in timelines["tracks"][0]["segments"]] == [3, 5]
    assert summarize(small_results(), long_track_s=500)["timelines"]["tracks"] == []


def test_summary_follows_the_class_count_in_the_data():
    summary = summarize(synthetic_results(200, k=3))
    assert [c["name"] for c in summary["classes"]] == ["Class 1", "Class 2", "Class 3"]
    assert len(summary["by_artist"]["rows"][0]["counts"]) == 3
    assert sum(d["count"] for d in summary["distribution"]) == summary["totals"]["predicted"]


def test_summary_of_only_errors_has_no_predictions():
    errors = pl.DataFrame({"path": ["/x/a.mp3", "/x/b.mp3"], "status": ["error"] * 2, "error": ["bad"] * 2})
    summary = summarize(errors)
    assert summary["totals"]["errors"] == 2 and summary["totals"]["predicted"] == 0
    assert "<html" in render_html(errors)


def test_summary_of_results_without_probabilities():
    """A trimmed or hand-made file may carry the prediction but no prob_cluster_* columns."""
    frame = small_results().select("path", "status", "title", "cluster", "cluster_name", "confidence")
    summary = summarize(frame)
    assert [d["count"] for d in summary["distribution"]] == [0, 1, 3, 0, 1]
    assert all(d["mean_probability"] is None for d in summary["distribution"])
    assert "<html" in render_html(frame)


# Quadrant and its probability for four of small_results' five predictions; /lib/C/03.flac has none (a
# rescan by a model without valence–arousal), the failed row neither.
SMALL_QUADRANTS = {
    "/lib/A/One/01.flac": (3, 0.5),
    "/lib/A/One/02.flac": (3, 0.7),
    "/lib/B/Two/01.flac": (2, 0.9),
    "/lib/B/Two/02.flac": (1, 0.45),
}


def test_summary_counts_quadrants_and_means_valence_and_arousal():
    frame = with_valence_arousal(small_results(), SMALL_QUADRANTS)
    section = summarize(frame)["valence_arousal"]
    assert [q["count"] for q in section["quadrants"]] == [1, 1, 2, 0]
    assert [q["name"] for q in section["quadrants"]] == list(QUADRANT_NAMES)
    assert (section["tracks"], section["on_plane"], section["without"]) == (4, 4, 1)
    placed = frame.filter(pl.col("valence").is_not_null())
    assert section["mean_valence"] == pytest.approx(placed.get_column("valence").mean(), abs=1e-4)
    assert section["mean_arousal"] == pytest.approx(placed.get_column("arousal").mean(), abs=1e-4)
    assert section["quadrants"][2]["share"] == 0.5
    text = render_markdown(summarize(frame))
    assert "## Valence and arousal" in text and "| Q3 negative, calm | 2 | 50.0% |" in text
    assert "over 4 tracks" in text and "1 predicted track had no valence–arousal" in text


@pytest.mark.parametrize("how", ["absent", "null", "csv of nulls"])
def test_results_without_valence_arousal_show_no_plane(tmp_path, how):
    frame = small_results()
    if how != "absent":  # a model without the head: the columns are there, every value empty
        frame = with_valence_arousal(frame, {})
    if how == "csv of nulls":  # CSV reads an all-empty column back as text
        frame.write_csv(tmp_path / "scan.csv")
        frame = load_results(tmp_path / "scan.csv")
    summary = summarize(frame)
    assert summary["valence_arousal"] is None
    assert "alence" not in render_markdown(summary)  # says nothing, rather than zeros
    assert json.loads(render_report(frame, format="json"))["valence_arousal"] is None
    payload = json.loads(embedded_json(render_html(frame)))
    assert "valence" not in payload["table"] and "arousal" not in payload["table"]
    assert [d["count"] for d in summary["distribution"]] == [0, 1, 3, 0, 1]  # the rest as before


# --- escaping ---------------------------------------------------------------------------------------


def embedded_json(page: str) -> str:
    match = re.search(rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>', page, re.S)
    assert match, "report data element missing"
    return match.group(1)


def test_html_embeds_strangers_tags_as_inert_json():
    frame = small_results().with_columns(pl.lit("Ünïcode\u2028line").alias("album"))
    page = render_html(frame, title="<b>lib</b>")
    data = embedded_json(page)
    assert "<" not in data and ">" not in data and "&" not in data and "\u2028" not in data
    assert "<img" not in page and "<svg onload" not in page
    assert "<title>&lt;b&gt;lib&lt;/b&gt;</title>" in page
    payload = json.loads(data)
    assert XSS_TITLE in payload["table"]["title"]


def test_html_table_codes_decode_to_the_tags():
    frame = small_results()
    table = json.loads(embedded_json(render_html(frame)))["table"]
    artists = [table["artist_values"][code] if code >= 0 else None for code in table["artist"]]
    assert artists == frame.filter(pl.col("status") == "ok").get_column("artist").to_list()
    assert table["folder_values"][table["folder"][0]] == "A/One" and table["file"][0] == "01.flac"


def test_html_carries_every_dot_of_the_plane_compactly():
    quadrants = {**SMALL_QUADRANTS, "/lib/C/03.flac": (4, 0.6)}
    frame = with_valence_arousal(small_results(), quadrants)
    outside = pl.when(pl.col("path") == "/lib/C/03.flac").then(1.5).otherwise(pl.col("valence"))
    frame = frame.with_columns(outside.alias("valence"))  # a hand-edited value off the plane
    payload = json.loads(embedded_json(render_html(frame)))
    table = payload["table"]
    ok = frame.filter(pl.col("status") == "ok")
    assert len(table["valence"]) == len(table["arousal"]) == table["count"] == ok.height
    for (valence, arousal), x, y in zip(
        ok.select("valence", "arousal").iter_rows(), table["valence"], table["arousal"]
    ):
        if valence > 1:  # not drawn: neither number, so no half-placed dot
            assert (x, y) == (-1, -1)
        else:
            assert (x, y) == (round(valence * 1000), round(arousal * 1000))
    assert payload["summary"]["valence_arousal"]["on_plane"] == 4
    assert 'id="plane-panel" hidden' in render_html(frame)  # the page's script shows it when there are dots

    # Quadrants but no valence or arousal (a hand-made file): counted, but there is no plane to draw.
    no_place = frame.with_columns(pl.lit(None, pl.Float64).alias("valence"))
    payload = json.loads(embedded_json(render_html(no_place)))
    assert payload["summary"]["valence_arousal"]["tracks"] == 5 and "valence" not in payload["table"]
    assert "Mean valence" not in render_markdown(summarize(no_place))


def test_html_placeholders_in_tags_stay_text():
    page = render_html(small_results().with_columns(pl.lit("{{SCRIPT}} {{DATA}}").alias("album")))
    assert page.count(asset("report.js")) == 1 and "{{SCRIPT}} {{DATA}}" in page
    assert "</script" not in asset("report.js").lower()  # the inline script must not end itself


def test_markdown_escapes_tags():
    text = render_markdown(summarize(small_results()))
    assert "\\<img" in text and not re.search(r"(?<!\\)[<>]", text)  # every angle bracket is text
    assert "| Wistful | 3 |" in text


def test_markdown_reads_as_the_tags_say_and_renders_inert():
    markdown_it = pytest.importorskip("markdown_it")  # rich's Markdown parser: CommonMark, as GitHub renders
    frame = small_results().with_columns(
        pl.when(pl.col("artist") == "A").then(pl.lit("Mel & Tim")).otherwise(pl.col("artist")).alias("artist"),
        pl.when(pl.col("title") == "Sad")
        .then(pl.lit("AT&amp;T *not bold* [no link](http://x) <b>raw</b>"))
        .otherwise(pl.col("title"))
        .alias("title"),
    )
    text = render_markdown(summarize(frame))
    assert "| Mel & Tim |" in text and "&amp; Tim" not in text  # a terminal shows the tag as it is
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    assert "<td>Mel &amp; Tim</td>" in rendered  # HTML for "Mel & Tim"
    assert "AT&amp;amp;T *not bold* [no link](http://x) &lt;b&gt;raw&lt;/b&gt;" in rendered  # the title, as typed
    assert not re.search(r"<(img|script|svg|b|em|a)\b", rendered)


def test_html_uses_no_network():
    page = render_html(small_results())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


# --- playlists --------------------------------------------------------------------------------------


def test_playlists_relative_paths_in_confidence_order(tmp_path):
    library = tmp_path / "lib"
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib", str(library)))
    written = write_playlists(frame, library, min_confidence=0.0)
    wistful = (library / "3-Wistful.m3u8").read_text(encoding="utf-8").splitlines()
    assert wistful[0] == "#EXTM3U"
    assert [line for line in wistful if not line.startswith("#")] == ["A/One/01.flac", "A/One/02.flac", "C/03.flac"]
    assert written.entries["Wistful"] == 3
    assert sorted(p.name for p in library.glob("*.m3u8")) == [
        "1-Passionate.m3u8",
        "2-Cheerful.m3u8",
        "3-Wistful.m3u8",
        "4-Humorous.m3u8",
        "5-Aggressive.m3u8",
    ]
    cheerful = (library / "2-Cheerful.m3u8").read_text(encoding="utf-8")
    assert "\n#EXTINF:200,B - </script>" in cheerful  # a title is one line of text, never a path


def test_a_file_named_like_a_comment_is_still_a_track(tmp_path):
    library = tmp_path / "lib"
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib/A/One/01", f"{library}/#1 Hit"))
    write_playlists(frame, library, min_confidence=0.0)
    wistful = (library / "3-Wistful.m3u8").read_text(encoding="utf-8").splitlines()
    assert "./#1 Hit.flac" in wistful and "#1 Hit.flac" not in wistful  # `#...` would be an M3U comment


def test_playlists_min_confidence(tmp_path):
    library = tmp_path / "lib"
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib", str(library)))
    written = write_playlists(frame, library, min_confidence=0.55)
    assert written.entries == {"Passionate": 0, "Cheerful": 0, "Wistful": 2, "Humorous": 0, "Aggressive": 1}


def test_playlists_per_quadrant_by_the_quadrants_own_probability(tmp_path):
    library = tmp_path / "lib"
    quadrants = {path.replace("/lib", str(library)): q for path, q in SMALL_QUADRANTS.items()}
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib", str(library)))
    frame = with_valence_arousal(frame, quadrants)

    written = write_playlists(frame, library)

    assert written.quadrants
    names = sorted(p.name for p in library.glob("Q*.m3u8"))
    assert names == [
        "Q1-positive energetic.m3u8",
        "Q2-negative energetic.m3u8",
        "Q3-negative calm.m3u8",
        "Q4-positive calm.m3u8",
    ]
    calm = (library / "Q3-negative calm.m3u8").read_text(encoding="utf-8").splitlines()
    assert calm[:2] == ["#EXTM3U", "#PLAYLIST:Q3 negative, calm"]
    assert [line for line in calm if not line.startswith("#")] == ["A/One/02.flac", "A/One/01.flac"]  # 0.7, 0.5
    assert written.entries["Q3 negative, calm"] == 2 and written.entries["Q4 positive, calm"] == 0
    assert written.files["Q1 positive, energetic"] == library / "Q1-positive energetic.m3u8"
    assert written.entries["Wistful"] == 3  # the mood playlists as before, C/03.flac with no quadrant in its mood's

    cut = write_playlists(frame, library, min_confidence=0.6)
    # 01.flac is Wistful at 0.9 but negative and calm at only 0.5: out of the quadrant's list, in the mood's.
    assert [
        line for line in (library / "Q3-negative calm.m3u8").read_text().splitlines() if not line.startswith("#")
    ] == ["A/One/02.flac"]
    assert {name: n for name, n in cut.entries.items() if name.startswith("Q")} == {
        "Q1 positive, energetic": 0,
        "Q2 negative, energetic": 1,
        "Q3 negative, calm": 1,
        "Q4 positive, calm": 0,
    }
    assert cut.entries["Wistful"] == 2


def test_playlists_without_valence_arousal_write_no_quadrant_playlists(tmp_path):
    library = tmp_path / "lib"
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib", str(library)))
    for results in (frame, with_valence_arousal(frame, {})):  # columns absent, or there and empty
        written = write_playlists(results, library)
        assert not written.quadrants and len(written.files) == 5
        assert not list(library.glob("Q*"))


def test_playlists_go_up_only_to_files_that_exist(tmp_path):
    library = tmp_path / "lib"
    existing = library / "A" / "song.flac"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"")
    frame = pl.DataFrame(
        {
            "path": [str(existing), str(library / "A" / "gone.flac"), "/etc/../etc/passwd\nevil.flac", "relative.flac"],
            "status": ["ok"] * 4,
            "cluster": [1] * 4,
            "cluster_name": ["Passionate"] * 4,
            "confidence": [0.9, 0.8, 0.7, 0.6],
        }
    )
    out = library / "playlists"
    written = write_playlists(frame, out)
    entries = [line for line in (out / "1-Passionate.m3u8").read_text().splitlines() if not line.startswith("#")]
    assert entries == ["../A/song.flac"]
    assert (out / entries[0]).resolve() == existing.resolve()
    assert len(written.skipped) == 3
    assert dict(written.skipped) == {
        str(library / "A" / "gone.flac"): f"outside {out} and not there any more (moved or deleted since the scan?)",
        "/etc/../etc/passwd\nevil.flac": "its name has a line break, which an M3U playlist cannot hold "
        "(rename the file to list it)",
        "relative.flac": "a relative path in the results, so no playlist folder can point to it",
    }


def test_cli_playlists_names_each_track_it_leaves_out_and_why(tmp_path, capsys):
    library = tmp_path / "lib"
    (library / "A").mkdir(parents=True)
    songs = [library / "A" / "song.flac", library / "A" / "two\nlines.flac"]
    for song in songs:
        song.write_bytes(b"")
    frame = pl.DataFrame(
        {
            "path": [str(song) for song in songs],
            "status": ["ok"] * 2,
            "cluster": [1, 1],
            "cluster_name": ["Passionate"] * 2,
            "confidence": [0.9, 0.8],
        }
    )
    frame.write_parquet(tmp_path / "scan.parquet")  # Parquet holds a line break in a path as it is
    assert main(["playlists", str(tmp_path / "scan.parquet"), "-o", str(library / "pl")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"skipped {str(songs[1])!r}: its name has a line break, which an M3U playlist cannot hold "
        "(rename the file to list it)"
    )
    assert "\\n" in err[0] and "not reachable" not in "\n".join(err)


# --- CLI --------------------------------------------------------------------------------------------


def test_cli_report_formats_and_playlists(tmp_path, capsys):
    results = tmp_path / "scan.jsonl"
    small_results().write_ndjson(results)
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert main(["report", str(results), "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["totals"]["tracks"] == 6
    capsys.readouterr()
    assert main(["report", str(results), "--format", "md", "--out", "-"]) == 0
    assert "## Mood distribution" in capsys.readouterr().out
    assert main(["playlists", str(results), "--out", str(tmp_path / "pl"), "--min-confidence", "0.5"]) == 0
    assert len(list((tmp_path / "pl").glob("*.m3u8"))) == 5


@pytest.mark.parametrize("content", [None, ""])
def test_cli_missing_or_empty_results_is_a_usage_error(tmp_path, capsys, content):
    results = tmp_path / "scan.csv"
    if content is not None:
        results.write_text(content)
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 2
    assert main(["playlists", str(results), "--out", str(tmp_path / "pl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and str(results) in err[0]
    assert not (tmp_path / "r.html").exists()


def test_load_results_reads_csv(tmp_path):
    results = tmp_path / "scan.csv"
    small_results().drop("timeline").write_csv(results)
    assert summarize(load_results(results))["totals"]["tracks"] == 6


def test_cli_report_reads_a_parquet_folder_from_the_ray_engine(tmp_path):
    """`scan --engine ray -o x.parquet` writes a folder of part files; report and playlists read it whole."""
    from mer_tag.sinks import PartWriter  # the Ray engine's Parquet sink

    frame = small_results()
    results = tmp_path / "scan.parquet"
    writer = PartWriter(results, frame.columns)
    for row in frame.to_dicts():
        writer.write(row)
    writer.close()
    assert results.is_dir()
    assert main(["report", str(results), "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["totals"]["tracks"] == frame.height
    assert main(["playlists", str(results), "--out", str(tmp_path / "pl")]) == 0
    assert list((tmp_path / "pl").glob("*.m3u8"))


# --- scale ------------------------------------------------------------------------------------------


def test_100k_rows_summarised_and_page_size_bounded():
    frame = synthetic_results(100_000)
    summary = summarize(frame)
    assert summary["totals"]["tracks"] == 100_000
    assert len(json.dumps(summary)) < 300_000  # charts get aggregates, never rows
    page = render_html(frame, summary=summary)
    table = json.loads(embedded_json(page))["table"]
    assert len(table["title"]) == summary["totals"]["predicted"]
    assert len(page.encode()) < 100_000 * 110 + 500_000  # compact columnar rows; the page draws 50 at a time


# --- output format from the file name ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "given", "expected"),
    [
        ("r.html", None, "html"),
        ("r.htm", None, "html"),
        ("R.HTML", None, "html"),
        ("r.md", None, "md"),
        ("deep/r.json", None, "json"),
        ("r.json", "json", "json"),
        (None, None, "html"),
        (None, "md", "md"),
        ("-", None, "html"),
        ("-", "json", "json"),
    ],
)
def test_report_format_comes_from_the_extension(out, given, expected):
    assert report_format(out, given) == expected


@pytest.mark.parametrize(
    ("out", "given"),
    [
        ("r.pdf", None),
        ("report", None),
        ("r.txt", "md"),
        ("r.json", "md"),
        ("r.htm", "json"),
    ],
)
def test_report_format_refuses_unknown_or_contradicted_names(out, given):
    with pytest.raises(FormatError):
        report_format(out, given)


def test_the_report_is_titled_by_the_library_not_the_results_file(tmp_path):
    results = tmp_path / "moods.csv"
    small_results().write_csv(results)  # every track under /lib
    write_report(results, tmp_path / "r.html")
    write_report(results, tmp_path / "r.md")
    assert "<title>Library moods: lib</title>" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# Library moods: lib\n")
    assert library_title("/", "moods.csv") == "Library moods: /"
    assert library_title("", "moods.csv") == "Library moods: moods.csv"  # tracks that share no folder


@pytest.mark.parametrize("given", ["out/", "existing"])
def test_a_folder_as_the_report_asks_for_a_file_in_it(given, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    small_results().write_csv(tmp_path / "moods.csv")
    assert main(["report", "moods.csv", "-o", given]) == 2
    folder = given.rstrip("/")
    assert capsys.readouterr().err == f"error: {given} is a folder: give a report file, e.g. {folder}/report.html\n"
    assert not (tmp_path / "out").exists() and not list((tmp_path / "existing").iterdir())


@pytest.mark.parametrize("given", ["moods.csv", "Moods.m3u8"])
def test_playlists_into_a_file_is_one_line_before_anything_is_read(given, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small_results().write_csv(tmp_path / "moods.csv")
    before = (tmp_path / "moods.csv").read_bytes()
    assert main(["playlists", "moods.csv", "-o", given]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "playlists go into a folder" in err and "e.g." in err
    assert (tmp_path / "moods.csv").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "moods.csv"
    ]


def test_cli_report_writes_the_format_its_extension_names(tmp_path, capsys):
    results = tmp_path / "scan.jsonl"
    small_results().write_ndjson(results)
    for name in ("r.md", "r.json", "r.htm"):
        assert main(["report", str(results), "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# Library moods")
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["schema"] == "mer-tag-report/1"
    assert (tmp_path / "r.htm").read_text(encoding="utf-8").startswith("<!doctype html>")
    capsys.readouterr()
    assert main(["report", str(results), "-o", "-"]) == 0  # stdout has no extension: --format, else HTML
    assert capsys.readouterr().out.startswith("<!doctype html>")
    assert main(["report", str(results), "-o", "-", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["tracks"] == 6


@pytest.mark.parametrize("args", [["-o", "r.pdf"], ["-o", "report"], ["-o", "r.json", "--format", "md"]])
def test_cli_report_refuses_an_output_name_before_any_work(tmp_path, capsys, monkeypatch, args):
    results = tmp_path / "scan.jsonl"
    small_results().write_ndjson(results)
    monkeypatch.chdir(tmp_path)

    def no_work(*_args, **_kwargs):
        raise AssertionError("the results file was read")

    monkeypatch.setattr("mer_tag.report.load_results", no_work)
    before = sorted(tmp_path.iterdir())
    assert main(["report", str(results), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and args[1] in err[0] and "Traceback" not in err[0]
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def write_bad_results(folder, kind: str):
    if kind == "no path column":
        (folder / "scan.csv").write_text("a,b\n1,2\n")
        return folder / "scan.csv"
    if kind == "nested path":
        (folder / "scan.jsonl").write_text('{"path": ["/a.flac"], "status": "ok"}\n')
        return folder / "scan.jsonl"
    if kind == "not a table":
        (folder / "scan.jsonl").write_text('{"path": "/a.flac"}\n5\n')
        return folder / "scan.jsonl"
    (folder / "scan.parquet").write_text("hello")
    return folder / "scan.parquet"


@pytest.mark.parametrize("kind", ["no path column", "nested path", "not a table", "not parquet"])
def test_cli_report_of_a_file_that_is_not_results_is_a_usage_error(tmp_path, capsys, kind):
    results = write_bad_results(tmp_path, kind)
    assert main(["report", str(results), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(results) in err[0]
    assert not (tmp_path / "r.html").exists()


def test_cli_report_output_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    results = tmp_path / "scan.jsonl"
    small_results().write_ndjson(results)
    (tmp_path / "file").write_text("mine")
    (tmp_path / "taken.html").mkdir()
    assert main(["report", str(results), "-o", str(tmp_path / "file" / "sub" / "r.html")]) == 2
    assert main(["report", str(results), "-o", str(tmp_path / "taken.html")]) == 2
    assert main(["playlists", str(results), "-o", str(tmp_path / "file" / "pl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and err[0].startswith("error: cannot") and err[2].startswith("error: cannot")
    taken = tmp_path / "taken.html"
    assert err[1] == f"error: {taken} is a folder: give a report file, e.g. {taken / 'report.html'}"
    assert (tmp_path / "file").read_text() == "mine" and not list(tmp_path.glob("*.tmp"))


def test_write_report_keeps_an_earlier_report_when_writing_fails(tmp_path, monkeypatch):
    results = tmp_path / "scan.jsonl"
    small_results().write_ndjson(results)
    (tmp_path / "r.md").write_text("earlier report")

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", full_disk)  # how mer_tag._fs writes the temp file
    with pytest.raises(OutputError, match="No space left"):
        write_report(results, tmp_path / "r.md")
    monkeypatch.undo()
    assert (tmp_path / "r.md").read_text() == "earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "scan.jsonl"]  # no temp file left


# --- words, links and the histogram -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 tracks"),
        (1, "1 track"),
        (2, "2 tracks"),
        (1234, "1,234 tracks"),
    ],
)
def test_plural(count, expected):
    assert plural(count, "track") == expected
    assert plural(count, "match", "matches").endswith("match" if count == 1 else "matches")


def test_markdown_counts_in_words_agree_with_the_number():
    one_failure = render_markdown(summarize(small_results()))
    assert "## Failures (1 file)" in one_failure
    two = pl.concat([small_results(), small_results().with_columns(pl.col("path") + ".2")])
    assert "## Failures (2 files)" in render_markdown(summarize(two))
    one_artist = small_results().with_columns(pl.lit("A").alias("artist"))
    assert "## Mood by artist (1 artist)" in render_markdown(summarize(one_artist))
    assert "## Mood over time in long tracks (1 track)" in one_failure


def test_cli_playlists_counts_in_words(tmp_path, capsys):
    library = tmp_path / "lib"
    (library / "A").mkdir(parents=True)
    (library / "A" / "song.flac").write_bytes(b"")
    frame = pl.DataFrame(
        {
            "path": [str(library / "A" / "song.flac"), str(tmp_path / "elsewhere.flac")],
            "status": ["ok"] * 2,
            "cluster": [1, 2],
            "cluster_name": ["Passionate", "Cheerful"],
            "confidence": [0.9, 0.8],
        }
    )
    results = tmp_path / "scan.csv"
    frame.write_csv(results)
    assert main(["playlists", str(results), "-o", str(library / "pl")]) == 0
    captured = capsys.readouterr()
    counts = [line.split("  ")[0].strip() for line in captured.out.splitlines()]
    assert counts == ["1 track", "0 tracks"]  # two classes in the data: two playlists
    assert captured.err.startswith(
        f"skipped {str(tmp_path / 'elsewhere.flac')!r}: outside {library / 'pl'} and not there any more"
    )
    assert "No quadrant playlists: no track here has valence–arousal" in captured.err


def test_cli_playlists_says_which_quadrant_playlists_it_wrote(tmp_path, capsys):
    library = tmp_path / "lib"
    quadrants = {path.replace("/lib", str(library)): q for path, q in SMALL_QUADRANTS.items()}
    frame = with_valence_arousal(
        small_results().with_columns(pl.col("path").str.replace("^/lib", str(library))), quadrants
    )
    frame.write_parquet(tmp_path / "scan.parquet")
    assert main(["playlists", str(tmp_path / "scan.parquet"), "-o", str(library)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9  # five moods, four quadrants
    assert lines[7].startswith("2 tracks  Q3 negative, calm ")
    assert lines[7].endswith(f"  {library / 'Q3-negative calm.m3u8'}")
    assert (library / "Q3-negative calm.m3u8").exists()


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/music/a b/#1 ?x% é.flac", "file:///music/a%20b/%231%20%3Fx%25%20%C3%A9.flac"),
        ("/music/AC\\DC/x.flac", "file:///music/AC%5CDC/x.flac"),
        ("C:\\Music\\Über #1.flac", "file:///C:/Music/%C3%9Cber%20%231.flac"),
        ("d:/Music/a b.mp3", "file:///d:/Music/a%20b.mp3"),
        ("\\\\nas\\share\\a b.flac", "file://nas/share/a%20b.flac"),
        ("/", "file:///"),
        ("relative/a.flac", None),
        ("", None),
    ],
)
def test_file_url(path, url):
    assert file_url(path) == url


def test_file_url_round_trips_odd_posix_paths():
    for path in ["/a b/c#d?e%f/ü.flac", "/x/100% & 'quotes' (1).mp3", "/日本/曲 #2.ogg", "/a/b/"]:
        url = file_url(path)
        assert url == pathlib.PurePosixPath(path).as_uri() + ("/" if path.endswith("/") and path != "/" else "")
        parsed = urllib.parse.urlsplit(url)
        assert (parsed.scheme, parsed.netloc, parsed.query, parsed.fragment) == ("file", "", "", "")
        assert urllib.parse.unquote(parsed.path) == path


def test_html_links_every_track_to_its_file():
    odd_path = pl.when(pl.col("title") == "Sad").then(pl.lit("/lib/A/One/01 #1 ?é%.flac")).otherwise(pl.col("path"))
    frame = small_results().with_columns(odd_path.alias("path"))
    relative = frame.head(1).with_columns(pl.lit("relative/x.flac").alias("path"))
    frame = pl.concat([frame, relative], how="diagonal_relaxed")
    payload = json.loads(embedded_json(render_html(frame)))
    table = payload["table"]
    ok = frame.filter(pl.col("status") == "ok")
    for path, file, code in zip(ok.get_column("path"), table["file"], table["folder"]):
        # What the page does: the shared prefix, the folder's suffix, the file name encoded as one segment.
        folder = table["folder_urls"][code]
        url = None if folder is None else table["url_prefix"] + folder + urllib.parse.quote(file, safe="")
        assert url == file_url(path)
    assert table["folder_urls"][table["folder"][-1]] is None  # a relative path gets no link
    assert table["url_prefix"] == "file:///lib/"
    wistful = payload["summary"]["top_tracks"][2]["tracks"]
    assert wistful[0]["url"] == "file:///lib/A/One/01%20%231%20%3F%C3%A9%25.flac"
    assert all(t["url"] == file_url(t["path"]) for mood in payload["summary"]["top_tracks"] for t in mood["tracks"])


def test_html_gives_no_link_rather_than_a_wrong_one():
    """Relative and absolute paths mixed: both folders show as 'A', so neither may take the other's URL."""
    frame = small_results().head(2).with_columns(pl.Series("path", ["A/x.flac", "/A/y.flac"]))
    table = json.loads(embedded_json(render_html(frame)))["table"]
    assert table["folder_values"] == ["A"] and table["folder_urls"] == [None]


def test_confidence_histogram_counts_whole_tracks():
    frame = synthetic_results(2000, seed=3)
    # Confidences on the bin edges (k / 20, and 1.0) must each land in exactly one bin.
    edges = [round(k / 20, 4) for k in range(21)]
    confidence = frame.get_column("confidence").to_list()
    frame = frame.with_columns(pl.Series("confidence", edges + confidence[len(edges) :], dtype=pl.Float64))
    summary = summarize(frame)
    counts = summary["confidence"]["counts"]
    assert len(counts) == 20 and all(isinstance(n, int) and n >= 0 for row in counts for n in row)
    assert sum(map(sum, counts)) == summary["totals"]["predicted"]
    edge_rows = frame.head(len(edges)).filter(pl.col("status") == "ok", pl.col("cluster").is_not_null())
    assert edge_rows.height > 0
    for confidence, cluster in edge_rows.select("confidence", "cluster").iter_rows():
        assert counts[min(round(confidence * 20), 19)][cluster - 1] > 0


def test_quadrant_playlists_of_an_earlier_run_are_emptied_not_left_listing_its_tracks(tmp_path, capsys):
    """Results rescanned by a model without valence–arousal: the quadrant playlists already in the folder would
    go on listing the earlier run's tracks. They are emptied (never deleted: a player keeps its list), and said."""
    library = tmp_path / "lib"
    quadrants = {path.replace("/lib", str(library)): q for path, q in SMALL_QUADRANTS.items()}
    frame = small_results().with_columns(pl.col("path").str.replace("^/lib", str(library)))
    assert write_playlists(with_valence_arousal(frame, quadrants), library).entries["Q3 negative, calm"] == 2
    results = tmp_path / "rescanned.csv"
    frame.write_csv(results)
    assert main(["playlists", str(results), "-o", str(library)]) == 0
    calm = (library / "Q3-negative calm.m3u8").read_text(encoding="utf-8").splitlines()
    assert calm == ["#EXTM3U", "#PLAYLIST:Q3 negative, calm"]
    assert len(list(library.glob("Q*.m3u8"))) == 4
    assert "No quadrant playlists (those there from an earlier run are now empty)" in capsys.readouterr().err
