"""Scan throughput against the ffmpeg decode floor, and peak memory (issue #6's measuring instrument).

    python benchmarks/throughput.py [FOLDER] [--tracks 20] [--seconds 240] [--format mp3|...|mix] [--jobs 2]
                                    [--real [DATASET]] [--model default|tiny|PATH] [--json out.json] [--profile]

In one run, on the same files and with the same number of parallel jobs J, it measures:

- the floor: Debian's `ffmpeg -nostdin -v error -i F -ac 1 -ar 22050 -f s16le -` over every file, J at a
  time (a benchmark may need the ffmpeg program; the tool never does);
- our decode only: `stream_audio` over every file at the model's sample rate in J worker processes;
- the full `scan` (to a temporary CSV, forced, no progress bar) in a subprocess, with the peak RSS of its
  whole process tree (main + decode workers) sampled from /proc every 50 ms;

then prints a table and writes JSON (numbers, machine, versions, the exact command). Without FOLDER it
generates N music-like tracks of S seconds (44.1 kHz stereo: chords, bass, drums, noise, a loudness
envelope; mp3 at 192 kbit/s by default) with a lyrics .txt sidecar each, cached under
.cache/bench/throughput/ by (N, S, format), so reruns reuse them. `--unique K` synthesises only K tracks
and hard-links the rest (a 2,000-track library in minutes; every path is still decoded). `--real` makes
the library from real songs instead: 8 four-minute songs joined from the dataset's clips, given back the
stereo image and high band real recordings have, six with their real lyrics (.txt or .lrc) and two with
their MIDI file beside them, repeated to --tracks files by hard links (`real_library`; `--format mix` for
six formats, `mp3-vbr` for LAME -V 2 MP3s). `--profile` also
reports where the scan's time goes: decode, features, model forward, waiting. The JSON records the CPU
other processes took during the scan: numbers from a busy machine say so.

Every file is read once before the clock starts, so all three measure warm-cache CPU work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

# Workers of the decode-only pass and of a profiled scan import this module: keep the top stdlib-only.

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "bench" / "throughput"  # git-ignored
GENERATOR_VERSION = 1  # bump when the generated signal changes, so caches are rebuilt
FLOOR_RATE = 22050  # Hz: the issue's floor, the MIREX rate
RSS_INTERVAL = 0.05  # s between /proc samples of RSS (statm: a few µs each)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PSS_EVERY = 20  # PSS (smaps_rollup: milliseconds for a process holding torch) on every 20th sample, once a second;
#                 reading it every 50 ms took 4.6 CPU-s of a 25-s scan, 9 % of the 2 cores it measured
TARGET_RATIO = 1.5  # scan ≤ 1.5 × floor (3–5-minute tracks with lyrics, 2 cores)
TARGET_RSS_MB = 2048  # peak RSS ≤ 2 GB whatever the library size
CHILD_MARK = "@@throughput-child@@"
THREAD_ENV = ("OMP_", "MKL_", "OPENBLAS_", "TORCH_", "KMP_")  # recorded: they change what a scan costs

# format → (muxer, encoder, sample rate, sample format, bit rate) for PyAV; None → soundfile. A format's files
# end in its name, but for those of EXTENSIONS.
FORMATS = {
    "mp3": ("mp3", "libmp3lame", 44100, "fltp", 192_000),
    "mp3-vbr": ("mp3", "libmp3lame", 44100, "fltp", None),  # LAME -V 2 (ENCODER_OPTIONS), --real only
    "flac": ("flac", "flac", 44100, "s16", None),
    "m4a": ("ipod", "aac", 44100, "fltp", 192_000),
    "opus": ("ogg", "libopus", 48000, "flt", 128_000),
    "ogg": None,  # Vorbis through libsndfile (FFmpeg's own Vorbis encoder is experimental)
    "wav": None,
}
EXTENSIONS = {"mp3-vbr": "mp3"}
# LAME's variable bit rate at quality 2 (`lame -V 2`, FFmpeg's `-q:a 2`: global_quality = 2 × FF_QP2LAMBDA,
# 118), its standard preset: about 190 kbit/s on music, more where the music needs it
ENCODER_OPTIONS = {"mp3-vbr": {"global_quality": str(2 * 118), "flags": "+qscale"}}


# ------------------------------------------------------------------ the library


def generate_library(
    tracks: int, seconds: float, fmt: str = "mp3", jobs: int = 2, unique: int | None = None, cache: Path = CACHE
) -> Path:
    """A folder of `tracks` generated tracks (+ lyrics sidecars), reused when already complete."""
    if fmt not in FORMATS or fmt in EXTENSIONS:
        raise SystemExit(
            f"unknown --format {fmt!r} for generated tracks; one of {', '.join(set(FORMATS) - set(EXTENSIONS))}"
        )
    unique = min(tracks, unique or tracks)
    name = f"{fmt}-{tracks}x{seconds:g}s" + (f"-u{unique}" if unique < tracks else "") + f"-v{GENERATOR_VERSION}"
    folder = Path(cache) / name
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"track_{i + 1:05d}.{fmt}" for i in range(tracks)]
    for path in paths[:unique]:  # track i is the same in every library of this length and format: share it
        if not path.exists():
            _link_from_sibling(path, seconds, fmt, folder)
    work = [(str(p), seconds, i) for i, p in enumerate(paths[:unique]) if not p.exists()]
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(jobs, mp_context=_spawn()) as pool:
            list(pool.map(_write_track, *zip(*work)))
    else:
        for args in work:
            _write_track(*args)
    for i, path in enumerate(paths):
        if i >= unique and not path.exists():
            source = paths[i % unique]
            try:
                os.link(source, path)
            except OSError:
                shutil.copyfile(source, path)
        path.with_suffix(".txt").write_text(fake_lyrics(i), encoding="utf-8")
    marker.write_text(json.dumps({"tracks": tracks, "seconds": seconds, "format": fmt, "unique": unique}))
    return folder


def _link_from_sibling(path: Path, seconds: float, fmt: str, folder: Path) -> None:
    for sibling in sorted(folder.parent.glob(f"{fmt}-*x{seconds:g}s*-v{GENERATOR_VERSION}")):
        source = sibling / path.name
        if sibling != folder and (sibling / ".complete").exists() and source.exists():
            try:
                os.link(source, path)
                return
            except OSError:
                pass


def _write_track(path: str, seconds: float, seed: int) -> None:
    fmt = Path(path).suffix.lstrip(".")
    spec = FORMATS[fmt]
    sr = spec[2] if spec else 44100
    y = music_like(seconds, seed, sr)
    tmp = Path(path).with_name(".partial-" + Path(path).name)
    if spec is None:
        _write_sndfile(tmp, y, sr, fmt)
    else:
        _encode_pyav(tmp, y, sr, *spec[:2], *spec[3:], title=f"Track {seed + 1}")
    tmp.replace(path)  # a half-written file never looks generated


SNDFILE_BLOCK = 1 << 16  # frames per write: libsndfile's Vorbis encoder crashed on a 4-minute write in one call


def _write_sndfile(path: Path, y, sr: int, fmt: str) -> None:
    """Ogg Vorbis or 16-bit WAV of a [2, n] signal through libsndfile, written a block at a time."""
    import soundfile as sf

    with sf.SoundFile(
        path,
        "w",
        sr,
        y.shape[0],
        format="OGG" if fmt == "ogg" else "WAV",
        subtype="VORBIS" if fmt == "ogg" else "PCM_16",
    ) as out:
        for start in range(0, y.shape[1], SNDFILE_BLOCK):
            out.write(y[:, start : start + SNDFILE_BLOCK].T)


def _encode_pyav(
    path: Path,
    y,
    sr: int,
    muxer: str,
    codec: str,
    sample_fmt: str,
    bit_rate: int | None,
    title: str,
    options: dict | None = None,
) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w", format=muxer) as out:
        out.metadata.update(title=title, artist="Benchmark Band", album="Throughput")
        stream = out.add_stream(codec, rate=sr, layout="stereo", options=options or {})
        stream.format = sample_fmt
        if bit_rate:
            stream.bit_rate = bit_rate
        stream.codec_context.open()
        frame_len = stream.codec_context.frame_size or 4096
        planar = sample_fmt.endswith("p")
        samples = (y * 32767).astype(np.int16) if sample_fmt.startswith("s16") else y.astype(np.float32)
        pts = 0
        for start in range(0, samples.shape[1], frame_len):
            block = samples[:, start : start + frame_len]
            data = np.ascontiguousarray(block if planar else block.T.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(data, format=sample_fmt, layout="stereo")
            frame.sample_rate, frame.pts = sr, pts
            pts += block.shape[1]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def music_like(seconds: float, seed: int, sr: int = 44100):
    """[2, n] float32 stereo: chord progression with harmonics, bass, drum hits, noise, loudness envelope."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros((2, n), np.float32)
    beat = 60.0 / rng.uniform(70, 160)
    bar = 4 * beat
    root = 45 + int(rng.integers(0, 12))  # MIDI note of the key
    degrees = [0, 5, 7, 9, 3, 10, 2]
    hz = lambda midi: 440.0 * 2 ** ((midi - 69) / 12)  # noqa: E731
    seg = int(2 * bar * sr)  # a chord every two bars
    for s0 in range(0, n, seg):
        m = min(seg, n - s0)
        t = np.arange(m, dtype=np.float32) / sr
        base = root + int(rng.choice(degrees))
        chord = [base, base + (3 if rng.random() < 0.4 else 4), base + 7, base + 12 * int(rng.integers(0, 2))]
        attack = np.minimum(1.0, t / 0.05) * np.exp(-t / (1.5 * bar))
        for k, note in enumerate(chord):
            f = hz(note + 12)
            voice = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.28)) / h**1.5 for h in (1, 2, 3))
            pan = 0.3 + 0.4 * (k % 2)
            y[0, s0 : s0 + m] += (0.09 * (1 - pan)) * attack * voice
            y[1, s0 : s0 + m] += (0.09 * pan) * attack * voice
        bass = 0.18 * np.sin(2 * np.pi * hz(base - 12) * t) * np.exp(-(t % beat) / beat)
        y[:, s0 : s0 + m] += bass
    hits = np.arange(0, seconds, beat / 2)
    decay = np.exp(-np.arange(int(0.12 * sr)) / (0.02 * sr)).astype(np.float32)
    for i, h in enumerate(hits):
        a = int(h * sr)
        b = min(n, a + decay.size)
        loud = 0.35 if i % 4 == 0 else (0.2 if i % 2 == 0 else 0.08)
        y[:, a:b] += loud * decay[: b - a] * rng.standard_normal((2, b - a)).astype(np.float32)
    y += 0.01 * rng.standard_normal((2, n)).astype(np.float32)
    t = np.arange(n, dtype=np.float32) / sr
    section = 0.75 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(20, 40))  # verses and choruses
    fade = np.minimum(1.0, np.minimum(t / 2.0, (seconds - t) / 4.0)).clip(0, 1)
    y *= section * fade
    return np.clip(y, -0.99, 0.99).astype(np.float32)


