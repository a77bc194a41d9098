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
from test_report import XSS_TITLE, synthetic_results

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C name for an element reference
# Quiet, sandbox-free (root in CI) and offline: without the background flags Chromium phones home.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
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
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
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


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> pl.DataFrame:
    return synthetic_results(3000, root="/srv/music")


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
    browser.wait_for("const box = document.getElementById('chart-groups');"
                     "return box.firstChild.getAttribute('width') == Math.max(280, box.clientWidth)")
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
    artist = results.filter(pl.col("status") == "ok").get_column("artist").str.extract(r"(\d+)$").cast(int).max()
    expected = results.filter(pl.col("status") == "ok", pl.col("artist") == f"Artist {artist}").height
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
