"""Time `mer-tag report` on a synthetic 10k-track results file (the issue asks for under 10 s).

    python benchmarks/report_speed.py [--rows 10000] [--format html] [--browser] [--no-valence-arousal]

Prints the seconds taken by the whole command: reading the file, summarising and writing the report.
With --browser (needs chromium and chromedriver) it also opens the HTML page in headless Chromium and
prints how long the page takes to be ready and to be painted (a dot per track on the valence-arousal
plane included), to filter every row (the first filter also folds every title, artist, album and path for the
case- and accent-blind search), to sort by title, and to name the track under the pointer on the plane
(mean of 200 moves). --no-valence-arousal: results of a model without it (no plane).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run from a checkout: the package and the synthetic results builder the tests use.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mer_tag.cli import main  # noqa: E402
from test_report import synthetic_results  # noqa: E402

# Resolves with the milliseconds from typing `query` into the filter to the table showing its rows; the
# page waits for a pause in typing first (200 ms above 20,000 rows), which is taken off.
FILTER_MS = """
const [query, done] = arguments;
const body = document.querySelector('#tracks tbody');
const box = document.getElementById('filter');
const start = performance.now();
new MutationObserver((changes, observer) => {
  if (body.dataset.query === query) { observer.disconnect(); done(performance.now() - start); }
}).observe(body, {attributes: true, attributeFilter: ['data-query']});
box.value = query;
box.dispatchEvent(new Event('input'));
"""
# Resolves once the browser has painted a frame after the script drew the page: its dots included.
PAINTED = "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));"
# Mean milliseconds the plane takes to find and name the dot under the pointer, over 200 moves across it.
HOVER_MS = """
const svg = document.querySelector('#plane svg');
if (!svg) return null;
const box = svg.getBoundingClientRect();
const start = performance.now();
for (let i = 0; i < 200; i++) {
  const x = box.left + box.width * ((i * 37) % 200) / 200, y = box.top + box.height * ((i * 91) % 200) / 200;
  svg.dispatchEvent(new PointerEvent('pointermove', {clientX: x, clientY: y, bubbles: true}));
  document.querySelector('#plane .plane-tip').offsetWidth;  // the tip laid out, as a real move paints it
}
return (performance.now() - start) / 200;
"""
SORT_MS = """
const start = performance.now();
document.querySelector('#tracks-head th:nth-child(1) button').click();
return performance.now() - start;
"""


def time_report(rows: int, report_format: str, folder: Path, valence_arousal: bool = True) -> tuple[float, Path]:
    """Seconds for `mer-tag report` on `rows` synthetic tracks, and the report it wrote."""
    results = folder / "scan.parquet"
    out = folder / f"report.{report_format}"
    synthetic_results(rows, valence_arousal=valence_arousal).write_parquet(results)
    start = time.perf_counter()
    code = main(["report", str(results), "--out", str(out)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"mer-tag report exited {code}")
    return seconds, out


def time_page(page: Path, rows: int, runs: int = 3) -> None:
    """Open `page` `runs` times in headless Chromium and print its timings."""
    from test_report_browser import WebDriver, first_on_path, free_port

    chromium = first_on_path("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    driver_binary = shutil.which("chromedriver")
    if chromium is None or driver_binary is None:
        raise SystemExit("--browser needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    port = free_port()
    process = subprocess.Popen([driver_binary, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = WebDriver(port)
    debounce_ms = 200 if rows > 20_000 else 60  # report.js: the pause it waits for after typing
    try:
        browser.wait_ready()
        browser.start(chromium, page.parent / "chromium-profile")
        print(
            "headless Chromium "
            + browser.js("return (navigator.userAgent.match(/Chrome\\/([\\d.]+)/) || ['', '?'])[1]")
        )
        for _ in range(runs):
            start = time.perf_counter()
            browser.open(page.as_uri())
            browser.wait_for("return document.documentElement.dataset.ready === 'true'", 60)
            ready = time.perf_counter() - start
            browser.call("POST", browser.session + "/execute/async", {"script": PAINTED, "args": []})
            painted = time.perf_counter() - start
            filters = [
                browser.call("POST", browser.session + "/execute/async", {"script": FILTER_MS, "args": [query]})
                - debounce_ms
                for query in ("song 7", "artist 1")
            ]
            browser.js("document.getElementById('filter').value = ''")
            sort = browser.js(SORT_MS)
            hover = browser.js(HOVER_MS)
            print(
                f"  page ready {ready:.2f} s (painted {painted:.2f} s), first filter {filters[0] / 1000:.2f} s, "
                f"second filter {filters[1] / 1000:.2f} s, sort by title {sort / 1000:.2f} s"
                + ("" if hover is None else f", plane hover {hover:.1f} ms")
            )
    finally:
        if browser.session:
            browser.stop()
        process.terminate()
        process.wait(timeout=10)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--format", default="html", choices=("html", "md", "json"))
    parser.add_argument("--browser", action="store_true", help="Also time the HTML page in headless Chromium.")
    parser.add_argument(
        "--no-valence-arousal", action="store_true", help="Results without valence-arousal: no plane on the page."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        seconds, out = time_report(args.rows, args.format, Path(folder), not args.no_valence_arousal)
        size = out.stat().st_size
        print(f"report -o {out.name}: {args.rows:,} rows in {seconds:.2f} s ({size / 1e6:.1f} MB)")
        if args.browser and args.format == "html":
            time_page(out, args.rows)


if __name__ == "__main__":
    cli()
