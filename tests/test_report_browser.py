"""The HTML report in a real headless Chromium, driven through chromedriver's W3C WebDriver endpoint with
the standard library only. Skips when Chromium or chromedriver is missing (`.ci/run` installs both)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from mer_tag.cli import main
from mer_tag.labels import MIREX
from mer_tag.report import file_url
from test_report import XSS_TITLE, synthetic_results, with_valence_arousal

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C name for an element reference
# Quiet, sandbox-free (root in CI) and offline: without the background flags Chromium phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,900",
]


def first_on_path(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriver:
    """The handful of W3C WebDriver calls the test needs."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.session = ""

    def call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"WebDriver {method} {path}: {exc.read().decode(errors='replace')[:500]}") from None

    def wait_ready(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/status").get("ready"):
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError("chromedriver did not start")

    def start(self, chromium: str, profile: Path) -> None:
        options = {"binary": chromium, "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = "/session/" + self.call("POST", "/session", {"capabilities": capabilities})["sessionId"]

    def stop(self) -> None:
        if self.session:
            self.call("DELETE", self.session)

    def open(self, url: str) -> None:
        self.call("POST", self.session + "/url", {"url": url})

    def js(self, script: str, *args):
        return self.call("POST", self.session + "/execute/sync", {"script": script, "args": list(args)})

    def element(self, css: str) -> str:
        return self.call("POST", self.session + "/element", {"using": "css selector", "value": css})[ELEMENT_KEY]

    def type(self, css: str, text: str) -> None:
        element = self.element(css)
        self.call("POST", f"{self.session}/element/{element}/clear", {})
        self.call("POST", f"{self.session}/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        self.call("POST", f"{self.session}/element/{self.element(css)}/click", {})

    def resize(self, width: int, height: int) -> None:
        self.call("POST", self.session + "/window/rect", {"width": width, "height": height})

    def screenshot(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(self.call("GET", self.session + "/screenshot")))

    def wait_for(self, script: str, seconds: float = 10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := self.js(script):
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for: {script}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = first_on_path("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    driver_binary = first_on_path("chromedriver")
    if chromium is None or driver_binary is None:
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    port = free_port()
    process = subprocess.Popen([driver_binary, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = WebDriver(port)
    try:
        driver.wait_ready()
        driver.start(chromium, tmp_path_factory.mktemp("chromium-profile"))
        yield driver
        driver.stop()
    finally:
        process.terminate()
        process.wait(timeout=10)


LONG_TITLE = (
    "\u00dcber den Wolken muss die Freiheit wohl grenzenlos sein (Live at the Waldb\u00fchne, Berlin, 1989, Remastered)"
)
ACCENTED_ARTIST = "Beyonc\u00e9"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> pl.DataFrame:
    """3,000 synthetic rows; the most confident track gets a long accented title, another an accented artist."""
    frame = synthetic_results(3000, root="/srv/music").with_row_index("row")
    ok = frame.filter(pl.col("status") == "ok", pl.col("row") > 0).sort("confidence", descending=True)
    most_confident, other = ok.item(0, "row"), ok.item(1, "row")
    return frame.with_columns(
        pl.when(pl.col("row") == most_confident).then(pl.lit(LONG_TITLE)).otherwise(pl.col("title")).alias("title"),
        pl.when(pl.col("row") == other).then(pl.lit(ACCENTED_ARTIST)).otherwise(pl.col("artist")).alias("artist"),
    ).drop("row")


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    results.write_parquet(folder / "scan.parquet")
    assert main(["report", str(folder / "scan.parquet"), "--out", str(folder / "report.html")]) == 0
    return folder / "report.html"


def save_full_page(browser: WebDriver, width: int, target: Path) -> None:
    browser.resize(width, 900)
    browser.resize(width, browser.js("return document.documentElement.scrollHeight"))
    # Charts redraw for the new width after a short pause (resize events are debounced).
    browser.wait_for(
        "const box = document.getElementById('chart-groups');"
        "return box.firstChild.getAttribute('width') == Math.max(280, box.clientWidth)"
    )
    browser.screenshot(target)


VISIBLE_ROWS = "return document.querySelectorAll('#tracks tbody tr').length"
STATUS = "return document.getElementById('table-status').textContent"


def test_report_renders_charts_filters_and_runs_no_injected_code(browser, report, results):
    browser.open(report.as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    counts = browser.js("""
        const n = (css) => document.querySelectorAll(css).length;
        return {distribution: n('#chart-distribution svg rect.bar'), confidence: n('#chart-confidence svg rect'),
                groups: n('#chart-groups svg rect.bar'), coverage: n('#chart-coverage svg rect'),
                timelines: n('#timelines svg rect'), top: n('#top-tracks li'), failures: n('#failures tbody tr')}""")
    assert counts["distribution"] == 5 and counts["confidence"] > 20 and counts["groups"] > 15
    assert counts["coverage"] == 10 and counts["timelines"] > 10 and counts["top"] == 50 and counts["failures"] > 0

    save_full_page(browser, 1280, ARTIFACTS / "report.png")
    save_full_page(browser, 390, ARTIFACTS / "report-narrow.png")  # a phone: the layout must still read
    browser.resize(1280, 900)

    assert browser.js(VISIBLE_ROWS) == 50
    # The highest-numbered artist's folder: "Artist 249/" can be no other artist's, "Artist 24" could.
    artist = results.filter(pl.col("status") == "ok").get_column("path").str.extract(r"/Artist (\d+)/").cast(int).max()
    expected = results.filter(pl.col("status") == "ok", pl.col("path").str.contains(f"/Artist {artist}/")).height
    assert 0 < expected < 50
    browser.type("#filter", f"Artist {artist}/")
    browser.wait_for(f"return document.querySelectorAll('#tracks tbody tr').length === {expected}")
    assert f"of {expected} tracks (filtered from" in browser.js(STATUS)

    browser.type("#filter", "onerror")
    browser.wait_for("return document.querySelectorAll('#tracks tbody tr').length === 1")
    assert browser.js("return document.querySelector('#tracks tbody td').textContent") == XSS_TITLE
    assert browser.js("return window.__xss === undefined")
    assert browser.js("return document.querySelectorAll('img, [onerror], [onload]').length") == 0
    assert browser.js("return performance.getEntriesByType('resource').length") == 0  # nothing fetched


def test_report_table_sorts_and_pages(browser, report, results):
    browser.open(report.as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    browser.click("#tracks-head th:nth-child(5) button")  # Confidence: most confident first
    top = browser.js("return document.querySelector('#tracks tbody tr td:nth-child(5)').textContent")
    assert float(top) == pytest.approx(results.get_column("confidence").max(), abs=0.01)
    browser.click("#page-next")
    assert browser.js(STATUS).startswith("Showing 51\u2013100 of")


def texts(browser: WebDriver, css: str) -> list[str]:
    return browser.js("return [...document.querySelectorAll(arguments[0])].map((node) => node.textContent)", css)


def shown_rows(browser: WebDriver, query: str) -> list[str]:
    """The titles the table shows once `query` is typed into the filter."""
    browser.type("#filter", query)
    browser.wait_for(f"return document.querySelector('#tracks tbody').dataset.query === {json.dumps(query)}")
    return texts(browser, "#tracks tbody tr td:first-child")


def test_report_search_ignores_case_and_accents(browser, report, results):
    browser.open(report.as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    assert shown_rows(browser, "uber") == [LONG_TITLE]
    assert shown_rows(browser, "WALDBUHNE") == [LONG_TITLE]
    assert shown_rows(browser, "\u00fcBER wolken") == [LONG_TITLE]
    assert len(shown_rows(browser, "BEYONCE")) == 1
    assert browser.js("return document.querySelector('#tracks tbody td:nth-child(2)').textContent") == ACCENTED_ARTIST
    assert browser.js(STATUS).startswith("Showing 1 track (filtered from")
    # Accents in the query fold too: "\u00c1rtist 7/" finds what "artist 7/" finds.
    assert shown_rows(browser, "\u00c1RTIST 7/") == shown_rows(browser, "artist 7/") != []


def test_report_shows_titles_whole(browser, report):
    browser.open(report.as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    fits = browser.js(
        """
        const links = [...document.querySelectorAll('#top-tracks a.file-link')];
        const link = links.find((a) => a.textContent === arguments[0]);
        if (!link) return 'missing';
        const card = link.closest('.top-card').getBoundingClientRect();
        const style = getComputedStyle(link);
        const box = link.getBoundingClientRect();
        return {inside: box.left >= card.left && box.right <= card.right,
                lines: box.height / parseFloat(style.lineHeight),
                clipped: style.textOverflow === 'ellipsis' || style.whiteSpace === 'nowrap'
                         || link.scrollWidth > link.clientWidth};
        """,
        LONG_TITLE,
    )
    assert fits["inside"] and fits["lines"] > 1.5 and not fits["clipped"]  # wrapped inside its card, not cut
    shown_rows(browser, "uber")
    cell = browser.js(
        "const td = document.querySelector('#tracks tbody td.title');"
        "return {text: td.textContent, clipped: td.scrollWidth > td.clientWidth}"
    )
    assert cell == {"text": LONG_TITLE, "clipped": False}


def test_report_links_open_the_files_and_counts_read_right(browser, tmp_path):
    """Each title links to its file: the URL opens the very file even through spaces, #, ?, % and accents."""
    folder = tmp_path / "Sigur R\u00f3s" / "#1 ? 100% (live)"
    folder.mkdir(parents=True)
    names = ["01 Svefn-g-englar #2?.txt", "02 \u00c1g\u00e6tis byrjun 50%.txt"]
    for name in names:
        (folder / name).write_text(f"contents of {name}", encoding="utf-8")
    paths = [str(folder / name) for name in names]
    frame = pl.DataFrame(
        {
            "path": [*paths, str(tmp_path / "broken.flac")],
            "status": ["ok", "ok", "error"],
            "error": [None, None, "could not decode audio"],
            "title": ["Svefn-g-englar", "\u00c1g\u00e6tis byrjun", None],
            "cluster": [3, 3, None],
            "cluster_name": ["Wistful", "Wistful", None],
            "confidence": [0.9, 0.7, None],
            **{f"prob_cluster_{k}": [0.9 if k == 3 else 0.025, 0.7 if k == 3 else 0.075, None] for k in range(1, 6)},
        }
    )
    frame.write_csv(tmp_path / "scan.csv")
    assert main(["report", str(tmp_path / "scan.csv"), "-o", str(tmp_path / "report.html")]) == 0
    browser.open((tmp_path / "report.html").as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    hrefs = "return [...document.querySelectorAll(arguments[0])].map((a) => a.getAttribute('href'))"
    expected = [file_url(path) for path in paths]
    assert browser.js(hrefs, "#top-tracks a.file-link") == expected
    assert browser.js(hrefs, "#tracks a.file-link") == expected
    # Counts in words agree with their number; the histogram's axes are titled and count whole tracks.
    assert texts(browser, "#failures-hint")[0].startswith("1 file could not be scored.")
    labels = browser.js("return [...document.querySelectorAll('#chart-distribution g')].map((g) => g.ariaLabel)")
    assert labels == [f"{mood}: 0 tracks" for mood in ("Passionate", "Cheerful")] + ["Wistful: 2 tracks"] + [
        f"{mood}: 0 tracks" for mood in ("Humorous", "Aggressive")
    ]
    # The tallest bin holds one track: the axis counts 0, 1 with no tick at half a track.
    assert texts(browser, "#chart-confidence text[text-anchor=end]") == ["0", "1"]
    assert texts(browser, "#chart-confidence .axis-title") == ["confidence in the predicted mood", "tracks"]
    assert shown_rows(browser, "AGAETIS") == ["\u00c1g\u00e6tis byrjun"]
    assert browser.js(STATUS) == "Showing 1 track (filtered from 2)"
    for path, url in zip(paths, expected):
        browser.open(url)
        assert browser.wait_for("return document.body && document.body.textContent") == f"contents of {Path(path).name}"


PLANE_DOTS = "return document.querySelectorAll('#plane svg circle').length"


def test_report_draws_the_library_on_the_valence_arousal_plane(browser, report, results):
    browser.open(report.as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    placed = results.filter(pl.col("status") == "ok", pl.col("valence").is_not_null(), pl.col("arousal").is_not_null())
    assert placed.height > 2500
    assert browser.js("return document.getElementById('plane-panel').hidden") is False
    assert browser.js(PLANE_DOTS) == placed.height
    assert texts(browser, "#plane .axis-title") == [
        "valence: negative \u2192 positive",
        "arousal: calm \u2192 energetic",
    ]
    labels = texts(browser, "#plane text.quadrant-label")
    assert labels == ["Q1 positive, energetic", "Q2 negative, energetic", "Q3 negative, calm", "Q4 positive, calm"]
    counts = placed.group_by("quadrant").len().sort("quadrant").get_column("len").to_list()
    assert texts(browser, "#quadrants tbody td:nth-child(2)") == [f"{n:,}" for n in counts]
    per_mood = dict(placed.group_by("cluster").len().iter_rows())
    expected = [f"{name} {per_mood.get(i, 0):,}" for i, name in enumerate(MIREX.names, 1)]
    assert texts(browser, "#plane-legend li") == expected
    # Each dot in its mood's colour: as many dots of each colour as the mood has tracks on the plane.
    fills = browser.js(
        "const counts = {};"
        "document.querySelectorAll('#plane svg circle').forEach((c) => {"
        "  counts[c.getAttribute('fill')] = (counts[c.getAttribute('fill')] || 0) + 1; });"
        "return [JSON.parse(document.getElementById('report-data').textContent).colors, counts]"
    )
    colours, counts = fills
    assert counts == {colours[i - 1]: n for i, n in per_mood.items()}
    save_full_page(browser, 1280, ARTIFACTS / "report-plane.png")


HOVER = """
const [x, y] = arguments;
const svg = document.querySelector('#plane svg');
const point = new DOMPoint(x, y).matrixTransform(svg.getScreenCTM());
svg.dispatchEvent(new PointerEvent('pointermove', {clientX: point.x, clientY: point.y, bubbles: true}));
const tip = document.querySelector('#plane .plane-tip');
return tip.hidden ? null : [...tip.children].map((line) => line.textContent);
"""


def test_report_plane_names_the_track_under_the_pointer_and_finds_it(browser, tmp_path):
    """Three tracks far apart on the plane and one without valence-arousal: three dots, each named on hover."""
    songs = {
        "/music/Joy/01 Up.flac": ("Up", "Joy", 2, (1, 0.9)),  # Cheerful; valence and arousal 0.93
        "/music/Rain/02 Grey.flac": ("Grey", "Rain", 3, (3, 0.9)),  # Wistful; both 0.07
        "/music/Fury/03 Storm.flac": ("Storm", "Fury", 5, (2, 0.9)),  # Aggressive; valence 0.07, arousal 0.93
        "/music/Old/04 Before.flac": ("Before", "Old", 3, None),  # a model without valence-arousal
    }
    frame = pl.DataFrame(
        {
            "path": list(songs),
            "status": ["ok"] * 4,
            "title": [s[0] for s in songs.values()],
            "artist": [s[1] for s in songs.values()],
            "cluster": [s[2] for s in songs.values()],
            "cluster_name": [MIREX.names[s[2] - 1] for s in songs.values()],
            "confidence": [0.8] * 4,
        }
    )
    frame = with_valence_arousal(frame, {path: s[3] for path, s in songs.items() if s[3]})
    frame.write_csv(tmp_path / "scan.csv")
    assert main(["report", str(tmp_path / "scan.csv"), "-o", str(tmp_path / "report.html")]) == 0
    browser.open((tmp_path / "report.html").as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    assert browser.js(PLANE_DOTS) == 3
    assert "1 predicted track had no valence" in texts(browser, "#plane-hint")[0]
    # The plot's own coordinates: 0-1 maps onto the frame; find each dot from its values.
    frame_box = browser.js(
        "const r = document.querySelector('#plane .plane-frame');"
        "return [+r.getAttribute('x'), +r.getAttribute('y'), +r.getAttribute('width')]"
    )
    left, top, side = frame_box
    for valence, arousal, title, artist, mood in [
        (0.9333, 0.9333, "Up", "Joy", "Cheerful"),
        (0.0667, 0.0667, "Grey", "Rain", "Wistful"),
        (0.0667, 0.9333, "Storm", "Fury", "Aggressive"),
    ]:
        x, y = left + side * valence, top + side * (1 - arousal)
        shown = browser.js(HOVER, x + 2, y - 2)  # near the dot, not on its centre
        assert shown == [title, artist, f"{mood} \u00b7 valence {valence:.2f} \u00b7 arousal {arousal:.2f}"]
    assert browser.js(HOVER, left + side / 2, top + side / 2) is None  # no dot in the middle: no tip
    browser.js(  # a click on Storm's dot (top left: negative, energetic) finds it in the table
        "const svg = document.querySelector('#plane svg');"
        "const p = new DOMPoint(arguments[0], arguments[1]).matrixTransform(svg.getScreenCTM());"
        "svg.dispatchEvent(new MouseEvent('click', {clientX: p.x, clientY: p.y, bubbles: true}))",
        left + side * 0.0667,
        top + side * (1 - 0.9333),
    )
    browser.wait_for("return document.querySelectorAll('#tracks tbody tr').length === 1")
    assert texts(browser, "#tracks tbody td:first-child") == ["Storm"]


def test_report_without_valence_arousal_has_no_plane(browser, tmp_path):
    synthetic_results(200, valence_arousal=False).write_parquet(tmp_path / "scan.parquet")
    assert main(["report", str(tmp_path / "scan.parquet"), "-o", str(tmp_path / "report.html")]) == 0
    browser.open((tmp_path / "report.html").as_uri())
    browser.wait_for("return document.documentElement.dataset.ready === 'true'")
    assert browser.js("return document.getElementById('plane-panel').hidden") is True
    assert browser.js(PLANE_DOTS) == 0
    assert browser.js("return document.querySelectorAll('#chart-distribution svg rect.bar').length") == 5


def test_report_keeps_option_names_whole_on_a_narrow_screen_and_says_what_it_counts(browser, report, tmp_path):
    """At 420 px (and every width near it) "--timeline" sits on one line: a break after its first hyphen would
    turn it into "-" and "-timeline". The Tracks card says what it counts in words."""
    frame = pl.DataFrame({"path": ["/m/a.flac"], "status": ["ok"], "cluster": [3], "confidence": [0.7]})
    frame.write_csv(tmp_path / "scan.csv")
    assert main(["report", str(tmp_path / "scan.csv"), "-o", str(tmp_path / "report.html")]) == 0
    for page in (report, tmp_path / "report.html"):  # with timelines, and without: both hints name the option
        browser.open(page.as_uri())
        browser.wait_for("return document.documentElement.dataset.ready === 'true'")
        assert texts(browser, "#timeline-hint code.option") == ["--timeline"]
        for width in range(360, 481, 6):
            browser.resize(width, 900)
            lines = browser.js("return document.querySelector('#timeline-hint code.option').getClientRects().length")
            assert lines == 1, width
        browser.resize(1280, 900)
    assert texts(browser, "#cards .card:first-child .sub") == ["audio files scanned"]
