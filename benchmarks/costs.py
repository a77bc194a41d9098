"""Where a scan's CPU goes, piece by piece, in CPU-seconds (which a busy machine distorts far less than wall time).

    python benchmarks/costs.py startup [--repeats 5]          # the main process's start-up stages; a decode worker's
    python benchmarks/costs.py workers [--repeats 6]          # 2 decode workers started from a script that imports
                                                              # the command line, as `mer-tag` does
    python benchmarks/costs.py decode FILE... [--repeats 5]   # per minute of audio: the floor command, its process
                                                              # start, our decode at 16 kHz, PyAV's decode alone
    python benchmarks/costs.py sensitivity [--repeats 7]      # what decoding costs with: real song 1 encoded with
                                                              # and without its high band, at 4 bit rates, VBR,
                                                              # mono, FLAC (throughput.py's songs, in a temp folder)
    python benchmarks/costs.py models FOLDER [--repeats 3]    # per track in the main process: student + heads,
                                                              # MiniLM, a whole batch of rows (bf16 and fp32)
    python benchmarks/costs.py ray-start [--repeats 3]        # a local Ray cluster's start: ray.init's, the engine's
                                                              # (CPU-s, and seconds to its first two tasks)

Every measurement runs in fresh processes; each prints the minimum and the median over `--repeats` (decode:
the files measured round-robin, the minimum kept per file, then the median and range over the files). The
load average is printed with each: on a shared machine CPU time still grows a little with the load
(contention for caches and memory), never shrinks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ["ffmpeg", "-nostdin", "-v", "error", "-i", "{file}", "-ac", "1", "-ar", "22050", "-f", "s16le", "-"]

STARTUP = """
import json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
t0, out = cpu(), {}
def mark(name):
    global t0
    t = cpu(); out[name] = t - t0; t0 = t
import mer_tag.cli; mark("command line (typer, rich)")
from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory
let_idle_threads_sleep(); reuse_freed_memory()
import mer_tag.scan, mer_tag.progress, rich.progress; mark("scan modules, progress bar")
from mer_tag import engines
settings = engines.EngineSettings("default"); settings.read(); mark("the model's card (numpy)")
import torch; mark("torch")
from mer_tag import bundle; b = bundle.load("default"); mark("bundle.load")
from mer_tag.engines.predictor import Predictor; p = Predictor(b); mark("Predictor (the student)")
p._lyrics_encoder(); mark("MiniLM and its tokenizer (at the first lyrics)")
print(json.dumps(out))
"""

WORKER = """
import json, time
t0, out = time.process_time(), {}
def mark(name):
    global t0
    t = time.process_time(); out[name] = t - t0; t0 = t
import numpy; mark("numpy")
import threadpoolctl; mark("threadpoolctl")
import av; mark("av (PyAV, FFmpeg)")
import mer_tag.prepare, mer_tag.workers; mark("mer_tag.prepare, workers")
import mer_tag.sources.audio, mer_tag.sources.metadata; mark("sources (mutagen)")
from mer_tag.features import rfft_rows; rfft_rows(); mark("the log-mel's FFT (features.rfft_rows)")
print(json.dumps(out))
"""

SPAWN = """# a stand-in for the mer-tag console script: it imports the command line at its top level, as it does
import resource, sys
from mer_tag.cli import main  # noqa: F401
from mer_tag.workers import start_pool
if __name__ == "__main__":
    pool = start_pool(2)
    list(pool.map(abs, range(8)))
    pool.shutdown()
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(r.ru_utime + r.ru_stime)
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


def summary(name: str, values: list[float], unit: str = "CPU-s") -> str:
    return f"{name:52s} min {min(values):.3f}  median {statistics.median(values):.3f} {unit}"


def stages(code: str, repeats: int) -> dict[str, list[float]]:
    run = lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: E731
    runs = [json.loads(run().stdout) for _ in range(repeats)]
    return {k: [r[k] for r in runs] for k in runs[0]}


