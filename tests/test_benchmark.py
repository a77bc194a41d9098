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
    for key in (
        "command",
        "date",
        "machine",
        "library",
        "jobs",
        "model",
        "floor",
        "decode",
        "scan",
        "ratios",
        "targets",
    ):
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
    assert profile["tracks"] == 3 and profile["main"]["startup_pool_s"] > 0
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


def test_cli_mode_times_the_command_from_launch_to_exit(throughput, library, tiny, tmp_path):
    out = tmp_path / "cli.json"
    data = throughput.main([str(library), "--jobs", "1", "--model", tiny, "--json", str(out), "--cli", "--no-decode"])
    scan = data["scan"]
    assert scan["command"].startswith("mer-tag scan ") and "--force" in scan["command"]
    assert scan["ok"] == 3 and scan["failed"] == 0 and scan["seconds"] == scan["process_seconds"] > 0
    assert scan["cpu"]["main_s"] > 0 and scan["cpu"]["workers_s"] > 0  # the command and its decode worker
    assert scan["memory"]["peak_processes"] >= 2 and "profile" not in scan
    with pytest.raises(SystemExit):
        throughput.main([str(library), "--cli", "--profile"])


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


@pytest.fixture(scope="module")
def clip_dataset(tmp_path_factory) -> Path:
    """A MIREX-like layout in miniature: 20 1.5-s 22.05-kHz mono MP3 clips in five clusters, each with
    tags, lyrics (Latin-1, as some of the dataset's are) and a MIDI file."""
    from media import tone, write_audio, write_midi, write_tags

    root = tmp_path_factory.mktemp("clips")
    labels = []
    for i in range(20):
        name = f"{i + 1:03d}"
        path = write_audio(root / "Audio" / f"{name}.mp3", tone(1.5, 220.0 * (1 + i % 7), seed=i))
        write_tags(path, title=f"Song {name}", artist=f"Artist {i % 5}", album="Clips")
        lines = [f"line {j} of s\xf6ng {name}" for j in range(6)]
        (root / "Lyrics").mkdir(exist_ok=True)
        text = "\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:])
        (root / "Lyrics" / f"{name}.txt").write_bytes(text.encode("latin-1"))
        write_midi(root / "MIDIs" / f"{name}.mid", pitches=(60 + i % 12, 64, 67))
        labels.append(f"Cluster {i % 5 + 1}")
    (root / "clusters.txt").write_text("\n".join(labels) + "\n")
    return root


def test_real_library_from_clips(throughput, clip_dataset, tmp_path):
    import av
    import numpy as np

    from mer_tag.library import walk
    from mer_tag.sources.audio import load_audio
    from mer_tag.sources.lyrics import clean_lyrics, read_lyrics_file

    folder = throughput.real_library(clip_dataset, 96, "mix", cache=tmp_path, clips_per_song=2)
    tracks = list(walk([folder]))
    assert len(tracks) == 96
    assert {fmt: sum(t.path.suffix == f".{fmt}" for t in tracks) for fmt in throughput.MIX_FORMATS} == dict.fromkeys(
        throughput.MIX_FORMATS, 16
    )
    assert len({t.path.stat().st_ino for t in tracks}) == 48  # 8 songs × 6 formats, each file twice
    assert sum(t.lyrics_path is not None for t in tracks) == 72 and sum(t.midi_path is not None for t in tracks) == 24
    assert sum(t.lyrics_path is not None and t.lyrics_path.suffix == ".lrc" for t in tracks) == 24
    assert not any(t.lyrics_path and t.midi_path for t in tracks)

    songs = json.loads((folder / ".complete").read_text())["songs"]
    clips = [c for song in songs for c in song["clips"]]
    assert len(songs) == 8 and len(clips) == len(set(clips)) == 16  # no clip used twice
    labels = (clip_dataset / "clusters.txt").read_text().split("\n")
    assert all(len({labels[int(c) - 1] for c in song["clips"]}) == 1 for song in songs)  # one mood a song

    by_name = {t.path.name: t for t in tracks}
    first, lrc, midi = by_name["track_00001.mp3"], by_name["track_00005.mp3"], by_name["track_00007.mp3"]
    lead = songs[0]["clips"][0]
    assert first.lyrics_path.read_bytes() == (clip_dataset / "Lyrics" / f"{lead}.txt").read_bytes()
    lrc_text = lrc.lyrics_path.read_text(encoding="utf-8")
    assert lrc_text.count("[00:") >= 6  # every sung line timed
    original = read_lyrics_file(clip_dataset / "Lyrics" / f"{songs[4]['clips'][0]}.txt")
    assert clean_lyrics(read_lyrics_file(lrc.lyrics_path)) == clean_lyrics(original)  # the real words, verse break kept
    assert midi.midi_path.read_bytes() == (clip_dataset / "MIDIs" / f"{songs[6]['clips'][0]}.mid").read_bytes()

    for fmt in throughput.MIX_FORMATS:
        path = next(t.path for t in tracks if t.path.suffix == f".{fmt}")
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            assert stream.channels == 2 and stream.rate == (48000 if fmt == "opus" else 44100)
    import mutagen

    assert mutagen.File(str(first.path), easy=True)["title"] == [f"Song {lead}"]
    # what a scan hears is the joined clips: the mono downmix follows the source
    heard = load_audio(first.path, sr=22050)
    source = np.concatenate([load_audio(clip_dataset / "Audio" / f"{c}.mp3") for c in songs[0]["clips"]])
    n = min(heard.size, source.size) - 4000
    lag = int(np.argmax([np.dot(heard[d : d + n], source[:n]) for d in range(0, 3000, 1)]))
    assert np.corrcoef(heard[lag : lag + n], source[:n])[0, 1] > 0.9
    assert abs(heard.size - source.size) < 0.05 * source.size
    before = first.path.stat().st_mtime_ns
    assert throughput.real_library(clip_dataset, 96, "mix", cache=tmp_path, clips_per_song=2) == folder
    assert first.path.stat().st_mtime_ns == before  # reused, not rebuilt


