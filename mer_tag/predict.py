"""The engine: decode workers → batches across tracks → branches → fusion → one row per track.

Worker processes do everything that needs no model (decode, resample, chunk, spectrogram, lyrics and
MIDI reading); this process holds the models once and runs them on whatever tracks are ready, so
chunks from many tracks share a forward pass. At most `IN_FLIGHT_PER_JOB * jobs + 2` tracks are in
flight: memory stays flat however large the library.
"""

from __future__ import annotations

import itertools
import json
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig
from mer_tag.library import Track

AUDIO_BATCH = 16  # chunks per audio forward pass
# Tracks submitted and not yet scored, per decode worker (+2). The queue is topped up before each model
# call, so workers keep decoding while the models run; 100 four-minute tracks took 21.9-22.9 s with 8,
# 23.2-23.9 s with 2, at the same peak RSS: a finished track waiting to be scored holds only its features
# (about 1 MB for 4 minutes), so memory stays flat.
IN_FLIGHT_PER_JOB = 8
PRECISIONS = ("auto", "fp32", "bf16")  # of the frozen encoders (MiniLM, the musicnn student); heads stay fp32


@dataclass
class Prepared:
    """What a worker hands back for one track: features and facts, no model outputs."""

    track: Track
    size: int = 0
    mtime: float = 0.0
    tags: dict = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    duration_s: float | None = None
    chunk_starts: list[float] = field(default_factory=list)  # seconds
    audio: np.ndarray | None = None  # [n_chunks, ...] float16 features
    lyrics: str | None = None
    lyrics_source: str = "none"
    midi: tuple | None = None  # (pitch, cont, length)


def prepare(track: Track, audio_config: AudioConfig, midi_config: MidiConfig) -> Prepared:
    """Decode and featurise one track. Never raises: problems become `error` or `notes`."""
    item = Prepared(track)
    try:
        stat = track.path.stat()
        item.size, item.mtime = stat.st_size, stat.st_mtime
        _read_tags(item)
        _read_audio(item, audio_config)
        if item.error is None:
            _read_lyrics(item)
            _read_midi(item, midi_config)
    except Exception as exc:  # one bad file must never stop a library scan
        item.error = item.error or f"internal error: {type(exc).__name__}: {_one_line(str(exc))}"
        if os.environ.get("MER_TAG_DEBUG"):
            traceback.print_exc()
    return item


def _read_tags(item: Prepared) -> None:
    from mer_tag.sources.metadata import read_tags

    item.tags = read_tags(item.track.path)


def _read_audio(item: Prepared, config: AudioConfig) -> None:
    from mer_tag.features import chunk_features, is_silent, stream_chunks
    from mer_tag.sources.audio import AudioError, stream_audio

    if item.size == 0:
        item.error = "empty file (0 bytes)"
        return
    starts, chunks, n_samples, loud = [], [], 0, False

    def counted(blocks):
        nonlocal n_samples, loud
        for block in blocks:
            n_samples += block.size
            loud = loud or not is_silent(block)
            yield block

    try:
        with stream_audio(item.track.path, sr=config.sample_rate) as stream:
            for start, chunk in stream_chunks(counted(stream), config):
                starts.append(start / config.sample_rate)
                chunks.append(chunk_features(chunk[None], config)[0].astype(np.float16))
    except AudioError as exc:
        item.error = _one_line(str(exc))
        return
    item.duration_s = n_samples / config.sample_rate
    if stream.problem and stream.problem.startswith("truncated"):
        item.error = stream.problem  # a cut-off file: its mood would be judged on a fragment
    elif stream.problem:
        item.notes.append(stream.problem)  # a few bad packets skipped, as players do
    if item.error:
        return
    if n_samples < config.min_seconds * config.sample_rate:
        item.error = f"too short: {item.duration_s:.2f} s of audio (at least {config.min_seconds:g} s needed)"
    elif not loud:
        item.error = "silent: no audible signal to judge"
    else:
        item.chunk_starts, item.audio = starts, np.stack(chunks)


