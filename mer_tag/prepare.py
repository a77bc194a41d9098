"""Track → Prepared: decoded, checked and featurised, or a one-line error. The one path from a file to model
input: training's feature extraction (train/extract.py) and every engine (engines/) call these functions,
so a model never meets at inference a track prepared otherwise than the ones it learned from.

Everything here runs in a worker process that never imports torch (or librosa, for the log-mel front-ends):
decode (PyAV), checks (empty, truncated, too short, silent), chunks and their features, tags, lyrics (a
sidecar file, else the lyrics embedded in the tags) and MIDI. Problems are values: a reason that rejects
the track (`error`) or one that only drops a modality (`notes`); nothing here raises.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

import numpy as np

from mer_tag.features import AudioConfig, MidiConfig
from mer_tag.library import Track


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
    tonal: np.ndarray | None = None  # [22] tonal.FEATURE_NAMES of the whole track, with AudioConfig.tonal
    lyrics: str | None = None
    lyrics_source: str = "none"  # 'given', 'sidecar', 'embedded' or 'none'
    midi: tuple | None = None  # (pitch, cont, length)


@dataclass
class Audio:
    """A file's audio as model input: chunk features, or the one-line reason it has none."""

    features: np.ndarray | None = None  # [n_chunks, ...] float16
    tonal: np.ndarray | None = None  # [22] float32, with AudioConfig.tonal
    chunk_starts: list[float] = field(default_factory=list)  # seconds
    duration_s: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # damage that did not stop it (a few bad packets)


def prepare(track: Track, audio_config: AudioConfig, midi_config: MidiConfig) -> Prepared:
    """Everything a model needs about one track, read and featurised. Never raises."""
    item = Prepared(track)
    try:
        _stamp(item)
        item.tags = read_tags(track)
        audio = prepare_audio(track.path, audio_config)
        item.error, item.notes, item.duration_s = audio.error, list(audio.notes), audio.duration_s
        if item.error is None:
            item.audio, item.tonal, item.chunk_starts = audio.features, audio.tonal, audio.chunk_starts
            item.lyrics, item.lyrics_source, note = read_lyrics(track)
            item.midi, midi_note = read_midi(track, midi_config)
            item.notes += [n for n in (note, midi_note) if n]
    except Exception as exc:  # one bad file must never stop a library scan
        item.error = item.error or internal_error(exc)
    return item


def failed(track: Track, error: str) -> Prepared:
    """An error for `track` found outside `prepare` (its decoder killed the process): with the file's size and
    mtime, as `prepare` records them, so a resumed scan skips it while the file is unchanged."""
    item = Prepared(track, error=error)
    try:
        _stamp(item)
    except OSError:  # gone meanwhile: the next scan finds that out
        pass
    return item


def _stamp(item: Prepared) -> None:
    """The file's size and mtime, scan's identity of it (resume skips an unchanged one); raises OSError."""
    stat = item.track.path.stat()
    item.size, item.mtime = stat.st_size, stat.st_mtime


def read_tags(track: Track) -> dict:
    """Title, artist and album from the file's tags (empty when it has none, or none readable)."""
    from mer_tag.sources.metadata import read_tags as tags_of

    return tags_of(track.path)


def prepare_audio(path: str | os.PathLike, config: AudioConfig) -> Audio:
    """Decode (streamed: memory stays at a chunk and a block however long the file), check, and cut into
    chunks of features. Rejected: unreadable, empty, truncated (its mood would be judged on a fragment),
    shorter than `min_seconds`, silent. Never raises."""
    from mer_tag.features import is_silent, stream_chunks
    from mer_tag.sources.audio import AudioError, stream_audio

    starts, chunks, n_samples, loud = [], [], 0, False
    dissonance: list[np.ndarray] = []  # per chunk, with config.tonal
    chroma: list[np.ndarray] = []

    def counted(blocks):
        nonlocal n_samples, loud
        for block in blocks:
            n_samples += block.size
            loud = loud or not is_silent(block)
            yield block

    try:
        with stream_audio(path, sr=config.sample_rate) as stream:
            for start, chunk in stream_chunks(counted(stream), config):
                starts.append(start / config.sample_rate)
                chunks.append(_chunk_input(chunk, config, dissonance, chroma))
    except AudioError as exc:
        return Audio(error=one_line(str(exc)))
    except Exception as exc:
        return Audio(error=internal_error(exc))
    audio = Audio(duration_s=n_samples / config.sample_rate)
    if stream.problem and stream.problem.startswith("truncated"):
        audio.error = stream.problem
        return audio
    if stream.problem:
        audio.notes.append(stream.problem)  # a few bad packets skipped, as players do
    if n_samples < config.min_seconds * config.sample_rate:
        audio.error = f"too short: {audio.duration_s:.2f} s of audio (at least {config.min_seconds:g} s needed)"
    elif not loud:
        audio.error = "silent: no audible signal to judge"
    else:
        audio.features, audio.chunk_starts = np.stack(chunks), starts
        if config.tonal:
            from mer_tag.tonal import tonal_summary

            audio.tonal = tonal_summary(np.concatenate(dissonance) if dissonance else None, np.concatenate(chroma))
    return audio


