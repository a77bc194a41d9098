"""`beet mood` against `mer-tag scan` on the same files: tracks per second, end to end (issue #26: within 20 %).

    python benchmarks/beets_speed.py [--tracks 20] [--seconds 240] [--rounds 3] [--jobs 2] [--model default]
                                     [--import-rounds 0] [--json out.json]

The tracks are throughput.py's generated library (music-like 44.1 kHz stereo MP3s with a lyrics .txt each,
cached under .cache/bench/throughput/). They are imported once, as they are (`beet import -A`, no copy, no
write), into a temporary beets library whose config names nothing but this plugin. Then, alternating A and B
`--rounds` times (B first in every other round), each a fresh process as a user runs it:

  A  mer-tag scan FOLDER -o moods.csv --force -q -j J
  B  beet mood -f -W                 (mertag jobs: J; -W: the files are not written, as scan writes none)

and it prints each run's seconds and tracks per second, and the median B/A ratio of tracks per second with its
range (rounds pair up in order). Both times include starting the process, importing torch and loading the model.

`--import-rounds K` also times, alternating K times, the two ways the moods of an import can come: `auto` (the
plugin's import stage, one batch per import task, one engine for the import) against a plain import followed by
`beet mood` (one batch at the end), each into a fresh library, once with the tracks as one album and once as
singletons (`beet import -s`: a task per track, the per-task batches' worst case).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from throughput import generate_library  # noqa: E402


def beets_config(root: Path, model: str, jobs: int, auto: bool) -> None:
    lines = [
        f"directory: {root / 'library'}",
        f"library: {root / 'library.db'}",
        "plugins: mertag",
        "import:",
        "  copy: no",
        "  write: no",
        "  duplicate_action: keep",
        "  log:",
        "mertag:",
        f"  model: {model}",
        f"  jobs: {jobs}",
        f"  auto: {'yes' if auto else 'no'}",
    ]
    (root / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(command: list[str], beetsdir: Path | None = None) -> float:
    """Seconds the command took, end to end; it must succeed."""
    env = dict(os.environ)
    if beetsdir is not None:
        env.update(BEETSDIR=str(beetsdir), HOME=str(beetsdir))
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def beet(*args: str) -> list[str]:
    return [sys.executable, "-m", "beets", *args]


def fresh_library(parent: Path, model: str, jobs: int, auto: bool) -> Path:
    root = Path(tempfile.mkdtemp(prefix="beets-", dir=parent))
    beets_config(root, model, jobs, auto)
    return root


def ratio_line(label: str, a: list[float], b: list[float], tracks: int) -> dict:
    """B's tracks per second over A's, paired round by round: median and range."""
    ratios = sorted((tracks / y) / (tracks / x) for x, y in zip(a, b))
    summary = {"median": statistics.median(ratios), "min": ratios[0], "max": ratios[-1]}
    print(f"{label}: median {summary['median']:.2f} (range {summary['min']:.2f}–{summary['max']:.2f})")
    return summary


def scan_against_mood(folder: Path, work: Path, args, tracks: int) -> dict:
    lib = fresh_library(work, args.model, args.jobs, auto=False)
    run(beet("import", "-A", "-q", str(folder)), lib)
    scan = [sys.executable, "-m", "mer_tag", "scan", str(folder), "-o", str(work / "moods.csv"), "--force", "-q"]
    scan += ["-j", str(args.jobs), "--model", args.model]
    a, b = [], []
    for k in range(args.rounds):
        if k % 2:  # every other round B first, so neither always runs on the other's warm caches
            b.append(run(beet("mood", "-f", "-W"), lib))
            a.append(run(scan))
        else:
            a.append(run(scan))
            b.append(run(beet("mood", "-f", "-W"), lib))
        print(
            f"round {k + 1}: mer-tag scan {a[-1]:.1f} s ({tracks / a[-1]:.2f} tracks/s), "
            f"beet mood {b[-1]:.1f} s ({tracks / b[-1]:.2f} tracks/s)",
            flush=True,
        )
    return {"scan_s": a, "mood_s": b, "ratio": ratio_line("beet mood / mer-tag scan, tracks per second", a, b, tracks)}


def import_ways(folder: Path, work: Path, args, tracks: int, singletons: bool) -> dict:
    how = ["-s"] if singletons else []
    a, b = [], []
    for k in range(args.import_rounds):
        auto = fresh_library(work, args.model, args.jobs, auto=True)
        a.append(run(beet("import", "-A", "-q", *how, str(folder)), auto))
        later = fresh_library(work, args.model, args.jobs, auto=False)
        b.append(run(beet("import", "-A", "-q", *how, str(folder)), later) + run(beet("mood", "-W"), later))
        print(
            f"round {k + 1} ({'singletons' if singletons else 'one album'}): import with auto {a[-1]:.1f} s, "
            f"import then beet mood {b[-1]:.1f} s",
            flush=True,
        )
        shutil.rmtree(auto)
        shutil.rmtree(later)
    label = f"import then mood / import with auto ({'singletons' if singletons else 'one album'}), tracks per second"
    return {"auto_s": a, "then_mood_s": b, "ratio": ratio_line(label, a, b, tracks)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--import-rounds", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    folder = generate_library(args.tracks, args.seconds)
    print(f"{args.tracks} tracks of {args.seconds:g} s in {folder}; {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="beets-speed-") as tmp:
        work = Path(tmp)
        result = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), "tracks": args.tracks}
        result["scan_vs_mood"] = scan_against_mood(folder, work, args, args.tracks)
        if args.import_rounds:
            result["import_album"] = import_ways(folder, work, args, args.tracks, singletons=False)
            result["import_singletons"] = import_ways(folder, work, args, args.tracks, singletons=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