def test_pseudo_stereo_channels_differ_and_downmix_is_the_clip(throughput):
    import numpy as np

    rng = np.random.default_rng(0)
    mono = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    y = throughput.pseudo_stereo(mono, 44100)
    assert y.shape == (2, 44100) and np.abs(y[0] - y[1]).max() > 0.1
    np.testing.assert_allclose((y[0] + y[1]) / np.sqrt(2), mono, atol=1e-5)  # FFmpeg's stereo → mono


def test_real_songs_get_the_high_band_and_stereo_image_real_music_has(throughput):
    """The clips hold nothing above 11 kHz; a song gets a high band (both channels, the side too) made of their
    own 4-10 kHz band, and nothing below 11.025 kHz changes: a scan at 16 kHz hears the clip."""
    import numpy as np

    sr = 44100
    rng = np.random.default_rng(1)
    t = np.arange(3 * sr) / sr
    mono = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    mono += 0.01 * rng.standard_normal(mono.size).astype(np.float32)
    mono = np.fft.irfft(np.fft.rfft(mono) * (np.fft.rfftfreq(mono.size, 1 / sr) < 10000), n=mono.size).astype(
        np.float32
    )
    y = throughput.real_stereo(mono, sr)
    plain = throughput.pseudo_stereo(mono, sr)

    def band_power(x, lo, hi):
        power = np.abs(np.fft.rfft(x)) ** 2
        hz = np.fft.rfftfreq(x.size, 1 / sr)
        return power[(hz >= lo) & (hz < hi)].sum()

    mid, side = (y[0] + y[1]) / np.sqrt(2), (y[0] - y[1]) / np.sqrt(2)
    total = band_power(mid, 0, sr / 2)
    assert band_power(mid, 11025, 17000) > 1e-3 * total and band_power(mid, 17000, 22050) > 1e-4 * total
    assert band_power(side, 11025, 22050) > 1e-3 * total
    n = mono.size
    low = lambda x: np.fft.irfft(np.fft.rfft(x) * (np.fft.rfftfreq(n, 1 / sr) < 11000), n=n)  # noqa: E731
    edge = sr // 20  # the right channel's copy starts 0.7 ms late: its first and last moments leak a little
    np.testing.assert_allclose(low(y)[:, edge:-edge], low(plain)[:, edge:-edge], atol=1e-4)
    assert band_power((plain[0] + plain[1]) / np.sqrt(2), 11025, 22050) < 1e-6 * total  # what it adds to


def test_vbr_mp3_songs_vary_their_bit_rate(throughput, clip_dataset, tmp_path):
    import mutagen.mp3

    folder = throughput.real_library(clip_dataset, 8, "mp3-vbr", cache=tmp_path, clips_per_song=2)
    files = sorted(folder.glob("*.mp3"))
    assert len(files) == 8
    assert mutagen.mp3.MP3(files[0]).info.bitrate_mode == mutagen.mp3.BitrateMode.VBR
    assert mutagen.mp3.MP3(files[0]).info.channels == 2


def test_ab_alternates_two_versions_and_reports_the_ratio(library, tiny, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        ab = importlib.import_module("ab")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "ab.json"
    args = ["--base", "HEAD", "--pairs", "2", "--json", str(out), "--"]
    summary = ab.main([*args, str(library), "--jobs", "1", "--model", tiny, "--no-decode", "--no-ffmpeg"])
    assert [(r["pair"], r["side"]) for r in summary["runs"]] == [(0, "A"), (0, "B"), (1, "B"), (1, "A")]
    assert all(r["scan_s"] > 0 and r["floor_s"] is None for r in summary["runs"])
    assert summary["B_over_A_scan_s"][0].isdigit() and summary["A_scan_over_floor"] == "–"
    assert json.loads(out.read_text())["base"] == "HEAD"
