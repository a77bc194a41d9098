"""Two versions of mer-tag measured in turn with benchmarks/throughput.py: the median ratio and its range.

    python benchmarks/ab.py [--base main] [--pairs 3] [--wait-load 2.5] [--json out.json] -- THROUGHPUT ARGS...

`--base` is any git ref of this repository (exported once with `git archive` into a temporary folder); the
other side is this checkout. Each run is a whole `python benchmarks/throughput.py THROUGHPUT ARGS` (this
checkout's instrument for both sides, so only the scanned code differs), with PYTHONPATH pointing at the
side's code; the decode workers and a `--cli` scan inherit it. Runs alternate A B, B A, A B, … so a drift in
the machine's load falls on both sides alike. Each run's own scan/floor ratio comes from one call (floor and
scan measured back to back); the A/B ratio of a pair is B's scan seconds over A's. Printed: every run, then
the median and range of each side's scan/floor (wall and CPU) and of B/A, with the load average before each
run. `--wait-load L` first waits (checking every 30 s, at most `--wait-max` s) for the 1-minute load average
to drop under L, and records what it was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT = ROOT / "benchmarks" / "throughput.py"


def export(ref: str, into: Path) -> Path:
    """The tree of `ref` (a commit, branch or tag of this repository) as plain files under `into`."""
    archive = into / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref], stdout=out, check=True)
    folder = into / "base"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def wait_for_load(limit: float, most_s: float) -> list[float]:
    """1-minute load averages seen while waiting for it to drop under `limit` (at most `most_s` seconds)."""
    seen = [round(os.getloadavg()[0], 2)]
    deadline = time.monotonic() + most_s
    while seen[-1] >= limit and time.monotonic() < deadline:
        time.sleep(30)
        seen.append(round(os.getloadavg()[0], 2))
    return seen


def run(side: str, code: Path, args: list[str], out: Path) -> dict:
    """One throughput.py call with `code` first on the path; its JSON plus the load before it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, str(THROUGHPUT), *args, "--json", str(out)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    data = json.loads(out.read_text())
    scan, floor = data["scan"], data["floor"]
    return {
        "side": side,
        "load_before": round(load, 2),
        "scan_s": scan["seconds"],
        "scan_cpu_s": scan["cpu"]["main_s"] + scan["cpu"]["workers_s"],
        "floor_s": floor["seconds"] if floor else None,
        "floor_cpu_s": floor["cpu_seconds"] if floor else None,
        "scan_over_floor": data["ratios"]["scan_over_floor"],
        "cpu_over_floor": data["ratios"]["scan_cpu_over_floor_cpu"],
        "others_cpu_s": scan["cpu"].get("others_s"),
        "peak_tree_rss_mb": scan["memory"]["peak_tree_rss_mb"],
    }


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the git ref measured as A (default main)")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (default 3)")
    parser.add_argument("--wait-load", type=float, default=None, help="wait for a 1-minute load average under this")
    parser.add_argument("--wait-max", type=float, default=3600, help="wait at most this many seconds (default 3600)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv[:cut])
    bench_args = argv[cut + 1 :]
    waited = wait_for_load(args.wait_load, args.wait_max) if args.wait_load else [round(os.getloadavg()[0], 2)]
    runs = []
    with tempfile.TemporaryDirectory(prefix="mer-tag-ab-") as tmp:
        sides = {"A": export(args.base, Path(tmp)), "B": ROOT}
        for pair in range(args.pairs):
            order = ("A", "B") if pair % 2 == 0 else ("B", "A")
            for side in order:
                result = run(side, sides[side], bench_args, Path(tmp) / f"{pair}-{side}.json")
                result["pair"] = pair
                runs.append(result)
                print(
                    f"pair {pair + 1} {side}: scan {result['scan_s']:.2f} s, floor {result['floor_s'] or 0:.2f} s, "
                    f"× floor {result['scan_over_floor'] or 0:.3f} (CPU {result['cpu_over_floor'] or 0:.3f}), "
                    f"load {result['load_before']}",
                    flush=True,
                )
    by = {side: [r for r in runs if r["side"] == side] for side in "AB"}
    b_over_a = [
        next(r for r in by["B"] if r["pair"] == p)["scan_s"] / next(r for r in by["A"] if r["pair"] == p)["scan_s"]
        for p in range(args.pairs)
    ]
    summary = {
        "base": args.base,
        "throughput_args": bench_args,
        "load_while_waiting": waited,
        "runs": runs,
        "A_scan_over_floor": spread([r["scan_over_floor"] for r in by["A"]]),
        "B_scan_over_floor": spread([r["scan_over_floor"] for r in by["B"]]),
        "A_cpu_over_floor": spread([r["cpu_over_floor"] for r in by["A"]]),
        "B_cpu_over_floor": spread([r["cpu_over_floor"] for r in by["B"]]),
        "B_over_A_scan_s": spread(b_over_a),
        "B_over_A_scan_cpu_s": spread([b["scan_cpu_s"] / a["scan_cpu_s"] for a, b in zip(by["A"], by["B"])]),
        "load_before_runs": [r["load_before"] for r in runs],
    }
    print(f"\nA = {args.base}, B = this checkout; {args.pairs} pairs; median (range)")
    for key in ("A_scan_over_floor", "B_scan_over_floor", "A_cpu_over_floor", "B_cpu_over_floor"):
        print(f"  {key}: {summary[key]}")
    print(f"  B/A scan seconds: {summary['B_over_A_scan_s']}; B/A scan CPU-s: {summary['B_over_A_scan_cpu_s']}")
    print(f"  load average before the runs: {summary['load_before_runs']} (waiting: {waited})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