def _read_lyrics(item: Prepared) -> None:
    from mer_tag.sources.lyrics import LyricsError, clean_lyrics, embedded_lyrics, read_lyrics_file

    if item.track.lyrics_path is not None:
        try:
            item.lyrics, item.lyrics_source = clean_lyrics(read_lyrics_file(item.track.lyrics_path)), "sidecar"
            return
        except (LyricsError, OSError) as exc:
            item.notes.append(f"lyrics file {item.track.lyrics_path.name} skipped: {_one_line(str(exc))}")
    text = embedded_lyrics(item.track.path)
    if text and clean_lyrics(text):
        item.lyrics, item.lyrics_source = clean_lyrics(text), "embedded"


def _read_midi(item: Prepared, config: MidiConfig) -> None:
    from mer_tag.features import midi_sequence
    from mer_tag.sources.midi import MidiError, read_midi_notes

    if item.track.midi_path is None:
        return
    try:
        item.midi = midi_sequence(read_midi_notes(item.track.midi_path), config)
    except (MidiError, OSError) as exc:
        item.notes.append(f"MIDI file {item.track.midi_path.name} skipped: {_one_line(str(exc))}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "unknown error"


# ------------------------------------------------------------------ models


class Engine:
    """The loaded bundle and the frozen front-end it needs, run on batches of prepared tracks."""

    def __init__(self, bundle, timeline: bool = False, precision: str = "auto"):
        import torch

        self.bundle = bundle
        self.timeline = timeline
        self.precision = resolve_precision(precision)
        self.names = bundle.labels.names
        from mer_tag.models import load_frontend

        self.frontend, self.embed = load_frontend(bundle.audio_config.frontend)  # (None, None): a trained CNN
        lyrics_model = bundle.models.get("lyrics")
        self.tokenizer = None
        if lyrics_model is not None:
            from mer_tag.models.lyrics import load_tokenizer

            lyrics_model.attach_encoder()
            lyrics_model.eval()
            self.tokenizer = load_tokenizer()
        self.torch = torch

    def audio_probs(self, feats: np.ndarray) -> np.ndarray:
        """[n_chunks, ...] features → [n_chunks, K] chunk probabilities."""
        torch = self.torch
        model = self.bundle.models["audio"]
        out = []
        with torch.inference_mode():
            for start in range(0, len(feats), AUDIO_BATCH):
                x = torch.from_numpy(feats[start : start + AUDIO_BATCH].astype(np.float32))
                if self.frontend is not None:
                    with self._encoder_precision():
                        x = self.embed(self.frontend, x).float()
                out.append(torch.softmax(model(x), -1).numpy())
        return np.concatenate(out)

    def lyrics_probs(self, texts: list[str]) -> np.ndarray:
        """[songs, K] probabilities of several songs' lyrics in one forward pass: every token window of
        every song batched, padding cut to the longest window (masked tokens change nothing)."""
        from mer_tag.features import lyrics_windows
        from mer_tag.models.lyrics import average_by_song

        torch = self.torch
        windows = [lyrics_windows(text, self.tokenizer, self.bundle.lyrics_config) for text in texts]
        ids = np.concatenate([w["input_ids"] for w in windows])
        mask = np.concatenate([w["attention_mask"] for w in windows])
        width = int(mask.sum(1).max())
        song = np.repeat(np.arange(len(texts)), [len(w["input_ids"]) for w in windows])
        model = self.bundle.models["lyrics"]
        with torch.inference_mode():
            with self._encoder_precision():
                embeddings = model.encode(torch.from_numpy(ids[:, :width]), torch.from_numpy(mask[:, :width])).float()
            logits = model(average_by_song(embeddings, torch.from_numpy(song)))
            return torch.softmax(logits, -1).numpy()

    def _encoder_precision(self):
        """bf16 autocast around the frozen encoders where the CPU does bf16 natively: 1.8 × faster on
        MiniLM, 1.9 × on the student (docs/performance.md). The trained heads and the fusion stay fp32."""
        return self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.precision == "bf16")

    def midi_probs(self, midi: tuple) -> np.ndarray:
        torch = self.torch
        pitch, cont, length = midi
        with torch.inference_mode():
            logits = self.bundle.models["midi"](torch.from_numpy(pitch)[None], torch.from_numpy(cont)[None],
                                                torch.tensor([int(length)]))
            return torch.softmax(logits, -1)[0].numpy()

    def fuse(self, branch_probs: dict[str, np.ndarray | None]) -> np.ndarray:
        torch = self.torch
        fusion = self.bundle.models["fusion"]
        k = len(self.names)
        log_probs = np.stack([np.log(np.clip(branch_probs.get(b), 1e-6, 1)) if branch_probs.get(b) is not None
                              else np.zeros(k) for b in fusion.branches]).astype(np.float32)
        present = torch.tensor([[branch_probs.get(b) is not None for b in fusion.branches]])
        with torch.inference_mode():
            return torch.softmax(fusion(torch.from_numpy(log_probs)[None], present), -1)[0].numpy()

    def rows(self, items: list[Prepared]) -> list[dict]:
        """One output row per prepared track; the audio chunks and the lyrics of all ok tracks are batched."""
        ok = [it for it in items if it.error is None]
        audio, lyrics = {}, {}
        if ok:
            all_chunk_probs = self.audio_probs(np.concatenate([it.audio for it in ok]))
            bounds = np.cumsum([0] + [len(it.audio) for it in ok])
            audio = {id(it): all_chunk_probs[bounds[i] : bounds[i + 1]] for i, it in enumerate(ok)}
        sung = [it for it in ok if it.lyrics] if "lyrics" in self.bundle.models else []
        if sung:
            lyrics = dict(zip(map(id, sung), self.lyrics_probs([it.lyrics for it in sung])))
        return [self._row(it, audio.get(id(it)), lyrics.get(id(it))) for it in items]

    def _row(self, item: Prepared, chunk_probs: np.ndarray | None, lyrics_probs: np.ndarray | None) -> dict:
        row = base_row(item, self.bundle.ref, len(self.names), self.timeline)
        if item.error is not None:
            return row
        probs = {"audio": chunk_probs.mean(0) if "audio" in self.bundle.models else None, "lyrics": lyrics_probs}
        if item.midi is not None and "midi" in self.bundle.models:
            probs["midi"] = self.midi_probs(item.midi)
        fused = self.fuse(probs)
        best = int(fused.argmax())
        row.update(cluster=best + 1, cluster_name=self.names[best], confidence=float(fused[best]))
        row.update({f"prob_cluster_{k + 1}": float(p) for k, p in enumerate(fused)})
        for branch in ("audio", "lyrics", "midi"):
            if probs.get(branch) is not None:
                row[f"{branch}_cluster"] = int(np.argmax(probs[branch])) + 1
        if self.timeline:
            row["timeline"] = json.dumps([
                {"start_s": round(s, 2), "end_s": round(min(s + self.bundle.audio_config.chunk_seconds, item.duration_s), 2),
                 "cluster": int(p.argmax()) + 1, "confidence": round(float(p.max()), 4)}
                for s, p in zip(item.chunk_starts, chunk_probs)
            ])
        return row


