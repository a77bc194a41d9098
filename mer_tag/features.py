"""Features, shared by `train` and `scan` so a model never sees features it was not trained on.

Audio: decoded mono signal → 30-second chunks → log-mel spectrograms (or musicnn's own mel patches).
Lyrics: text → token windows for the BERT-family encoder. MIDI: note list → fixed-length event sequence.
Every setting lives in a config dataclass that a model bundle stores, so loading a model restores them.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields

import numpy as np

SAMPLE_RATE = 22050  # Hz, the MIREX clips' rate
N_FFT = 1024  # samples, 46 ms window
HOP_LENGTH = 512  # samples, 23 ms between frames
N_MELS = 128
CHUNK_SECONDS = 30.0
CHUNK_SAMPLES = int(CHUNK_SECONDS * SAMPLE_RATE)  # 661500 samples in a 30-second chunk
MIN_SECONDS = 1.0  # shorter audio carries too little to judge a mood

LYRICS_MAX_TOKENS = 256  # tokens per encoder window, [CLS] and [SEP] included
MIDI_SEQ_LEN = 500  # note events per MIDI sequence
MIDI_PAD_PITCH = 128  # pitch index used for padding: outside 0..127 so it is never a real note

# musicnn's own input (models/musicnn.py was trained on exactly this): facts about its weights, not settings.
MUSICNN_SAMPLE_RATE = 16000  # Hz; audio must be resampled to this before musicnn_logmel()
MUSICNN_N_FFT = 512  # samples, 32 ms Hann window
MUSICNN_HOP_LENGTH = 256  # samples, 16 ms between frames
MUSICNN_N_MELS = 96  # librosa Slaney-style mel bands, 0 to 8 kHz
MUSICNN_PATCH_SECONDS = 3.0  # s of audio per patch
MUSICNN_PATCH_FRAMES = (
    187  # 3 s at 16 kHz / 256 hop: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
)


@dataclass(frozen=True)
class AudioConfig:
    """How audio becomes model input. `frontend` names what reads it: 'logmel' (a CNN trained with the head),
    'musicnn' (the pretrained musicnn, on its own mel patches) or 'musicnn_student' (musicnn's small
    distilled student, models/student.py, on this log-mel)."""

    frontend: str = "logmel"
    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    chunk_seconds: float = CHUNK_SECONDS
    chunk_hop_seconds: float = CHUNK_SECONDS  # scan: distance between chunk starts
    min_seconds: float = MIN_SECONDS
    tonal: bool = False  # also read dissonance, key and mode from each chunk's spectrum (mer_tag.tonal)
    dissonance: bool = True  # with tonal: the roughness too; the engines leave it out where no head reads it

    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.chunk_hop_seconds * self.sample_rate))

    @property
    def chunk_frames(self) -> int:
        return self.chunk_samples // self.hop_length + 1


@dataclass(frozen=True)
class LyricsConfig:
    max_tokens: int = LYRICS_MAX_TOKENS
    max_windows: int = 1  # >1: long lyrics are covered by several windows, pooled, not truncated


@dataclass(frozen=True)
class MidiConfig:
    seq_len: int = MIDI_SEQ_LEN
    inputs: str = "events"  # 'pitch' (the report's baseline) or 'events' (pitch, duration, velocity, IOI)


def config_to_json(config) -> dict:
    return asdict(config)


def config_from_json(cls, data: dict):
    """Rebuild a config, ignoring keys a newer version added: old bundles keep loading."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


# ---------------------------------------------------------------- audio


def chunk_starts(n_samples: int, config: AudioConfig) -> list[int]:
    """Start sample of every chunk of a signal: hop apart, the last partial chunk kept if long enough.

    A signal shorter than one chunk gives one chunk (padded later). After the last full chunk, one more
    (partial) chunk is added only if it would cover at least `min_seconds` of audio no chunk covers yet.
    """
    size, hop = config.chunk_samples, config.hop_samples
    if n_samples <= size:
        return [0]
    starts = list(range(0, n_samples - size + 1, hop))
    uncovered = n_samples - (starts[-1] + size)
    if uncovered >= config.min_seconds * config.sample_rate:
        starts.append(starts[-1] + hop)
    return starts