WORDS = (
    "love night heart rain fire dream light road home city alone together tonight forever cold sun "
    "dance cry run hold fall rise burn break shine remember forget dark sky river ocean wind stone "
    "you me we they never always again away lost found slow fast wild quiet empty golden broken "
    "tell see feel know want need take give walk wait stay leave call sing hear touch believe"
).split()


def fake_lyrics(seed: int) -> str:
    """About 300 words: four verses, a chorus three times (a typical song's length)."""
    import random

    rnd = random.Random(seed)
    line = lambda: " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 9))).capitalize()  # noqa: E731
    chorus = "\n".join(line() for _ in range(4))
    parts = []
    for verse in range(4):
        parts.append("\n".join(line() for _ in range(6)))
        if verse in (0, 1, 3):
            parts.append(chorus)
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------------------------ a library of real songs

REAL_DATASET = ROOT.parent / "shared" / "datasets" / "mirex-mood"  # the MIREX-like clips (never committed)
REAL_VERSION = 2  # bump when the way real songs are assembled changes, so caches are rebuilt (2: full band)
REAL_SEED = 18  # which clips make which song: fixed, so every run measures the same songs
REAL_SONGS = 8  # distinct songs; a library of N tracks repeats them
CLIPS_PER_SONG = 8  # 8 clips of ~29.7 s: a 237-s, four-minute song
LYRICS_SONGS = 6  # songs 0-5 have their lyrics beside them...
LRC_SONGS = 2  # ...the last two of those as timed .lrc, the rest as the dataset's .txt
MIDI_SONGS = 2  # songs 6-7 have a MIDI file beside them (and no lyrics)
MIX_FORMATS = ("mp3", "flac", "m4a", "ogg", "opus", "wav")  # the formats people keep: MP3, FLAC, AAC, Vorbis, Opus, WAV
STEREO_DELAY_S = 0.012  # the side channel: the clip 12 ms late (a Haas-style widening, see `pseudo_stereo`)
STEREO_WIDTH = 0.4
# The high band a 22.05-kHz clip lacks (`high_band`): its 4-10 kHz band, moved up by 7 kHz (to 11-17 kHz, 6 dB
# down) and by 13 kHz (to 17-23 kHz, 12 dB down), the right channel's copy 0.7 ms after the left's. Nothing is
# added below the clip's own Nyquist frequency, 11.025 kHz, so what a scan hears at 16 kHz is the clip.
HIGH_SOURCE_HZ = (4000.0, 10000.0)
HIGH_COPIES = ((7000.0, -6.0), (13000.0, -12.0))  # (shift Hz, gain dB)
HIGH_FROM_HZ = 11025.0
HIGH_DELAY_S = 0.0007