def startup(repeats: int) -> None:
    print(f"main process, in the order a scan meets them (load {load()}):")
    for name, values in stages(STARTUP, repeats).items():
        print(summary(name, values))
    print(f"\na decode worker's imports (load {load()}):")
    for name, values in stages(WORKER, repeats).items():
        print(summary(name, values))


def workers(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "entry.py"
        script.write_text(SPAWN)
        runs = [
            float(subprocess.run([sys.executable, str(script)], capture_output=True, text=True).stdout)
            for _ in range(repeats)
        ]
    print(summary(f"2 decode workers started and stopped (load {load()})", runs))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _floor(path: str) -> float:
    before = _children_cpu()
    subprocess.run([path if a == "{file}" else a for a in FLOOR], stdout=subprocess.DEVNULL, check=True)
    return _children_cpu() - before


def _ffmpeg_start(path: str) -> float:
    before = _children_cpu()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-version"], stdout=subprocess.DEVNULL)
    return _children_cpu() - before


def _ours(path: str) -> float:
    from mer_tag.sources.audio import stream_audio

    start = time.process_time()
    with stream_audio(path, sr=16000) as stream:
        for _ in stream:
            pass
    return time.process_time() - start


def _pyav_decode(path: str) -> float:
    import av

    start = time.process_time()
    with av.open(path) as container:
        stream = container.streams.audio[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            packet.decode()
    return time.process_time() - start


def decode(files: list[str], repeats: int) -> None:
    import av

    ways = {"floor": _floor, "ffmpeg start": _ffmpeg_start, "ours 16k": _ours, "PyAV decode": _pyav_decode}
    best = {f: dict.fromkeys(ways, float("inf")) for f in files}
    for _ in range(repeats):
        for f in files:
            for name, way in ways.items():
                best[f][name] = min(best[f][name], way(f))
    minutes, kbps = {}, {}
    for f in files:
        with av.open(f) as container:
            minutes[f] = container.duration / av.time_base / 60
        kbps[f] = os.path.getsize(f) * 8 / (minutes[f] * 60) / 1000
    print(f"{len(files)} files, {statistics.median(kbps.values()):.0f} kbit/s median, load {load()}; CPU-s per minute:")
    for name in ways:
        per_min = [best[f][name] / minutes[f] for f in files]
        print(f"  {name:14s} median {statistics.median(per_min):.4f} ({min(per_min):.4f}–{max(per_min):.4f})")


def sensitivity(repeats: int) -> None:
    """Song 1 of throughput.py's real songs, the clips as they are (v1: `pseudo_stereo`) and with the high band
    real recordings have (v2: `real_stereo`), encoded each way that matters to a decoder, then `decode`."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import throughput as t

    from mer_tag.sources.audio import load_audio

    song = t.pick_songs(t.REAL_DATASET)[0]
    mono = np.concatenate([load_audio(t.REAL_DATASET / "Audio" / f"{c}.mp3", sr=44100) for c in song["clips"]])
    v1, v2 = t.pseudo_stereo(mono, 44100), t.real_stereo(mono, 44100)
    vbr = lambda q: {"global_quality": str(q * 118), "flags": "+qscale"}  # noqa: E731  (lame -V q)
    variants = [  # name, signal, (muxer, codec, sample format, bit rate, options)
        ("v1-cbr192.mp3", v1, ("mp3", "libmp3lame", "fltp", 192_000, None)),
        ("v1-vbr2.mp3", v1, ("mp3", "libmp3lame", "fltp", None, vbr(2))),
        *[(f"v2-cbr{k}.mp3", v2, ("mp3", "libmp3lame", "fltp", k * 1000, None)) for k in (128, 192, 256, 320)],
        *[(f"v2-vbr{q}.mp3", v2, ("mp3", "libmp3lame", "fltp", None, vbr(q))) for q in (0, 2, 4)],
        ("v1.flac", v1, ("flac", "flac", "s16", None, None)),
        ("v2.flac", v2, ("flac", "flac", "s16", None, None)),
    ]
    with tempfile.TemporaryDirectory(prefix="mer-tag-sensitivity-") as tmp:
        files = []
        for name, y, (muxer, codec, sample_fmt, bit_rate, options) in variants:
            path = Path(tmp) / name
            t._encode_pyav(path, y, 44100, muxer, codec, sample_fmt, bit_rate, title="", options=options)
            files.append(str(path))
        for path in files:
            print(f"{Path(path).name}:", end=" ")
            decode([path], repeats)


def models(folder: str, repeats: int) -> None:
    import torch

    from mer_tag import bundle
    from mer_tag.engines.predictor import Predictor
    from mer_tag.library import walk
    from mer_tag.prepare import prepare

    torch.set_num_threads(1)  # as beside two decode workers (engines.local.model_threads)
    b = bundle.load("default")
    items = [prepare(t, b.audio_config, b.midi_config) for t in walk([Path(folder)])]
    sung = [it.lyrics for it in items if it.lyrics]

    def best(work) -> float:
        times = []
        for _ in range(repeats):
            start = time.process_time()
            work()
            times.append(time.process_time() - start)
        return min(times)

    print(f"{len(items)} tracks ({len(sung)} with lyrics), load {load()}; CPU-s, the minimum of {repeats}:")
    for precision in ("bf16", "fp32"):
        print(f"  {precision}: " + _model_costs(Predictor(b, precision=precision), items, sung, best))


def _model_costs(predictor, items: list, sung: list, best) -> str:
    predictor.rows(items)  # MiniLM and the tokenizer loaded, kernels warm
    audio = best(lambda: [predictor.audio_probs(it.audio) for it in items]) / len(items)
    lyrics = best(lambda: predictor.lyrics_probs(sung)) / max(1, len(sung))
    rows = best(lambda: predictor.rows(items)) / len(items)
    return f"student + heads {audio:.4f} a track; MiniLM {lyrics:.4f} a song (one batch); rows {rows:.4f} a track"


RAY_START = """
import json, logging, os, sys, time
sys.path.insert(0, {bench!r})
from throughput import descendants, process_cpu_s
how = sys.argv[1]
import ray
began = time.perf_counter()
if how == "ray.init":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    node = None
else:
    from mer_tag.engines.ray_cluster import connect
    _, node = connect(ray, None, 2)
@ray.remote
def pid():
    return os.getpid()
ray.get([pid.remote() for _ in range(2)])
wall = time.perf_counter() - began
started = sum(process_cpu_s(p) for p in descendants(os.getpid()))
time.sleep(10)
idle = sum(process_cpu_s(p) for p in descendants(os.getpid())) - started
ray.shutdown()
if node is not None:
    node.kill_all_processes(check_alive=False, allow_graceful=True)
print(json.dumps({{"cluster_start": started, "idle_10s": idle, "driver": time.process_time(), "wall_s": wall}}))
"""


def ray_start(repeats: int) -> None:
    code = RAY_START.format(bench=str(ROOT / "benchmarks"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    runs: dict[str, list[dict]] = {"ray.init": [], "engine": []}
    for _ in range(repeats):  # alternated
        for how in runs:
            proc = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, env=env)
            runs[how].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"a local Ray cluster of 2 CPUs up to its first tasks, then 10 s idle (load {load()}):")
    for how, results in runs.items():
        for key in ("cluster_start", "idle_10s", "driver"):
            print(summary(f"{how}: {key.replace('_', ' ')}", [r[key] for r in results]))
        print(summary(f"{how}: seconds to its first tasks", [r["wall_s"] for r in results], "s"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["startup", "workers", "decode", "sensitivity", "models", "ray-start"])
    parser.add_argument("paths", nargs="*", help="decode: audio files; models: a folder of tracks")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "startup":
        startup(args.repeats or 5)
    elif args.what == "workers":
        workers(args.repeats or 6)
    elif args.what == "decode":
        decode(args.paths, args.repeats or 5)
    elif args.what == "sensitivity":
        sensitivity(args.repeats or 7)
    elif args.what == "models":
        models(args.paths[0], args.repeats or 3)
    else:
        ray_start(args.repeats or 3)


if __name__ == "__main__":
    main()