def _chunk_input(chunk: np.ndarray, config: AudioConfig, dissonance: list, chroma: list) -> np.ndarray:
    """One chunk's model features (float16); with `config.tonal`, its frames' dissonance and chroma are
    appended to the lists from the same power spectrum the log-mel is made of (2 ms more per 30 s)."""
    from mer_tag.features import chunk_features, mel_db, power_spectrum

    if not config.tonal:
        return chunk_features(chunk[None], config)[0].astype(np.float16)
    from mer_tag.tonal import frame_features

    power = power_spectrum(chunk, config)
    frames_dissonance, frames_chroma = frame_features(
        power, config.sample_rate, config.n_fft, dissonance=config.dissonance
    )
    if frames_dissonance is not None:
        dissonance.append(frames_dissonance)
    chroma.append(frames_chroma)
    if config.frontend == "musicnn":  # musicnn makes its own mel patches
        return chunk_features(chunk[None], config)[0].astype(np.float16)
    return mel_db(power, config).astype(np.float16)


def read_lyrics(track: Track) -> tuple[str | None, str, str | None]:
    """(clean text or None, source: 'given' | 'sidecar' | 'embedded' | 'none', a note when a sidecar was unusable).

    Text handed over with the track (`Track.lyrics`, LRC timestamps dropped) wins; then the sidecar file;
    without one, or when it cannot be read, the lyrics in the audio file's tags."""
    from mer_tag.sources.lyrics import LyricsError, clean_lyrics, embedded_lyrics, plain_lyrics, read_lyrics_file

    if track.lyrics and (given := clean_lyrics(plain_lyrics(track.lyrics))):
        return given, "given", None
    note = None
    if track.lyrics_path is not None:
        try:
            return clean_lyrics(read_lyrics_file(track.lyrics_path)), "sidecar", None
        except (LyricsError, OSError) as exc:
            note = f"lyrics file {track.lyrics_path.name} skipped: {one_line(str(exc))}"
    text = clean_lyrics(embedded_lyrics(track.path) or "")
    return (text, "embedded", note) if text else (None, "none", note)


def read_midi(track: Track, config: MidiConfig) -> tuple[tuple | None, str | None]:
    """(the MIDI event sequence or None, a note when the MIDI file was unusable)."""
    from mer_tag.features import midi_sequence
    from mer_tag.sources.midi import MidiError, read_midi_notes

    if track.midi_path is None:
        return None, None
    try:
        return midi_sequence(read_midi_notes(track.midi_path), config), None
    except (MidiError, OSError) as exc:
        return None, f"MIDI file {track.midi_path.name} skipped: {one_line(str(exc))}"


def one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "unknown error"


def internal_error(exc: Exception) -> str:
    """A bug's one-line reason (MER_TAG_DEBUG=1 prints the traceback too)."""
    if os.environ.get("MER_TAG_DEBUG"):
        traceback.print_exc()
    return f"internal error: {type(exc).__name__}: {one_line(str(exc))}"


# ------------------------------------------------------------------ worker processes


def init_worker() -> None:
    """A preparing process (mer_tag.workers' pool, or a Ray task's): one BLAS/OpenMP thread (the workers
    already share the cores with each other and the models), freed memory kept for the next track, then the
    decode stack imported, so a pool started early (`workers.start_pool`) pays for it while its parent is
    still busy (importing torch).

    Workers never import torch: features need numpy and scipy's pocketfft only (the largest worker's peak RSS
    went from 472 to 424 MB on the 20-track benchmark), and not the rest of scipy.fft (`features.rfft_rows`).
    This tunes only the worker's own process.
    """
    from threadpoolctl import threadpool_limits

    from mer_tag._process import reuse_freed_memory

    threadpool_limits(1)
    reuse_freed_memory()
    import av  # noqa: F401

    import mer_tag.sources.audio  # noqa: F401
    import mer_tag.sources.metadata  # noqa: F401
    import mer_tag.tonal  # noqa: F401
    from mer_tag.features import rfft_rows

    rfft_rows()  # the log-mel's FFT: scipy's pocketfft alone, without importing scipy.fft