def real_library(
    dataset: Path,
    tracks: int,
    fmt: str = "mp3",
    cache: Path = CACHE,
    songs: int = REAL_SONGS,
    clips_per_song: int = CLIPS_PER_SONG,
) -> Path:
    """A folder of `tracks` files made from `songs` real songs, reused when already complete.

    Each song joins `clips_per_song` real 30-s clips of one mood cluster from `dataset` (the MIREX-like
    layout: Audio/NNN.mp3, Lyrics/NNN.txt, MIDIs/NNN.mid, clusters.txt), upsampled to 44.1 kHz (Opus:
    48 kHz) stereo and given back the high band the clips lack (`real_stereo`: what an encoder and a decoder
    of real music work on), tagged with its first clip's title, artist and album. Songs 0-5 get that clip's
    real lyrics beside them (the last two as an .lrc with line timestamps), songs 6-7 its real MIDI file.
    `fmt` is one of FORMATS, or 'mix' for MIX_FORMATS in turn, eight files each. Track i is song
    i % songs; every file past the first of a (song, format) is a hard link to it, sidecars too: see
    docs/performance.md for why links measure the same as copies here.
    """
    formats = MIX_FORMATS if fmt == "mix" else (fmt,)
    if any(f not in FORMATS for f in formats):  # mp3-vbr: MP3 files, LAME -V 2
        raise SystemExit(f"unknown --format {fmt!r}; one of {', '.join([*FORMATS, 'mix'])}")
    dataset = Path(dataset).resolve()
    if not (dataset / "clusters.txt").is_file():
        raise SystemExit(f"no MIREX-like dataset at {dataset} (clusters.txt missing)")
    shape = f"{songs}x{clips_per_song}" if (songs, clips_per_song) != (REAL_SONGS, CLIPS_PER_SONG) else ""
    folder = Path(cache) / f"real-{fmt}-{tracks}{'-' + shape if shape else ''}-v{REAL_VERSION}"
    marker = folder / ".complete"
    if marker.exists() and json.loads(marker.read_text()).get("dataset") == str(dataset):
        return folder
    picked = pick_songs(dataset, songs, clips_per_song)
    masters = Path(cache) / f"real-songs{'-' + shape if shape else ''}-v{REAL_VERSION}"
    masters.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(tracks):
        k, song_fmt = i % songs, formats[(i // songs) % len(formats)]
        ext = EXTENSIONS.get(song_fmt, song_fmt)
        master = masters / f"song_{k + 1:02d}{'' if ext == song_fmt else '-' + song_fmt}.{ext}"
        if not master.exists():
            _write_real_song(master, picked[k], dataset, song_fmt)
        path = folder / f"track_{i + 1:05d}.{ext}"
        _link(master, path)
        for sidecar in _write_sidecars(masters, k, picked[k], dataset):
            _link(sidecar, path.with_suffix(sidecar.suffix))
    marker.write_text(json.dumps({"dataset": str(dataset), "tracks": tracks, "format": fmt, "songs": picked}))
    return folder


def pick_songs(dataset: Path, songs: int = REAL_SONGS, clips_per_song: int = CLIPS_PER_SONG) -> list[dict]:
    """Which clips make each song: a lead clip (with lyrics for the first LYRICS_SONGS songs, with MIDI for
    the rest) and more clips of the same mood cluster, none used twice; the same for the same dataset."""
    import random

    names = sorted(p.stem for p in (dataset / "Audio").glob("*.mp3"))
    labels = (dataset / "clusters.txt").read_text(encoding="utf-8").split("\n")
    by_cluster = defaultdict(list)
    for name, label in zip(names, labels):
        by_cluster[label.strip()].append(name)
    clusters = sorted(by_cluster)
    lyrics = {p.stem for p in (dataset / "Lyrics").glob("*.txt")}
    midi = {p.stem for p in (dataset / "MIDIs").glob("*.mid")}
    rnd, used, picked = random.Random(REAL_SEED), set(), []
    for k in range(songs):
        cluster = clusters[k % len(clusters)]
        sung = k < min(LYRICS_SONGS, songs)
        leads = [n for n in by_cluster[cluster] if n not in used and n in (lyrics if sung else midi)]
        if not leads:
            raise SystemExit(f"{dataset}: no unused clip with {'lyrics' if sung else 'MIDI'} in {cluster}")
        lead = rnd.choice(leads)
        used.add(lead)
        others = [n for n in by_cluster[cluster] if n not in used]
        rest = rnd.sample(others, min(len(others), clips_per_song - 1))
        used.update(rest)
        picked.append(
            {
                "cluster": cluster,
                "clips": [lead, *rest],
                "lyrics": ("lrc" if k >= LYRICS_SONGS - LRC_SONGS else "txt") if sung else None,
                "midi": not sung and k < LYRICS_SONGS + MIDI_SONGS,
            }
        )
    return picked


def _write_real_song(path: Path, song: dict, dataset: Path, fmt: str) -> None:
    import mutagen
    import numpy as np

    from mer_tag.sources.audio import load_audio

    spec = FORMATS[fmt]
    sr = spec[2] if spec else 44100
    mono = np.concatenate([load_audio(dataset / "Audio" / f"{name}.mp3", sr=sr) for name in song["clips"]])
    y = real_stereo(mono, sr)
    easy = mutagen.File(str(dataset / "Audio" / f"{song['clips'][0]}.mp3"), easy=True)
    tags = {key: (easy.get(key) or [""])[0] for key in ("title", "artist", "album")} if easy else {}
    tmp = path.with_name(".partial-" + path.name)
    if spec is None:
        _write_sndfile(tmp, y, sr, fmt)
    else:
        _encode_pyav(tmp, y, sr, *spec[:2], *spec[3:], title="", options=ENCODER_OPTIONS.get(fmt))
    _tag(tmp, {k: v for k, v in tags.items() if v})
    tmp.replace(path)


def real_stereo(mono, sr: int):
    """[2, n] float32 at `sr` from a clip upsampled to it: `pseudo_stereo` plus `high_band`, clipped as a master
    is. Real music fills the band to 16-20 kHz and a mix has a side channel; the dataset's 22.05-kHz clips hold
    nothing above 11 kHz, and MP3s of such songs decode cheaper (MP3 decoding 18 % cheaper a minute at 192
    kbit/s; docs/performance.md). What a scan hears at 16 kHz stays the clip: the high band is all above it."""
    import numpy as np

    return np.clip(pseudo_stereo(mono, sr, clip=False) + high_band(mono, sr), -0.99, 0.99).astype(np.float32)


def high_band(mono, sr: int):
    """[2, n] float32: the high band for the left and right channel, made from the clip's own 4-10 kHz band
    (HIGH_SOURCE_HZ) moved up in frequency (HIGH_COPIES), so it rises and falls with the music (cymbals,
    sibilants, the air of a recording), as a spectral band replication decoder restores a high band; the
    right channel's 0.7 ms later, so the side channel carries it too. Nothing below HIGH_FROM_HZ."""
    import numpy as np
    import scipy.fft

    spectrum = scipy.fft.rfft(np.asarray(mono, dtype=np.float32))
    hz_per_bin = sr / mono.size
    source = np.arange(int(np.ceil(HIGH_SOURCE_HZ[0] / hz_per_bin)), int(HIGH_SOURCE_HZ[1] / hz_per_bin))
    high = np.zeros_like(spectrum)
    for shift_hz, gain_db in HIGH_COPIES:
        target = source + int(round(shift_hz / hz_per_bin))
        fits = target < spectrum.size
        high[target[fits]] += spectrum[source[fits]] * np.float32(10 ** (gain_db / 20))
    high[: int(np.ceil(HIGH_FROM_HZ / hz_per_bin))] = 0
    left = scipy.fft.irfft(high, n=mono.size).astype(np.float32)
    delay = int(HIGH_DELAY_S * sr)
    return np.stack([left, np.concatenate([np.zeros(delay, np.float32), left[:-delay]])])


def pseudo_stereo(mono, sr: int, clip: bool = True):
    """[2, n] float32 from a mono signal x: L = a(x + w·d), R = a(x − w·d), d = x delayed STEREO_DELAY_S.
    The channels differ (a joint-stereo encoder has a side channel to code, as in a real mix), and the
    downmix a scan hears, (L + R) / √2 = a·√2·x, is the clip itself at its own level (a = 1/√2). `clip`: limited
    to ±0.99, as a file holds it."""
    import numpy as np

    delay = int(STEREO_DELAY_S * sr)
    side = STEREO_WIDTH * np.concatenate([np.zeros(delay, np.float32), mono[:-delay]])
    a = np.float32(1 / np.sqrt(2))
    y = np.stack([a * (mono + side), a * (mono - side)]).astype(np.float32)
    return np.clip(y, -0.99, 0.99) if clip else y


def _tag(path: Path, tags: dict) -> None:
    """Title, artist, album in the container's own tag format (ID3 for MP3/WAV, MP4 atoms, Vorbis comments)."""
    import mutagen
    from mutagen.id3 import ID3, TALB, TIT2, TPE1
    from mutagen.mp4 import MP4Tags

    audio = mutagen.File(str(path))
    if audio.tags is None:
        audio.add_tags()
    if isinstance(audio.tags, ID3):
        for frame, key in ((TIT2, "title"), (TPE1, "artist"), (TALB, "album")):
            audio.tags.setall(frame.__name__, [frame(encoding=3, text=[tags[key]])] if key in tags else [])
    elif isinstance(audio.tags, MP4Tags):
        for atom, key in (("\xa9nam", "title"), ("\xa9ART", "artist"), ("\xa9alb", "album")):
            if key in tags:
                audio.tags[atom] = [tags[key]]
    else:
        for key, value in tags.items():
            audio.tags[key.upper()] = [value]
    audio.save()


def _write_sidecars(masters: Path, k: int, song: dict, dataset: Path) -> list[Path]:
    """The song's lyrics (.txt as the dataset has it, or an .lrc made from it) and MIDI file, once."""
    lead = song["clips"][0]
    out = []
    if song["lyrics"] == "txt":
        out.append(masters / f"song_{k + 1:02d}.txt")
        if not out[-1].exists():
            shutil.copyfile(dataset / "Lyrics" / f"{lead}.txt", out[-1])  # its own bytes and encoding
    elif song["lyrics"] == "lrc":
        out.append(masters / f"song_{k + 1:02d}.lrc")
        if not out[-1].exists():
            text = timed_lyrics(dataset / "Lyrics" / f"{lead}.txt", len(song["clips"]) * 29.7)
            out[-1].write_text(text, encoding="utf-8")
    if song["midi"]:
        out.append(masters / f"song_{k + 1:02d}.mid")
        if not out[-1].exists():
            shutil.copyfile(dataset / "MIDIs" / f"{lead}.mid", out[-1])
    return out


def timed_lyrics(path: Path, seconds: float) -> str:
    """An .lrc of a real lyrics file: its lines, each stamped [mm:ss.xx], spread from 10 s to 10 s before
    the end (where a singer would be; the timing itself is made up), blank lines kept as verse breaks."""
    from mer_tag.sources.lyrics import read_lyrics_file

    lines = read_lyrics_file(path).splitlines()
    sung = [i for i, line in enumerate(lines) if line.strip()]
    step = (seconds - 20.0) / max(1, len(sung))
    stamps = {i: 10.0 + n * step for n, i in enumerate(sung)}
    out = ["[ti:benchmark]", "[by:benchmarks/throughput.py]"]
    for i, line in enumerate(lines):
        if i in stamps:
            minutes, secs = divmod(stamps[i], 60)
            out.append(f"[{int(minutes):02d}:{secs:05.2f}]{line.strip()}")
        else:
            out.append("")
    return "\n".join(out) + "\n"


def _link(source: Path, path: Path) -> None:
    if path.exists():
        return
    try:
        os.link(source, path)
    except OSError:
        shutil.copyfile(source, path)


def audio_files(folder: Path) -> list[Path]:
    return [t.path for t in tracks_in(folder)]


def tracks_in(folder: Path) -> list:
    from mer_tag.library import walk

    return list(walk([folder]))


def read_all(files: list[Path]) -> int:
    """Read every file once, so each measurement starts from a warm page cache; total bytes."""
    total = 0
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total


# ------------------------------------------------------------------ the floor and our decode


def ffmpeg_floor(files: list[Path], jobs: int, ffmpeg: str | None = "ffmpeg") -> dict | None:
    """Wall time of the ffmpeg command line decoding every file to 22.05 kHz mono PCM, `jobs` at a time.
    None when there is no ffmpeg program."""
    exe = shutil.which(ffmpeg) if ffmpeg else None
    if exe is None:
        return None
    command = [exe, "-nostdin", "-v", "error", "-i", "{file}", "-ac", "1", "-ar", str(FLOOR_RATE), "-f", "s16le", "-"]

    def one(path: Path) -> int:
        argv = [str(path) if a == "{file}" else a for a in command]
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    import resource

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        codes = list(pool.map(one, files))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "failed": sum(c != 0 for c in codes),
        "sample_rate": FLOOR_RATE,
        "command": " ".join(["ffmpeg", *command[1:]]).replace("{file}", "FILE") + " > /dev/null",
        "version": _ffmpeg_version(exe),
    }


def _ffmpeg_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def decode_only(files: list[Path], sr: int, jobs: int) -> dict:
    """Wall time of `stream_audio` over every file at `sr` Hz in `jobs` spawned workers (started and warm
    before the clock starts, as a scan's are by its first tracks)."""
    jobs = max(1, jobs)
    with ProcessPoolExecutor(jobs, mp_context=_spawn()) as pool:
        list(pool.map(_warm_worker, range(jobs)))
        start = time.perf_counter()
        results = list(pool.map(_decode_file, [str(f) for f in files], [sr] * len(files)))
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "sample_rate": sr,
        "audio_seconds": sum(r[0] for r in results),
        "failed": sum(r[1] is not None for r in results),
        "cpu_seconds": sum(r[2] for r in results),
        "errors": sorted({r[1] for r in results if r[1]})[:5],
    }


