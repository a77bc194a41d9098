"""Local engine vs the Ray engine with 1 and 2 workers, on the same generated library (issue #8).

    python benchmarks/ray_scaling.py [--tracks 30] [--seconds 60] [--model tiny|default|PATH]
                                     [--workers 1 2] [--engines local local-1t ray ray-start]
                                     [--library tones|real] [--repeat 1] [--json out.json]

Every measurement is a fresh subprocess running `mer_tag.scan.scan` (forced, no progress bar) to a
temporary file:

- local, W workers: `scan(jobs=W)`: W decode processes, the model in the main process;
- local-1t:         the same with OMP_NUM_THREADS=1 (and OpenBLAS/MKL's) in the environment, the thread
  policy Ray gives its workers: separates the engines' overhead from thread oversubscription;
- ray, W workers:   `ray.init(num_cpus=W)` (a one-node local cluster; its start is timed apart, since a
  real cluster is started once, not per scan), then `scan(engine="ray")`: decode tasks on W CPUs, one
  model actor (RayOptions defaults for a cluster the scan joins);
- ray-start, W:     `scan(engine="ray")` with no cluster running, so the scan starts its own local one of W
  CPUs and stops it, as `mer-tag scan --engine ray` without --address does: its start is in the scan's time,
  and (since #27's second round) the model runs in the driver, not in an actor (`RayOptions.model_here`), so
  this cell and `ray` differ in more than the cluster's start.

Both times include loading the model and every worker's start. Beside wall time, each cell reports the
CPU seconds its whole process tree used (the measuring subprocess and every process under it: decode
workers, Ray's daemons and workers; sampled from /proc every 0.1 s, so a process that lives less than
that is missed), from the subprocess's start to its end: for Ray that includes starting the cluster.
`scan CPU·s` is the same, sampled inside the subprocess during the `scan` call alone. On a shared machine
CPU seconds move far less with the load than wall time does. The library is N tracks of S seconds
(`tests/media.tone` at a different pitch each, MP3, each with a lyrics .txt sidecar so the lyrics branch
runs), cached under .cache/bench/ray-scaling/ray-N-S/. The tiny model is tests/tiny_model.py's random-weight bundle;
`default-arch` is the shipped model's architecture with random heads (the same cost, no training needed).
Checks that every engine gave local's rows (same paths and clusters, max probability difference).
Prints a table (tracks/s, relative to the first local row at the same W, CPU-seconds per track) and
writes JSON. `--repeat R` runs every cell R times, the cells interleaved, and reports the fastest.
`--library real` scans throughput.py's real-song MP3 library instead (`--tracks` files, its 8 songs
repeated; `--seconds` is ignored): real music costs more to decode than tones, as a user's library does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench" / "ray-scaling"  # git-ignored; this benchmark's own


ENGINES = ["local", "local-1t", "ray", "ray-start"]


def library(n: int, seconds: float, kind: str = "tones") -> Path:
    if kind == "real":
        from throughput import REAL_DATASET, real_library

        return real_library(REAL_DATASET, n, "mp3")
    folder = CACHE / f"ray-{n}-{seconds:g}"
    done = folder / ".complete"
    if done.exists():
        return folder
    sys.path.insert(0, str(ROOT / "tests"))
    from media import tone, write_audio, write_lyrics

    words = "night fire river gold summer rain heart road light dance".split()
    for i in range(n):
        write_audio(folder / f"track{i:03d}.mp3", tone(seconds, 110 + 17 * i, seed=i))
        write_lyrics(
            folder / f"track{i:03d}.txt",
            "\n".join(" ".join(words[(i + j) % 10] for j in range(k, k + 6)) for k in range(12)) + "\n",
        )
    done.write_text("")
    return folder


def model_path(model: str) -> str:
    if model == "tiny":
        folder = CACHE / "tiny-model"
        if not (folder / "card.json").exists():
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_model import make_tiny_bundle

            make_tiny_bundle(folder)
        return str(folder)
    if model == "default-arch":
        folder = CACHE / "default-arch-model"
        if not (folder / "card.json").exists():
            default_arch_bundle(folder)
        return str(folder)
    return model


def default_arch_bundle(folder: Path) -> None:
    """The shipped model's architecture and feature settings (presets/default.toml) with random heads:
    the pretrained musicnn front-end at 16 kHz, a musicnn CRNN, MiniLM lyrics (256 tokens), the events
    MIDI BiGRU, late fusion. Costs what the default model costs, without waiting for its training."""
    import torch

    from mer_tag import bundle as bundle_io
    from mer_tag import models
    from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig
    from mer_tag.labels import MIREX

    torch.manual_seed(0)
    parts = {
        "audio": models.build(
            {"arch": "musicnn_crnn", "embed_dim": 200, "n_classes": 5, "gru_hidden": 64, "dropout": 0.3}
        ),
        "lyrics": models.build({"arch": "lyrics", "n_classes": 5, "pooling": "mean", "dropout": 0.2}),
        "midi": models.build(
            {
                "arch": "midi_bigru",
                "n_classes": 5,
                "inputs": "events",
                "embed_dim": 64,
                "gru_hidden": 64,
                "pooling": "attention",
            }
        ),
        "fusion": models.build({"arch": "fusion", "n_classes": 5, "branches": ["audio", "lyrics", "midi"]}),
    }
    bundle_io.save(
        bundle_io.Bundle(
            name="default-arch",
            labels=MIREX,
            audio_config=AudioConfig(frontend="musicnn", sample_rate=16000, chunk_seconds=30.0, chunk_hop_seconds=30.0),
            lyrics_config=LyricsConfig(max_tokens=256, max_windows=1),
            midi_config=MidiConfig(seq_len=500, inputs="events"),
            models=parts,
            card={"version": "0"},
        ),
        folder,
    )


def child(engine: str, workers: int, lib: str, model: str) -> dict:
    """One measurement, in this (fresh) process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory
    from mer_tag.scan import scan

    let_idle_threads_sleep()  # the process set up as `mer-tag scan` sets up its own, before torch loads
    reuse_freed_memory()

    result = {"engine": engine, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "moods.csv"
        if engine == "ray":  # a cluster already running; "ray-start": the scan starts its own, on the clock
            import logging

            import ray

            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            result["cluster_start_s"] = time.perf_counter() - started
        cpu = TreeCPU(os.getpid())
        cpu.start()
        started = time.perf_counter()
        summary = scan(
            [lib], out=out, model=model, jobs=workers, force=True, progress=False, engine=scan_engine(engine)
        )
        result["scan_s"] = time.perf_counter() - started
        result["scan_cpu_s"] = cpu.stop()
        result["ok"], result["failed"] = summary.ok, summary.failed
        from mer_tag.sinks import read_results

        result["rows"] = {
            r["path"]: [r["cluster"]] + [v for k, v in r.items() if k.startswith("prob_cluster_")]
            for r in read_results(out).iter_rows(named=True)
        }
        if engine == "ray":
            ray.shutdown()
    return result


def scan_engine(label: str) -> str:
    """The `scan` engine a cell runs: 'local' for local and local-1t, 'ray' for ray and ray-start."""
    return "local" if label.startswith("local") else "ray"


def paired_ratios(runs: dict) -> dict[str, list[float]]:
    """For each engine cell but local, local's scan seconds over its own in the same round (runs alternate, so
    a change in the machine's load hits both): how fast it is against local, one ratio per round."""
    out = {}
    for (engine, workers), cell_runs in runs.items():
        local = runs.get(("local", workers))
        if engine != "local" and local:
            out[f"{engine} vs local, W={workers}"] = [
                round(a["scan_s"] / b["scan_s"], 3) for a, b in zip(local, cell_runs)
            ]
    return out


def median_range(values: list[float]) -> str:
    import statistics

    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def same(cell: dict) -> str:
    if "cluster_mismatches" not in cell:
        return "–"
    return (
        f"{'same paths' if cell['same_paths'] else 'DIFFERENT PATHS'}, {cell['cluster_mismatches']} cluster "
        f"mismatches, max Δp {cell['max_prob_diff']:.1e}"
    )


def process_cpu_s(pid: int) -> tuple[tuple[int, int], float] | None:
    """((pid, start tick), CPU seconds so far) of a live process, from /proc/PID/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3): utime and stime are fields 14 and 15, starttime field 22
    return (pid, int(fields[19])), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeCPU(threading.Thread):
    """CPU seconds (user + system) a process and every descendant use from `start` to `stop`, read from
    /proc/PID/stat every `interval` s (a process's last reading counts after it exits, so one that ends
    loses at most `interval` of its CPU)."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start tick) → its CPU seconds at the last reading
        self._stop_event = threading.Event()
        self.sample()
        self.before = dict(self.seen)  # what the processes alive at the start had used already

    def sample(self) -> None:
        from throughput import descendants

        for reading in filter(None, map(process_cpu_s, [self.pid, *descendants(self.pid)])):
            self.seen[reading[0]] = reading[1]

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        self.sample()
        return sum(self.seen.values()) - sum(self.before.values())


def measure(engine: str, workers: int, lib: Path, model: str) -> dict:
    """One cell, once, in a fresh subprocess."""
    load = os.getloadavg()[0]
    env = dict(os.environ)
    if engine == "local-1t":
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", engine.removesuffix("-1t"), str(workers), str(lib), model],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    cpu = TreeCPU(child.pid)
    cpu.start()
    stdout, stderr = child.communicate()
    tree_cpu_s = cpu.stop()
    proc = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@result@@")), None)
    if line is None:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{engine} with {workers} workers failed")
    run = json.loads(line[len("@@result@@") :])
    run.update(engine=engine, load_before=round(load, 2), tree_cpu_s=round(tree_cpu_s, 2))
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--model",
        default="tiny",
        help="tiny (random weights), default (shipped), default-arch "
        "(the default's architecture, random heads) or a bundle folder",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["local", "local-1t", "ray"],
        choices=ENGINES,
        help="ray: on a local cluster started before the clock; ray-start: the scan starts its own (as "
        "`mer-tag scan --engine ray` without --address does), its start counted in the scan's time",
    )
    parser.add_argument(
        "--library",
        choices=["tones", "real"],
        default="tones",
        help="tones: generated sine tones (cheap to decode); real: throughput.py's real-song MP3 library "
        "(--tracks files; --seconds ignored)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (interleaved); the fastest is reported")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "WORKERS", "LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, workers, lib, model = args.child
        print("@@result@@" + json.dumps(child(engine, int(workers), lib, model)), flush=True)
        return 0

    lib, model = library(args.tracks, args.seconds, args.library), model_path(args.model)
    for audio in lib.glob("*.mp3"):  # warm the page cache: every run reads from memory
        audio.read_bytes()
    runs: dict[tuple[str, int], list[dict]] = {(e, w): [] for w in args.workers for e in args.engines}
    for _ in range(args.repeat):  # alternate the cells, so a change in background load hits them all
        for workers, engine in [(w, e) for w in args.workers for e in args.engines]:
            run = measure(engine, workers, lib, model)
            runs[engine, workers].append(run)
            print(
                f"{engine:8} W={workers}: {run['scan_s']:6.1f} s, {run['scan_cpu_s']:.1f} CPU·s"
                + (f"  (cluster start {run['cluster_start_s']:.1f} s)" if "cluster_start_s" in run else "")
                + f"  whole process tree {run['tree_cpu_s']:.1f} CPU·s  load {run['load_before']}",
                flush=True,
            )
    cells = []
    for (_engine, workers), cell_runs in runs.items():
        best = dict(min(cell_runs, key=lambda r: r["scan_s"]))
        best["tracks_per_s"] = args.tracks / best["scan_s"]
        best["cpu_s_per_track"] = workers * best["scan_s"] / args.tracks
        best["all_scan_s"] = [round(r["scan_s"], 2) for r in cell_runs]
        cells.append(best)
    for cell in cells:  # the same rows? (clusters equal, probabilities within float tolerance)
        local = next((c for c in cells if c["engine"] == "local" and c["workers"] == cell["workers"]), None)
        if local is not None and cell is not local:
            a, b = local["rows"], cell["rows"]
            cell["same_paths"] = sorted(a) == sorted(b)
            cell["cluster_mismatches"] = sum(a[p][0] != b[p][0] for p in a if p in b)
            cell["max_prob_diff"] = max(
                (
                    abs(x - y)
                    for p in a
                    if p in b
                    for x, y in zip(a[p][1:], b[p][1:])
                    if x is not None and y is not None
                ),
                default=0.0,
            )
    for cell in cells:
        cell.pop("rows", None)

    length = "real songs (237 s)" if args.library == "real" else f"{args.seconds:g} s"
    print(f"\n{args.tracks} tracks × {length}, model {args.model}, {os.cpu_count()} cores\n")
    print(
        "| engine | workers | scan s | tracks/s | vs local | CPU·s/track | scan CPU·s | tree CPU·s | cluster start s "
        "| rows vs local |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell in cells:
        local = next((c for c in cells if c["engine"].startswith("local") and c["workers"] == cell["workers"]), None)
        rel = f"{cell['tracks_per_s'] / local['tracks_per_s']:.2f}×" if local else "–"
        print(
            f"| {cell['engine']} | {cell['workers']} | {cell['scan_s']:.1f} | {cell['tracks_per_s']:.2f} | {rel} "
            f"| {cell['cpu_s_per_track']:.2f} | {cell['scan_cpu_s']:.1f} | {cell['tree_cpu_s']:.1f} "
            f"| {cell.get('cluster_start_s', 0):.1f} "
            f"| {same(cell)} |"
        )
    paired = paired_ratios(runs)
    for name, ratios in paired.items():
        print(f"{name}, run by run (the cells alternate): median {median_range(ratios)} over {len(ratios)} runs")
    if args.json:
        import importlib.metadata as md

        versions = {}
        for package in ("ray", "torch", "mer-tag"):
            try:
                versions[package] = md.version(package)
            except md.PackageNotFoundError:
                versions[package] = None
        args.json.write_text(
            json.dumps(
                {
                    "tracks": args.tracks,
                    "seconds": args.seconds,
                    "library": args.library,
                    "model": args.model,
                    "cells": cells,
                    "paired_ratios": paired,
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **versions},
                    "command": " ".join([Path(sys.executable).name, *sys.argv]),
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