def cut_chunks(signal: np.ndarray, config: AudioConfig) -> np.ndarray:
    """[n_chunks, chunk_samples] float32, the last one zero-padded."""
    size = config.chunk_samples
    starts = chunk_starts(signal.size, config)
    out = np.zeros((len(starts), size), dtype=np.float32)
    for i, start in enumerate(starts):
        piece = signal[start : start + size]
        out[i, : piece.size] = piece
    return out


def logmel(chunk: np.ndarray, config: AudioConfig) -> np.ndarray:
    """[n_mels, chunk_frames] float32 log-mel (dB, floored at -100) of one chunk of `chunk_samples` samples.

    librosa's `melspectrogram` (centred frames, zero padding, periodic Hann window, power 2, Slaney mel
    bands) then `power_to_db(ref=1.0, top_db=None)`, written in NumPy: the same numbers within 1e-4 dB
    (9e-5 dB at most on tests/test_features.py's chunk, which holds 1e-3), and a decode worker never imports
    librosa, scipy.signal or numba for it.
    """
    return mel_db(power_spectrum(chunk, config), config)


def power_spectrum(chunk: np.ndarray, config: AudioConfig) -> np.ndarray:
    """[frames, 1 + n_fft // 2] power spectrum of one chunk (centred, zero-padded, periodic Hann frames):
    what the log-mel is made of, and what `tonal` reads the chords in."""
    y = np.ascontiguousarray(chunk, dtype=np.float32)
    n_fft, hop = config.n_fft, config.hop_length
    padded = np.pad(y, n_fft // 2)
    n_frames = 1 + (padded.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(padded, (n_frames, n_fft), (padded.strides[0] * hop, padded.strides[0]))
    spectrum = _rfft(frames * _hann(n_fft))
    return spectrum.real**2 + spectrum.imag**2


def mel_db(power: np.ndarray, config: AudioConfig) -> np.ndarray:
    """[n_mels, chunk_frames] log-mel of a `power_spectrum`."""
    mel = power @ mel_filterbank(config.sample_rate, config.n_fft, config.n_mels).T
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, -100.0).T.astype(np.float32)[:, : config.chunk_frames]


def _rfft(frames: np.ndarray) -> np.ndarray:
    """Row-wise real FFT in single precision. SciPy's pocketfft vectorises across rows: 1.0 ms against
    NumPy's 4.9 ms for a 30-s chunk at 16 kHz (938 frames of 1024), about half of the log-mel's cost."""
    return rfft_rows()(frames)


@functools.cache
def rfft_rows():
    """`scipy.fft.rfft(frames, axis=1)`, as a function of the frames. Where scipy.fft is not imported yet (a
    decode worker), its compiled pocketfft is loaded alone and called as scipy.fft.rfft calls it: importing
    scipy.fft costs 0.16 CPU-s, half of a worker's start (it brings scipy.special and the array-API layer), the
    extension alone 0.013, for the same numbers (tests/test_features.py). A scipy that moved or changed it
    gets scipy.fft itself."""
    import sys

    if "scipy.fft" not in sys.modules:
        try:
            pocketfft = _pocketfft_alone()
            return lambda frames: pocketfft.r2c(frames, (1,), True, 0, None, 1)  # forward, unscaled, 1 thread
        except Exception:  # not where scipy 1.x keeps it, or not the function it was
            pass
    import scipy.fft

    return lambda frames: scipy.fft.rfft(frames, axis=1)


def _pocketfft_alone():
    """scipy.fft's compiled pocketfft (`scipy/fft/_pocketfft/pypocketfft`), loaded without its package, once
    checked against NumPy's FFT."""
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    import scipy

    folder = Path(scipy.__file__).parent / "fft" / "_pocketfft"
    path = next(
        folder / f"pypocketfft{s}"
        for s in importlib.machinery.EXTENSION_SUFFIXES
        if (folder / f"pypocketfft{s}").exists()
    )
    spec = importlib.util.spec_from_file_location("pypocketfft", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    probe = np.arange(32, dtype=np.float32).reshape(2, 16) ** 0.5
    if not np.allclose(module.r2c(probe, (1,), True, 0, None, 1), np.fft.rfft(probe, axis=1), atol=1e-4):
        raise ValueError("pypocketfft.r2c is not scipy.fft.rfft's")
    return module


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy's get_window('hann', n), librosa's default)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def _hz_to_mel(hz):
    """Slaney's mel scale (librosa, htk=False): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(
        hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), hz / (200.0 / 3.0)
    )


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3.0))


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_mels, 1 + n_fft // 2] float32 triangular filters, 0 Hz to Nyquist, area-normalised ('slaney'),
    as librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels) makes them."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def chunk_features(chunks: np.ndarray, config: AudioConfig) -> np.ndarray:
    """Model input for a stack of chunks: [n, n_mels, frames] log-mel, or [n, patches, 187, 96] for musicnn.

    'logmel' and 'musicnn_student' share the log-mel: they differ in the model that reads it."""
    if config.frontend == "musicnn":
        return np.stack([musicnn_patches(musicnn_logmel(c)) for c in chunks])
    return np.stack([logmel(c, config) for c in chunks])


def musicnn_logmel(y16k: np.ndarray) -> np.ndarray:
    """[frames, 96] float32 log-compressed mel spectrogram of a mono 16 kHz signal, as musicnn makes it.

    frames = 1 + len(y16k) // 256. Steps (musicnn extractor.batch_data / musicnn-training):
    librosa power mel (n_fft 512, hop 256, 96 mels, Slaney norm, centred frames, reflect padding:
    librosa <= 0.9's default, which musicnn was trained with), rounded to float16 as musicnn stores it,
    then log10(10000 * mel + 1) computed in float32. (Under NumPy >= 2 musicnn's own code keeps the
    product in float16, which overflows to inf for loud bins; under the NumPy 1.x it was written for,
    value-based casting promoted it to float32, as here.)
    """
    import librosa

    y = np.ascontiguousarray(y16k, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"logmel expects a mono 1-D signal, got shape {y.shape}")
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=MUSICNN_SAMPLE_RATE,
        n_fft=MUSICNN_N_FFT,
        hop_length=MUSICNN_HOP_LENGTH,
        n_mels=MUSICNN_N_MELS,
        pad_mode="reflect",
    ).T
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)


def musicnn_patches(mel: np.ndarray, hop_frames: int = MUSICNN_PATCH_FRAMES, tail: str = "auto") -> np.ndarray:
    """[n, 187, 96] float32 patches of a [frames, 96] log-mel, starts `hop_frames` apart.

    Default: non-overlapping 3-s patches, as musicnn's extractor. Tail (frames after the last full
    patch): 'drop' discards it (musicnn's behaviour); 'end' adds one patch aligned to the last frame
    (overlapping the previous one) whenever any frames are left; 'auto' (default) does so only when
    at least half a patch is left, so a 30-s signal gives exactly 10 patches. Input shorter than one
    patch is repeat-padded to 187 frames (musicnn training's 'pad_short': 'repeat-pad'); an empty
    input gives [0, 187, 96].
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != MUSICNN_N_MELS:
        raise ValueError(f"patches expects [frames, {MUSICNN_N_MELS}], got {mel.shape}")
    if hop_frames < 1:
        raise ValueError("hop_frames must be >= 1")
    if tail not in ("auto", "drop", "end"):
        raise ValueError(f"tail must be 'auto', 'drop' or 'end', not {tail!r}")
    n = mel.shape[0]
    if n == 0:
        return np.zeros((0, MUSICNN_PATCH_FRAMES, MUSICNN_N_MELS), np.float32)
    if n < MUSICNN_PATCH_FRAMES:
        reps = -(-MUSICNN_PATCH_FRAMES // n)
        return np.tile(mel, (reps, 1))[None, :MUSICNN_PATCH_FRAMES].copy()
    starts = list(range(0, n - MUSICNN_PATCH_FRAMES + 1, hop_frames))
    left = n - (starts[-1] + MUSICNN_PATCH_FRAMES)  # frames not covered by any patch
    if left > 0 and (tail == "end" or (tail == "auto" and left >= MUSICNN_PATCH_FRAMES // 2)):
        starts.append(n - MUSICNN_PATCH_FRAMES)
    return np.stack([mel[s : s + MUSICNN_PATCH_FRAMES] for s in starts])


def is_silent(signal: np.ndarray) -> bool:
    """True for digital silence (or nearly): nothing there to hear a mood in."""
    return signal.size == 0 or float(np.max(np.abs(signal))) < 1e-4


# ---------------------------------------------------------------- lyrics


def lyrics_windows(text: str, tokenizer, config: LyricsConfig) -> dict[str, np.ndarray]:
    """Token windows for one text: input_ids and attention_mask, each [n_windows, max_tokens].

    Long lyrics are split into consecutive windows (up to `max_windows`) instead of being cut at the
    first 256 tokens; the model pools over windows.
    """
    body = config.max_tokens - 2  # room for [CLS] and [SEP]
    ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"] or [tokenizer.unk_token_id]
    pieces = [ids[i : i + body] for i in range(0, len(ids), body)][: config.max_windows]
    input_ids = np.full((len(pieces), config.max_tokens), tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(pieces), config.max_tokens), dtype=np.int64)
    for row, piece in enumerate(pieces):
        tokens = [tokenizer.cls_token_id, *piece, tokenizer.sep_token_id]
        input_ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


# ---------------------------------------------------------------- MIDI


def midi_sequence(notes: np.ndarray, config: MidiConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Fixed-length sequence from notes [N, 4] = (pitch, start_s, duration_s, velocity).

    Returns pitch indices [seq_len] (padded with MIDI_PAD_PITCH), continuous event features
    [seq_len, 3] = (log1p duration, velocity/127, log1p inter-onset interval), and the true length.
    Long pieces are truncated at `seq_len` events, as in the reference system.
    """
    notes = notes[: config.seq_len]
    n = len(notes)
    pitch = np.full(config.seq_len, MIDI_PAD_PITCH, dtype=np.int64)
    cont = np.zeros((config.seq_len, 3), dtype=np.float32)
    if n:
        pitch[:n] = np.clip(notes[:, 0], 0, 127).astype(np.int64)
        starts = notes[:, 1]
        ioi = np.diff(starts, prepend=starts[0])
        cont[:n, 0] = np.log1p(np.maximum(notes[:, 2], 0.0))
        cont[:n, 1] = notes[:, 3] / 127.0
        cont[:n, 2] = np.log1p(np.maximum(ioi, 0.0))
    return pitch, cont, n


def stream_chunks(blocks, config: AudioConfig):
    """Chunks of a signal that arrives in blocks, same as `cut_chunks` on the whole signal.

    Yields (start_sample, chunk) with chunk [chunk_samples] float32 (the last one zero-padded). Holds
    at most one chunk plus one block in memory, so a 2-hour mix costs no more than a 3-minute song.
    """
    size, hop = config.chunk_samples, config.hop_samples
    min_tail = config.min_seconds * config.sample_rate
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0] in the whole signal
    next_start = 0
    emitted = False
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
        while next_start + size <= buffer_start + buffer.size:
            offset = next_start - buffer_start
            yield next_start, buffer[offset : offset + size].copy()
            emitted = True
            next_start += hop
            drop = min(next_start - buffer_start, buffer.size)
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    total = buffer_start + buffer.size
    uncovered = total - (next_start - hop + size)  # audio after the end of the last full chunk
    if not emitted or uncovered >= min_tail:
        offset = max(0, next_start - buffer_start)
        chunk = np.zeros(size, dtype=np.float32)
        piece = buffer[offset : offset + size]
        chunk[: piece.size] = piece
        yield (next_start if emitted else 0), chunk
