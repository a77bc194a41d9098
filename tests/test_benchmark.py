"""benchmarks/throughput.py on 3 tiny generated tracks with the tiny model: every field there, values sane."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from tiny_model import make_tiny_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def throughput():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # spawned workers import it by name too
    try:
        return importlib.import_module("throughput")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def library(throughput, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("bench-cache")
    return throughput.generate_library(3, 6.0, "mp3", jobs=1, cache=cache)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(make_tiny_bundle(tmp_path_factory.mktemp("tiny-model")))


def test_generated_library_is_cached_and_realistic(throughput, library):
    import av

    tracks = sorted(library.glob("*.mp3"))
    assert len(tracks) == 3 and all(t.with_suffix(".txt").stat().st_size > 500 for t in tracks)
    with av.open(str(tracks[0])) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (44100, 2)
        assert container.duration / av.time_base == pytest.approx(6.0, abs=0.2)
    before = tracks[0].stat().st_mtime_ns
    assert throughput.generate_library(3, 6.0, "mp3", jobs=1, cache=library.parent) == library
    assert tracks[0].stat().st_mtime_ns == before  # reused, not regenerated


def test_unique_hard_links_the_rest(throughput, tmp_path):
    folder = throughput.generate_library(3, 2.0, "flac", jobs=1, unique=1, cache=tmp_path)
    tracks = sorted(folder.glob("*.flac"))
    assert len(tracks) == 3 and len({t.stat().st_ino for t in tracks}) == 1
    assert len({t.with_suffix(".txt").read_text() for t in tracks}) == 3


def test_benchmark_measures_every_stage(throughput, library, tiny, tmp_path):
    out = tmp_path / "bench.json"
    result = throughput.main([str(library), "--jobs", "1", "--model", tiny, "--json", str(out), "--profile"])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    for key in ("command", "date", "machine", "library", "jobs", "model", "floor", "decode", "scan", "ratios",
                "targets"):
        assert key in data
    assert data["command"].startswith("python benchmarks/throughput.py ")
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["torch"]
    lib = data["library"]
    assert lib["tracks"] == 3 and lib["lyrics_sidecars"] == 3 and lib["audio_seconds"] == pytest.approx(18, abs=1)

    decode, scan = data["decode"], data["scan"]
    assert decode["failed"] == 0 and decode["sample_rate"] == 22050 and decode["seconds"] > 0
    assert scan["ok"] == 3 and scan["failed"] == 0
    assert 0 < scan["seconds"] <= scan["process_seconds"]
    assert scan["tracks_per_s"] == pytest.approx(3 / scan["seconds"])
    mem = scan["memory"]
    assert mem["samples"] > 0 and 50 < mem["peak_main_rss_mb"] <= mem["peak_tree_rss_mb"] < 8000
    assert mem["peak_processes"] >= 2  # the main process and its decode worker
    assert mem["peak_tree_pss_mb"] is None or 0 < mem["peak_tree_pss_mb"] <= mem["peak_tree_rss_mb"] + 1
    assert scan["cpu"]["main_s"] > 0 and scan["cpu"]["workers_s"] > 0 and scan["cpu"]["others_s"] >= 0
    assert scan["machine_cpu_s"] > 0

    profile = scan["profile"]
    assert profile["tracks"] == 3
    assert profile["main"]["audio_model_s"] > 0 and profile["main"]["lyrics_model_s"] > 0
    workers = profile["workers"]
    assert 0 < workers["decode_s"] <= workers["prepare_s"] and workers["features_s"] > 0
    assert workers["lyrics_s"] > 0 and 0 < workers["first_track_s"] <= workers["prepare_s"]

    if shutil.which("ffmpeg"):
        floor = data["floor"]
        assert floor["failed"] == 0 and floor["seconds"] > 0 and floor["sample_rate"] == 22050
        assert floor["cpu_seconds"] > 0 and data["ratios"]["scan_cpu_over_floor_cpu"] > 0
        assert data["ratios"]["scan_over_floor"] == pytest.approx(scan["seconds"] / floor["seconds"])
        assert isinstance(data["targets"]["ratio_met"], bool)
    else:
        assert data["floor"] is None and data["ratios"]["scan_over_floor"] is None
    assert "full scan" in throughput.format_table(data)


def test_floor_is_skipped_cleanly_without_ffmpeg(throughput, library):
    files = throughput.audio_files(library)
    assert throughput.ffmpeg_floor(files, 1, ffmpeg=None) is None
    assert throughput.ffmpeg_floor(files, 1, ffmpeg="no-such-ffmpeg-program") is None


def test_tree_memory_sees_children(throughput):
    import subprocess

    grandchild = "[sys.executable, '-c', 'import time; time.sleep(1)']"
    code = f"import subprocess, sys; subprocess.Popen({grandchild}).wait()"
    child = subprocess.Popen([sys.executable, "-c", code])
    memory = throughput.TreeMemory(child.pid, 0.02)
    memory.start()
    child.wait()
    memory.stop()
    assert memory.peak_processes == 2 and memory.peak_total_kb > memory.peak_main_kb > 0
