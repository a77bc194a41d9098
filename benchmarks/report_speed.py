"""Time `mer-tag report` on a synthetic 10k-track results file (the issue asks for under 10 s).

    python benchmarks/report_speed.py [--rows 10000] [--format html]

Prints the seconds taken by the whole command: reading the file, summarising and writing the report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run from a checkout: the package and the synthetic results builder the tests use.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_report import synthetic_results  # noqa: E402

from mer_tag.cli import main  # noqa: E402


def time_report(rows: int, report_format: str) -> tuple[float, int]:
    """Seconds for `mer-tag report` on `rows` synthetic tracks, and the report's size in bytes."""
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "scan.parquet"
        out = Path(folder) / f"report.{report_format}"
        synthetic_results(rows).write_parquet(results)
        start = time.perf_counter()
        code = main(["report", str(results), "--format", report_format, "--out", str(out)])
        seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"mer-tag report exited {code}")
        return seconds, out.stat().st_size


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--format", default="html", choices=("html", "md", "json"))
    args = parser.parse_args()
    seconds, size = time_report(args.rows, args.format)
    print(f"report --format {args.format}: {args.rows:,} rows in {seconds:.2f} s ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    cli()