def check_precision(precision: str) -> str:
    """The name, or ValueError. Imports nothing: `scan` checks before torch may start (OMP_WAIT_POLICY)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str) -> str:
    """'auto' → 'bf16' on CPUs with native bf16 arithmetic (AVX512-BF16, AMX), else 'fp32'. Elsewhere bf16
    is emulated and slower than fp32, so 'auto' never picks it there. Imports torch for 'auto'."""
    if check_precision(precision) != "auto":
        return precision
    import torch

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "fp32"


def columns(n_classes: int, timeline: bool) -> list[str]:
    """Output columns, in order (docs/output.md)."""
    cols = ["path", "status", "error", "notes", "size", "mtime", "title", "artist", "album", "duration_s",
            "cluster", "cluster_name", "confidence", *[f"prob_cluster_{k + 1}" for k in range(n_classes)],
            "audio_cluster", "lyrics_cluster", "midi_cluster", "lyrics_source", "lyrics_path", "midi_path", "model"]
    return cols + ["timeline"] if timeline else cols


def base_row(item: Prepared, model_ref: str, n_classes: int, timeline: bool) -> dict:
    row = dict.fromkeys(columns(n_classes, timeline))
    row.update(
        path=str(item.track.path), status="error" if item.error else "ok", error=item.error,
        notes="; ".join(item.notes) or None, size=item.size, mtime=item.mtime,
        title=item.tags.get("title"), artist=item.tags.get("artist"), album=item.tags.get("album"),
        duration_s=None if item.duration_s is None else round(item.duration_s, 3),
        lyrics_source=item.lyrics_source if item.error is None else "none",
        lyrics_path=str(item.track.lyrics_path) if item.lyrics_source == "sidecar" else None,
        midi_path=str(item.track.midi_path) if item.midi is not None else None, model=model_ref,
    )
    return row


# ------------------------------------------------------------------ the loop


def let_idle_threads_sleep() -> None:
    """In a process about to run the models: idle OpenMP threads sleep instead of spinning, so they never
    steal the cores the decode workers share (84 s → 70 s on the 20-track benchmark). OpenMP reads it once,
    when torch starts, so call this before importing torch; a value the user set wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