def _spawn():
    """The spawn context, with this folder on sys.path: spawned workers find our functions by module name."""
    import multiprocessing

    if __name__ != "__main__" and str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return multiprocessing.get_context("spawn")


def _warm_worker(_: int) -> None:
    import mer_tag.sources.audio  # noqa: F401

    time.sleep(0.3)  # hold this worker so the next task starts the next one


def _decode_file(path: str, sr: int) -> tuple[float, str | None, float]:
    from mer_tag.sources.audio import AudioError, stream_audio

    cpu = time.process_time()
    samples = 0
    try:
        with stream_audio(path, sr=sr) as stream:
            for block in stream:
                samples += block.size
        error = stream.problem
    except AudioError as exc:
        error = str(exc)
    return samples / sr, error, time.process_time() - cpu


# ------------------------------------------------------------------ the scan, in a subprocess


class TreeMemory(threading.Thread):
    """Samples the RSS of a process and all its descendants from /proc: peak of the sum, peak of the root.

    RSS counts shared pages (torch's libraries, mapped by every process that imports it) once per process,
    so the sum overstates physical memory; PSS (from smaps_rollup, where readable) shares them out."""

    def __init__(self, pid: int, interval: float = RSS_INTERVAL):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_total_kb = self.peak_main_kb = self.peak_pss_kb = self.samples = self.peak_processes = 0
        self.cpu_s = 0.0
        self.root_cpu_s = 0.0  # the root process's own CPU seconds at the last sample (/proc/PID/stat)
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.thread_time()
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)
        self.cpu_s = time.thread_time() - started  # what the sampling itself cost (this thread's CPU)

    def sample(self) -> None:
        pids = [self.pid, *descendants(self.pid)]
        with_pss = self.samples % PSS_EVERY == 0
        sizes, shares = zip(*(memory_kb(p, with_pss) for p in pids))
        self.peak_main_kb = max(self.peak_main_kb, sizes[0])
        self.peak_total_kb = max(self.peak_total_kb, sum(sizes))
        self.peak_pss_kb = max(self.peak_pss_kb, sum(shares))
        self.peak_processes = max(self.peak_processes, sum(s > 0 for s in sizes))
        self.root_cpu_s = max(self.root_cpu_s, process_cpu_s(self.pid))
        self.samples += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def descendants(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc/PID/task/TID/children (kernel ≥ 3.5), else a /proc walk."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = _children(parent)
        out += kids
        todo += kids
    return out


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            if tid == str(pid) and os.path.exists(f"/proc/{pid}"):
                return _children_by_walk(pid)
        except OSError:
            pass
    return kids


def _children_by_walk(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one live process so far (its children not counted); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def memory_kb(pid: int, pss: bool = True) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; PSS is 0 when not asked for or where smaps_rollup is unreadable,
    both 0 once the process is gone."""
    if pss:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                values = dict(line.split()[:2] for line in f if line.startswith(("Rss:", "Pss:")))
            return int(values["Rss:"]), int(values["Pss:"])
        except (OSError, KeyError, ValueError):
            pass
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB, 0  # resident pages
    except (OSError, IndexError, ValueError):
        return 0, 0  # gone, or a zombie


def run_scan(
    folder: Path,
    model: str,
    jobs: int,
    profile: bool = False,
    interval: float = RSS_INTERVAL,
    precision: str = "auto",
    cli: bool = False,
) -> dict:
    """`mer_tag.scan.scan` over `folder` in a fresh Python process, its tree's RSS sampled meanwhile; with
    `cli`, the `mer-tag scan` command itself (`run_cli_scan`)."""
    if cli:
        return run_cli_scan(folder, model, jobs, interval, precision)
    with tempfile.TemporaryDirectory(prefix="mer-tag-bench-") as tmp:
        spec = {
            "folder": str(folder),
            "out": str(Path(tmp) / "scan.csv"),
            "model": model,
            "jobs": jobs,
            "profile": profile,
            "precision": precision,
            "launched": time.time(),
        }
        code = (
            f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import throughput; "
            "throughput._scan_child(sys.argv[1])"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        memory = TreeMemory(child.pid, interval)
        memory.start()
        stdout, stderr = child.communicate()
        memory.stop()
        process_seconds = time.perf_counter() - start
    lines = [line for line in stdout.splitlines() if line.startswith(CHILD_MARK)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"scan subprocess failed (exit {child.returncode}):\n{stderr[-3000:]}")
    result = json.loads(lines[-1][len(CHILD_MARK) :])
    result["process_seconds"] = process_seconds
    result["memory"].update(
        peak_tree_rss_mb=memory.peak_total_kb / 1024,
        peak_main_rss_mb=memory.peak_main_kb / 1024,
        peak_tree_pss_mb=memory.peak_pss_kb / 1024 or None,
        peak_processes=memory.peak_processes,
        samples=memory.samples,
        interval_s=interval,
        pss_every=PSS_EVERY,
        sampler_cpu_s=memory.cpu_s,
    )
    return result


def run_cli_scan(folder: Path, model: str, jobs: int, interval: float = RSS_INTERVAL, precision: str = "auto") -> dict:
    """`mer-tag scan FOLDER -o TMP.csv --force -q` as a person runs it, timed from launch to exit: interpreter,
    command line and every start-up cost included. It runs through a script that does what pip's `mer-tag`
    console script does (CONSOLE_SCRIPT: the command line imported at its top level, then its entry point),
    so that whichever mer_tag is first on PYTHONPATH runs as its own console script would (benchmarks/ab.py).
    CPU: the command and everything it started (RUSAGE_CHILDREN); the main process's share is sampled from
    /proc with the memory (so ±`interval`)."""
    import csv
    import resource

    with tempfile.TemporaryDirectory(prefix="mer-tag-bench-") as tmp:
        script = Path(tmp) / "mer-tag"
        script.write_text(CONSOLE_SCRIPT, encoding="utf-8")
        command = [sys.executable, str(script)]
        out = Path(tmp) / "scan.csv"
        argv = [*command, "scan", str(folder), "-o", str(out), "--force", "-q", "--jobs", str(jobs)]
        argv += ["--model", model, "--precision", precision]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        memory = TreeMemory(child.pid, interval)
        memory.start()
        _, stderr = child.communicate()
        memory.stop()
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode not in (0, 1):  # 1: some track failed, which the row counts say
            raise RuntimeError(f"mer-tag scan failed (exit {child.returncode}):\n{stderr[-3000:]}")
        with out.open(encoding="utf-8", newline="") as f:
            statuses = [row["status"] for row in csv.DictReader(f)]
    total = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "seconds": seconds,
        "process_seconds": seconds,
        "command": shlex.join(["mer-tag", *argv[len(command) :]]),
        "ok": statuses.count("ok"),
        "failed": len(statuses) - statuses.count("ok"),
        "failures": [],
        "torch_threads": model_threads(jobs),
        "precision": _resolved(precision),
        "cpu": {"main_s": memory.root_cpu_s, "workers_s": max(0.0, total - memory.root_cpu_s)},
        "memory": {
            "max_rss_main_mb": memory.peak_main_kb / 1024,
            "max_rss_worker_mb": None,  # not told apart from the floor's children here
            "peak_tree_rss_mb": memory.peak_total_kb / 1024,
            "peak_main_rss_mb": memory.peak_main_kb / 1024,
            "peak_tree_pss_mb": memory.peak_pss_kb / 1024 or None,
            "peak_processes": memory.peak_processes,
            "samples": memory.samples,
            "interval_s": interval,
            "pss_every": PSS_EVERY,
            "sampler_cpu_s": memory.cpu_s,
        },
    }


# What pip writes as the `mer-tag` console script, whichever entry point (`run`, or `main` before #27) the
# mer_tag on the path has: a file, so spawned processes see a main script as they do under the real one.
CONSOLE_SCRIPT = """import re
import sys
import mer_tag.cli as cli
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(getattr(cli, "run", cli.main)())
"""


def _resolved(precision: str) -> str:
    from mer_tag.engines.predictor import resolve_precision

    return resolve_precision(precision)


def model_threads(jobs: int) -> int:
    from mer_tag.engines.local import model_threads

    return model_threads(jobs)


def _scan_child(spec_json: str) -> None:
    """In the scan subprocess: run the scan, print one marked JSON line with its own measurements."""
    import resource

    from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory

    let_idle_threads_sleep()  # the process set up as `mer-tag scan` sets up its own, before torch loads
    reuse_freed_memory()
    spec = json.loads(spec_json)
    _EVENTS["interpreter"] = time.time()  # Python up, this module imported
    timings = _install_profile() if spec["profile"] else None
    from mer_tag.scan import scan

    rows = []

    def on_row(row):  # when a progress bar would advance: the first row is the first thing a user sees done
        rows.append(time.time())

    start = time.perf_counter()
    _EVENTS["scan_called"] = time.time()
    summary = scan(
        [spec["folder"]],
        out=spec["out"],
        model=spec["model"],
        jobs=spec["jobs"],
        force=True,
        progress=False,
        precision=spec["precision"],
        on_row=on_row,
    )
    seconds = time.perf_counter() - start
    if rows:
        _EVENTS.update(first_row=rows[0], last_row=rows[-1])

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "seconds": seconds,
        "ok": summary.ok,
        "failed": summary.failed,
        "failures": summary.failures[:5],
        "torch_threads": model_threads(spec["jobs"]),
        "precision": _resolved(spec["precision"]),
        "cpu": {"main_s": me.ru_utime + me.ru_stime, "workers_s": kids.ru_utime + kids.ru_stime},
        "memory": {"max_rss_main_mb": me.ru_maxrss / 1024, "max_rss_worker_mb": kids.ru_maxrss / 1024},
        # seconds from the launch of the scan's process (wall clock): what a user waits for
        "timeline": {k: round(v - spec["launched"], 3) for k, v in sorted(_EVENTS.items(), key=lambda kv: kv[1])},
    }
    if timings is not None:
        result["profile"] = _profile_summary(timings, seconds, spec["jobs"])
    print(CHILD_MARK + json.dumps(result), flush=True)


# --- --profile: wrappers timing the engine's stages (perf_counter only: the overhead is microseconds)

_TIMES: dict[str, float] = defaultdict(float)  # the scan's main process
_EVENTS: dict[str, float] = {}  # the scan's main process: name -> wall-clock time (time.time()) it happened
_WORKER_TIMES: dict[str, float] = defaultdict(float)  # one track's, in a decode worker
_WORKER_PATCHED = False  # set on a worker's first track
_ORIGINAL_PREPARE = None


def _timed(owner, name: str, key: str, times: dict, events: dict | None = None) -> None:
    """Add the time spent in `owner.name` to `times[key]`; with `events`, also note when its first call
    ended (`events[key]`, wall clock)."""
    original = getattr(owner, name, None)
    if original is None:  # the engine changed shape: that stage reads 0 rather than the run failing
        return

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[key] += time.perf_counter() - start
            if events is not None:
                events.setdefault(key, time.time())

    setattr(owner, name, timed)


def _install_profile() -> dict:
    """In the scan's main process: time the engine's methods, and send decode work to `_timed_prepare`."""
    from mer_tag import bundle, features, models, prepare, sinks, workers
    from mer_tag.engines import predictor

    _timed(workers, "start_pool", "startup_pool", _TIMES, _EVENTS)
    _timed(bundle, "load", "startup_load_model", _TIMES, _EVENTS)  # torch is imported just before it
    original_init = predictor.Predictor.__init__

    def engine_init(self, *args, **kwargs):  # models.lyrics imports torch: hook it only once torch is in
        from mer_tag.models import lyrics

        if not _TIMES["lyrics_hooked"]:
            _TIMES["lyrics_hooked"] = 1
            _timed(lyrics.LyricsClassifier, "attach_encoder", "startup_lyrics_encoder", _TIMES, _EVENTS)
            _timed(lyrics, "load_tokenizer", "startup_tokenizer", _TIMES, _EVENTS)
        return original_init(self, *args, **kwargs)

    predictor.Predictor.__init__ = engine_init
    _timed(predictor.Predictor, "__init__", "startup_engine", _TIMES, _EVENTS)
    _timed(models, "load_frontend", "startup_frontend", _TIMES, _EVENTS)  # inside the engine's start
    _timed(features, "lyrics_windows", "lyrics_tokenize", _TIMES)  # inside lyrics_model
    for method, key in (
        ("rows", "rows"),
        ("audio_probs", "audio_model"),
        ("lyrics_probs", "lyrics_model"),
        ("midi_probs", "midi_model"),
        ("fuse", "fusion"),
    ):
        _timed(predictor.Predictor, method, key, _TIMES)
    _timed(sinks.RowWriter, "write", "write", _TIMES)
    original_rows = predictor.Predictor.rows

    def rows(self, items):  # collect what the workers measured, then run the models
        if self.frontend is not None and not _TIMES["frontend_wrapped"]:  # the frozen front-end, inside audio
            _TIMES["frontend_wrapped"] = 1
            _timed(type(self.frontend), "forward", "audio_frontend", _TIMES)
        for item in items:
            for key, value in getattr(item, "_bench", {}).items():
                _TIMES["worker_" + key] += value
            _TIMES["tracks"] += 1
            _TIMES["chunks"] += 0 if item.audio is None else len(item.audio)
        _TIMES["batches"] += 1
        return original_rows(self, items)

    predictor.Predictor.rows = rows
    global _ORIGINAL_PREPARE
    _ORIGINAL_PREPARE = prepare.prepare  # for jobs=0, where `_timed_prepare` runs in this process
    prepare.prepare = _timed_prepare  # pickled by name: the spawned workers import this module
    return _TIMES


def _timed_prepare(track, *args):
    """`prepare.prepare` in a decode worker, with the time of its stages attached to the result."""
    global _WORKER_PATCHED
    from mer_tag import features, prepare
    from mer_tag.sources import audio

    first = not _WORKER_PATCHED
    if first:
        _WORKER_PATCHED = True
        _timed(audio.AudioStream, "__next__", "decode", _WORKER_TIMES)
        _timed(getattr(audio, "_MonoResampler", None), "_resample", "resample", _WORKER_TIMES)  # inside decode
        _timed(features, "chunk_features", "features", _WORKER_TIMES)
        for name in ("read_tags", "read_lyrics", "read_midi"):
            _timed(prepare, name, name[len("read_") :], _WORKER_TIMES)
    _WORKER_TIMES.clear()
    start, cpu = time.perf_counter(), time.process_time()
    item = _ORIGINAL_PREPARE(track, *args) if _ORIGINAL_PREPARE else prepare.prepare(track, *args)
    _WORKER_TIMES["prepare"] = time.perf_counter() - start
    _WORKER_TIMES["cpu"] = time.process_time() - cpu
    if first:  # a worker's first track pays its imports (librosa, numba, torch...)
        _WORKER_TIMES["first_prepare"] = _WORKER_TIMES["prepare"]
    item._bench = dict(_WORKER_TIMES)
    return item


def _profile_summary(t: dict, seconds: float, jobs: int) -> dict:
    startup = t["startup_load_model"] + t["startup_engine"]
    rows = t["rows"]
    worker_other = (
        t["worker_prepare"]
        - t["worker_decode"]
        - t["worker_features"]
        - t["worker_tags"]
        - t["worker_lyrics"]
        - t["worker_midi"]
    )
    return {
        "main": {
            "startup_s": startup,  # model load + engine start (of which:)
            "startup_pool_s": t["startup_pool"],
            "startup_frontend_s": t["startup_frontend"],
            "startup_lyrics_encoder_s": t["startup_lyrics_encoder"],
            "startup_tokenizer_s": t["startup_tokenizer"],
            "audio_model_s": t["audio_model"],
            "audio_frontend_s": t["audio_frontend"],  # musicnn or its student, in audio_model
            "lyrics_model_s": t["lyrics_model"],
            "lyrics_tokenize_s": t["lyrics_tokenize"],  # in lyrics_model
            "midi_model_s": t["midi_model"],
            "fusion_s": t["fusion"],
            "rows_other_s": rows - t["audio_model"] - t["lyrics_model"] - t["midi_model"] - t["fusion"],
            "write_s": t["write"],
            "waiting_s": seconds - startup - rows - t["write"],  # walk, pool start, waiting on workers
        },
        "workers": {  # summed over tracks (they run `jobs` at a time)
            "prepare_s": t["worker_prepare"],
            "decode_s": t["worker_decode"],
            "resample_s": t["worker_resample"],  # in decode_s
            "features_s": t["worker_features"],
            "tags_s": t["worker_tags"],
            "lyrics_s": t["worker_lyrics"],
            "midi_s": t["worker_midi"],
            "other_s": worker_other,
            "cpu_s": t["worker_cpu"],
            "first_track_s": t["worker_first_prepare"],  # each worker's first track, imports included
            "busy_fraction": t["worker_prepare"] / (max(1, jobs) * seconds) if seconds else None,
        },
        "tracks": int(t["tracks"]),
        "chunks": int(t["chunks"]),
        "rows_calls": int(t["batches"]),
    }


# ------------------------------------------------------------------ the whole run


def model_info(model: str) -> dict:
    from mer_tag import bundle

    folder = bundle.resolve(model)
    card = json.loads((folder / bundle.CARD_FILE).read_text(encoding="utf-8"))
    audio = card["features"]["audio"]
    return {
        "model": model,
        "path": str(folder),
        "ref": f"{card['name']}@{card.get('version', '0')}",
        "frontend": audio.get("frontend", "logmel"),
        "sample_rate": int(audio.get("sample_rate", FLOOR_RATE)),
        "branches": sorted(card.get("models", {})),
    }


def tiny_model(cache: Path = CACHE) -> str:
    """The tests' tiny random-weight bundle (whole pipeline, no trained weights): for quick checks only."""
    folder = Path(cache) / "tiny-model"
    if not (folder / "card.json").exists():
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_model import make_tiny_bundle

        make_tiny_bundle(folder)
    return str(folder)


def run_benchmark(
    folder: Path,
    jobs: int = 2,
    model: str = "default",
    profile: bool = False,
    ffmpeg: str | None = "ffmpeg",
    generated: dict | None = None,
    command: str | None = None,
    decode: bool = True,
    precision: str = "auto",
    cli: bool = False,
) -> dict:
    """Floor, decode-only and full scan on the audio files under `folder`; every number, as a dict. `cli`: the
    scan is the `mer-tag scan` command, timed from its launch (`run_cli_scan`)."""
    tracks = tracks_in(folder)
    files = [t.path for t in tracks]
    if not files:
        raise SystemExit(f"no audio files under {folder}")
    info = model_info(model)
    load = os.getloadavg()[0]
    size = read_all(files + [p for t in tracks for p in (t.lyrics_path, t.midi_path) if p is not None])
    busy = machine_busy_seconds()
    floor = ffmpeg_floor(files, jobs, ffmpeg)
    busy_floor = machine_busy_seconds()
    decode = decode_only(files, info["sample_rate"], jobs) if decode else None
    busy_decode = machine_busy_seconds()
    scan = run_scan(folder, info["path"], jobs, profile, precision=precision, cli=cli)
    busy_scan = machine_busy_seconds()
    # the machine's CPU seconds during each stage; for the scan, what other processes took meanwhile
    for stage, before, after in (
        (floor, busy, busy_floor),
        (decode, busy_floor, busy_decode),
        (scan, busy_decode, busy_scan),
    ):
        if stage and before is not None and after is not None:
            stage["machine_cpu_s"] = after - before
    if "machine_cpu_s" in scan:
        scan["cpu"]["others_s"] = max(0.0, scan["machine_cpu_s"] - scan["cpu"]["main_s"] - scan["cpu"]["workers_s"])
    n, audio_s = len(files), decode["audio_seconds"] if decode else _header_seconds(files)
    for stage in (floor, decode, scan):
        if stage:
            stage["tracks_per_s"] = n / stage["seconds"]
            stage["x_realtime"] = audio_s / stage["seconds"]
    scan["cpu"]["utilisation"] = (scan["cpu"]["main_s"] + scan["cpu"]["workers_s"]) / (
        scan["process_seconds"] * _cores()
    )
    ratio = scan["seconds"] / floor["seconds"] if floor else None
    peak = scan["memory"]["peak_tree_rss_mb"]
    return {
        "command": command or shlex.join([sys.executable, *sys.argv]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(load),
        "library": {
            "folder": str(folder),
            "tracks": n,
            "audio_seconds": audio_s,
            "bytes": size,
            "lyrics_sidecars": sum(t.lyrics_path is not None for t in tracks),
            "lrc_sidecars": sum(t.lyrics_path is not None and t.lyrics_path.suffix == ".lrc" for t in tracks),
            "midi_sidecars": sum(t.midi_path is not None for t in tracks),
            "distinct_files": len({os.stat(f).st_ino for f in files}),
            "formats": sorted({f.suffix.lower().lstrip(".") for f in files}),
            "generated": generated,
        },
        "jobs": jobs,
        "model": info,
        "floor": floor,
        "decode": decode,
        "scan": scan,
        "ratios": {
            "scan_over_floor": ratio,
            "decode_over_floor": decode["seconds"] / floor["seconds"] if floor and decode else None,
            "scan_over_decode": scan["seconds"] / decode["seconds"] if decode else None,
            # CPU seconds, less sensitive to other load than wall time (spinning threads still count)
            "scan_cpu_over_floor_cpu": (scan["cpu"]["main_s"] + scan["cpu"]["workers_s"]) / floor["cpu_seconds"]
            if floor and floor["cpu_seconds"]
            else None,
        },
        "targets": {
            "scan_over_floor_max": TARGET_RATIO,
            "peak_rss_mb_max": TARGET_RSS_MB,
            "ratio_met": None if ratio is None else ratio <= TARGET_RATIO,
            "rss_met": peak <= TARGET_RSS_MB,
        },
    }


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (all cores), from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _header_seconds(files: list[Path]) -> float:
    """Total duration from the containers' headers (when the decode pass, which counts samples, is skipped)."""
    import av

    total = 0.0
    for path in files:
        with av.open(str(path), metadata_errors="ignore") as container:
            total += (container.duration or 0) / av.time_base
    return total


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info(load: float) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpu, mem = platform.processor() or None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    import av

    return {
        "cores": _cores(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": None if mem is None else round(mem, 1),
        "load_1min_at_start": round(load, 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(THREAD_ENV)},
        "versions": {
            "mer-tag": ver("mer-tag"),
            "torch": ver("torch"),
            "av": ver("av"),
            "pyav_ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))) or None,
            "numpy": ver("numpy"),
            "librosa": ver("librosa"),
            "polars": ver("polars"),
        },
    }


def format_table(r: dict) -> str:
    """A plain table (Markdown, so docs/performance.md can quote it as is)."""
    lib, n = r["library"], r["library"]["tracks"]
    floor_s = r["floor"]["seconds"] if r["floor"] else None
    lines = [
        f"{n} tracks, {lib['audio_seconds'] / 60:.1f} min of audio ({', '.join(lib['formats'])}, "
        f"{lib['bytes'] / 1e6:.0f} MB, {lib['lyrics_sidecars']} lyrics and {lib.get('midi_sidecars', 0)} MIDI "
        f"sidecars); jobs={r['jobs']}; "
        f"model {r['model']['ref']} ({r['model']['frontend']}, {r['model']['sample_rate']} Hz); "
        f"{r['machine']['cores']} cores, {r['machine']['cpu_model']}",
        "",
        "| stage | wall s | CPU s | tracks/s | × realtime | × floor (wall) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    stages = [
        (f"ffmpeg floor ({FLOOR_RATE} Hz mono s16)", r["floor"]),
        (f"our decode only (stream_audio, {r['model']['sample_rate']} Hz)", r["decode"]),
        ("full scan", r["scan"]),
    ]
    for name, stage in stages:
        if stage is None:
            lines.append(f"| {name} | (skipped) | | | | |")
            continue
        vs = f"{stage['seconds'] / floor_s:.2f}" if floor_s else "–"
        cpu_s = stage["cpu_seconds"] if "cpu_seconds" in stage else stage["cpu"]["main_s"] + stage["cpu"]["workers_s"]
        lines.append(
            f"| {name} | {stage['seconds']:.2f} | {cpu_s:.1f} | {stage['tracks_per_s']:.2f} | "
            f"{stage['x_realtime']:.0f} | {vs} |"
        )
    scan, cores = r["scan"], r["machine"]["cores"]
    mem, cpu = scan["memory"], scan["cpu"]
    lines += [
        "",
        f"scan: {scan['ok']} ok, {scan['failed']} failed; process {scan['process_seconds']:.2f} s "
        f"with interpreter start; CPU main {cpu['main_s']:.1f} s + workers {cpu['workers_s']:.1f} s "
        f"({cpu['utilisation']:.0%} of {cores} cores); torch threads {scan['torch_threads']}, "
        f"precision {scan.get('precision', 'fp32')}",
        f"peak RSS: process tree {mem['peak_tree_rss_mb']:.0f} MB (sum, {mem['peak_processes']} processes; "
        f"PSS, sampled once a second, {mem['peak_tree_pss_mb'] or 0:.0f} MB), "
        f"main {mem['peak_main_rss_mb']:.0f} MB (kernel max {mem['max_rss_main_mb']:.0f} MB), "
        f"largest worker {mem['max_rss_worker_mb'] or 0:.0f} MB; "
        f"sampling them cost {mem.get('sampler_cpu_s', 0):.2f} CPU-s",
    ]
    if scan.get("command"):
        lines.append(f"scan command (timed from launch to exit): {scan['command']}")
    timeline = scan.get("timeline")
    if timeline:
        lines.append(
            "timeline (s from the scan process's launch): " + ", ".join(f"{k} {v:.2f}" for k, v in timeline.items())
        )
    t = r["targets"]
    ratio = r["ratios"]["scan_over_floor"]
    lines.append(
        f"targets: scan/floor {'–' if ratio is None else f'{ratio:.2f}'} ≤ {t['scan_over_floor_max']} "
        f"{'–' if t['ratio_met'] is None else ('met' if t['ratio_met'] else 'NOT met')}; "
        f"peak RSS ≤ {t['peak_rss_mb_max']} MB {'met' if t['rss_met'] else 'NOT met'}"
    )
    if r["machine"]["load_1min_at_start"] > 0.5 * r["machine"]["cores"]:
        lines.append(f"WARNING: load average {r['machine']['load_1min_at_start']} at start: the machine was busy")
    others = cpu.get("others_s")
    if others is not None and others > 0.1 * scan["process_seconds"] * cores:
        lines.append(
            f"WARNING: other processes took {others:.0f} CPU s during the scan "
            f"({others / (scan['process_seconds'] * cores):.0%} of the machine): numbers are inflated"
        )
    p = r["scan"].get("profile")
    if p:
        m, w = p["main"], p["workers"]
        lines += [
            "",
            f"profile (main process, wall s; {p['chunks']} chunks in {p['rows_calls']} engine calls):",
            "  " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in m.items()),
            f"profile (decode workers, s summed over {p['tracks']} tracks; busy {w['busy_fraction']:.0%}):",
            "  " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in w.items() if k.endswith("_s")),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("folder", nargs="?", type=Path, help="A library to measure (default: generate one).")
    parser.add_argument("--tracks", type=int, default=20, help="Generated tracks (default 20).")
    parser.add_argument("--seconds", type=float, default=240.0, help="Length of each generated track (default 240).")
    parser.add_argument(
        "--format",
        default="mp3",
        choices=sorted([*FORMATS, "mix"]),
        help="Format of the library (default mp3: 192 kbit/s CBR); 'mp3-vbr': LAME -V 2 MP3s, 'mix': MP3, FLAC, "
        "AAC, Vorbis, Opus and WAV in turn (both --real only).",
    )
    parser.add_argument(
        "--real",
        nargs="?",
        type=Path,
        const=REAL_DATASET,
        default=None,
        metavar="DATASET",
        help="A library of real songs made from the dataset's clips, lyrics and MIDI "
        f"(default {os.path.relpath(REAL_DATASET, ROOT)}) instead of generated ones.",
    )
    parser.add_argument(
        "--unique",
        type=int,
        default=None,
        help="Synthesise only this many tracks and hard-link the rest (default: all unique).",
    )
    parser.add_argument("--jobs", type=int, default=2, help="Parallel jobs for all three stages (default 2).")
    parser.add_argument(
        "--model", default="default", help="'default', 'tiny' (random weights, for quick checks) or a model folder."
    )
    parser.add_argument("--json", type=Path, default=CACHE / "throughput.json", help="Where to write the results.")
    parser.add_argument("--profile", action="store_true", help="Also time the scan's stages.")
    parser.add_argument("--no-ffmpeg", action="store_true", help="Skip the floor.")
    parser.add_argument("--no-decode", action="store_true", help="Skip our decode-only pass (e.g. a memory-only run).")
    parser.add_argument(
        "--cli",
        action="store_true",
        help="Time the `mer-tag scan` command from launch to exit (interpreter, command line, every start-up "
        "cost), as a person runs it, instead of the scan() call in a prepared process; no --profile.",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="The scan's --precision (default auto: bf16 where the CPU has it natively).",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="Where generated libraries are kept.")
    args = parser.parse_args(argv)
    if args.cli and args.profile:
        parser.error("--profile times the scan() call's stages: not with --cli")
    command = shlex.join(
        [
            "python",
            os.path.relpath(__file__, ROOT) if __file__.startswith(str(ROOT)) else __file__,
            *(sys.argv[1:] if argv is None else argv),
        ]
    )
    generated = None
    folder = args.folder
    if folder is None and args.real is not None:
        started = time.perf_counter()
        folder = real_library(args.real, args.tracks, args.format, args.cache)
        generated = {
            "real": str(args.real),
            "tracks": args.tracks,
            "format": args.format,
            "songs": json.loads((folder / ".complete").read_text())["songs"],
            "generate_s": round(time.perf_counter() - started, 2),
        }
    elif folder is None:
        if args.format in ("mix", *EXTENSIONS):
            parser.error(f"--format {args.format} needs --real")
        started = time.perf_counter()
        folder = generate_library(args.tracks, args.seconds, args.format, args.jobs, args.unique, args.cache)
        generated = {
            "tracks": args.tracks,
            "seconds": args.seconds,
            "format": args.format,
            "unique": min(args.tracks, args.unique or args.tracks),
            "generate_s": round(time.perf_counter() - started, 2),
        }
    model = tiny_model(args.cache) if args.model == "tiny" else args.model
    result = run_benchmark(
        folder,
        args.jobs,
        model,
        args.profile,
        None if args.no_ffmpeg else "ffmpeg",
        generated,
        command,
        decode=not args.no_decode,
        precision=args.precision,
        cli=args.cli,
    )
    print(format_table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {args.json}")
    return result


if __name__ == "__main__":
    main()