KEEP_FREED_BYTES = 1 << 30  # 1 GiB: above any one buffer a scan allocates


def reuse_freed_memory() -> None:
    """glibc only: keep freed memory in the heap instead of handing each large buffer (MiniLM's attention
    maps, a decoded track) back to the kernel and faulting it in afresh on the next call. On the 100-track
    benchmark: 2.3 M → 0.16 M page faults, 5.1 → 1.1 s of system time, for about 70 MB more peak RSS.
    This process is set now; spawned workers read the environment when they start."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    for name, option in (("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD), ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD)):
        os.environ.setdefault(name, str(KEEP_FREED_BYTES))
        try:
            ctypes.CDLL("libc.so.6").mallopt(option, int(os.environ[name]))
        except (OSError, AttributeError, ValueError):  # musl, or a value the user set that is not a number
            return


def init_decode_worker() -> None:
    """One BLAS/OpenMP thread per decode worker: `jobs` workers already share the cores with the models.
    Then the decode stack is imported, so a pool started early (`start_decode_pool`) pays for it while the
    main process is still importing torch.

    Workers never import torch: features need numpy and scipy.fft only (the largest worker's peak RSS went
    from 472 to 424 MB on the 20-track benchmark).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import av  # noqa: F401
    import scipy.fft  # noqa: F401

    import mer_tag.features  # noqa: F401
    import mer_tag.sources.audio  # noqa: F401
    import mer_tag.sources.metadata  # noqa: F401


def start_decode_pool(jobs: int):
    """`jobs` spawned decode workers, started now: they import their stack while this process goes on
    (scan starts them before importing torch; the first tracks then find them ready)."""
    import multiprocessing

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_decode_worker)
    for _ in range(jobs):
        pool.submit(int)  # a no-op: the executor spawns a worker per task until it has `jobs`
    return pool


def model_threads(jobs: int) -> int:
    """Torch threads beside `jobs` decode workers. The models take about 0.14 CPU-s a 4-minute track and
    decoding 0.34, so one thread keeps up with two workers: on 2 cores, 100 four-minute tracks took
    21.7 s with one thread and 22.4 s with two (main-process CPU 9.9 against 11.5 s). Above two workers
    this keeps the same ratio (not measured: CI has 2 cores)."""
    return max(1, jobs // 2)


def predict_tracks(tracks, bundle, jobs: int = 2, timeline: bool = False, engine: Engine | None = None,
                   precision: str = "auto", pool=None):
    """Yield one row per track, in the order tracks finish. `jobs=0` featurises in this process.
    `pool`: decode workers already started (`start_decode_pool`); this function shuts it down."""
    args = (bundle.audio_config, bundle.midi_config)
    if jobs <= 0:
        engine = engine or Engine(bundle, timeline, precision)
        for track in tracks:
            yield from engine.rows([prepare(track, *args)])
        return
    tracks = iter(tracks)
    max_in_flight = IN_FLIGHT_PER_JOB * jobs + 2
    with pool or start_decode_pool(jobs) as pool:
        pending = set()

        def refill():
            for track in itertools.islice(tracks, max(0, max_in_flight - len(pending))):
                pending.add(pool.submit(prepare, track, *args))

        refill()
        while pending:
            engine = engine or Engine(bundle, timeline, precision)  # loaded while the first tracks already decode
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            refill()  # before the models run, so the workers never wait on them
            if not pending:
                engine.torch.set_num_threads(max(1, jobs))  # the last batch: the workers' cores are free
            yield from engine.rows([future.result() for future in done])
