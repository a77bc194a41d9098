"""Decode any audio file to mono float32 at the model's rate (the card's `sample_rate`: 22.05 kHz unless the
model says otherwise; the shipped model's student listens at 16 kHz), streamed in fixed-size blocks.

PyAV (which bundles its own FFmpeg) demuxes, decodes, downmixes and resamples, all in C; Python only
handles big chunks, so decoding costs about what `ffmpeg -ac 1 -ar 22050 -f f32le` does, and memory stays
at a block or two whatever the file's length. The downmix is FFmpeg's, as with `-ac 1`: stereo becomes
(L + R) / sqrt(2), which keeps the power of uncorrelated channels (librosa's mean is 3 dB quieter).

Damage is reported in two ways:
- a file that cannot be opened, or yields no audio at all, raises AudioError (one line, for a user);
- a file that decodes only in part (cut short, corrupt packets) still yields what decoded, and when the
  iteration ends the stream's `problem` holds a one-line reason, e.g. "truncated: decoded 91.2 s of
  180.0 s". `load_audio` turns that into a TruncatedAudioWarning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from mer_tag.errors import MerTagError

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 22050  # Hz; the MIREX clips' rate, the default when no rate is given
BLOCK_SECONDS = 30  # s; one MIREX clip
BLOCK_SAMPLES = BLOCK_SECONDS * SAMPLE_RATE  # samples per yielded block (2.6 MB of float32)
RESAMPLE_BATCH = 65536  # input samples per resampler call (1.5 s at 44.1 kHz): per-call cost vanishes
TRUNCATION_MARGIN_S = 1.0  # s; decoders drop encoder padding and headers round, so allow this much...
TRUNCATION_MARGIN = 0.05  # ...or this fraction: bitrate-estimated durations (VBR MP3 without Xing) drift

# Only what PyAV's FFmpeg decodes; matched case-insensitively on the last suffix.
AUDIO_EXTENSIONS = frozenset(
    {
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".alac",
        ".wav",
        ".aif",
        ".aiff",
        ".aifc",
        ".wma",
        ".ape",
        ".wv",
    }
)


class AudioError(MerTagError):
    """A file that gives no audio; the message is one line a user can read."""


class TruncatedAudioWarning(UserWarning):
    """`load_audio` returned only part of a damaged file; the message says what happened."""


class AudioStream:
    """Blocks of mono float32 samples at `sample_rate`, decoded lazily from one file; iterate once.

    Every block holds `block_samples` samples except the last, which is shorter. After the iteration
    ends, `problem` is None for a clean decode, else a one-line reason what was yielded is incomplete;
    `seconds` is the duration yielded so far. Use it in a `with` block (or call `close`) when you may
    stop early, so the file is closed at once.
    """

    def __init__(self, path: str | os.PathLike, sr: int, block_samples: int):
        self.sample_rate = sr
        self.problem: str | None = None
        self._samples = 0
        self._container = _open_container(path)
        self._blocks = self._generate(block_samples)

    @property
    def seconds(self) -> float:
        return self._samples / self.sample_rate

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._blocks)

    def close(self) -> None:
        self._blocks.close()
        self._container.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _generate(self, block_samples: int) -> Generator[np.ndarray, None, None]:
        try:
            yield from _blocks_of(self._chunks(), block_samples)
        finally:
            self._container.close()

    def _chunks(self) -> Iterator[np.ndarray]:
        """Resampled mono chunks of any size; records damage in `problem`, raises when nothing decoded."""
        import av

        stream = self._container.streams.audio[0]
        # No FFmpeg frame threads (FLAC, ALAC could use them): scans decode in `jobs` workers that already fill
        # the cores, where the threads cost 0.006-0.02 CPU-s a four-minute FLAC for the same samples; and a
        # damaged file's reason must not depend on them (threaded, a cut FLAC's "(invalid data found when
        # processing input)" went missing), so every process decodes alike (docs/performance.md, #18).
        stream.codec_context.thread_count = 1
        resampler = _MonoResampler(self.sample_rate)
        errors, first_error = 0, None
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container itself is cut or broken: nothing more to read
                errors, first_error = errors + 1, first_error or _reason(exc)
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # one bad packet: skip it, as ffmpeg does
                errors, first_error = errors + 1, first_error or _reason(exc)
                continue
            for frame in frames:
                yield from self._counted(resampler.push(frame))
        yield from self._counted(resampler.flush())
        if self._samples == 0:
            raise AudioError(f"truncated or corrupt: {first_error}" if errors else "no audio decoded")
        self.problem = self._damage(_expected_seconds(self._container, stream), errors, first_error)

    def _counted(self, chunks: list[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            self._samples += chunk.size
            yield chunk

    def _damage(self, expected_s: float | None, errors: int, first_error: str | None) -> str | None:
        cause = f" ({first_error})" if errors else ""
        margin_s = max(TRUNCATION_MARGIN_S, TRUNCATION_MARGIN * (expected_s or 0.0))
        if expected_s is not None and self.seconds < expected_s - margin_s:
            return f"truncated: decoded {self.seconds:.1f} s of {expected_s:.1f} s{cause}"
        if errors:
            return f"corrupt: skipped {errors} undecodable packet(s){cause}"
        return None


class _MonoResampler:
    """Decoded frames in, mono float32 chunks at `sr` Hz out.

    Frames queue in an AudioFifo (in C) and are resampled RESAMPLE_BATCH samples at a time: one PyAV
    resampler call per frame costs more than decoding a small MP3 frame. A change of format, layout or
    rate mid-stream (joined files, radio rips) drains the queue and starts afresh; PyAV's FIFO and
    resampler would refuse it or, for a changed layout, not notice.

    Several channels are mixed down to one at the file's own rate first, then that one channel is
    resampled: FFmpeg's resampler, asked for both at once, filters every channel before it mixes them
    (resampling a four-minute stereo MP3 took 0.060 CPU-s, mixed first 0.044; docs/performance.md). Both steps
    are linear, so the samples are the same but for float rounding (2.4e-7 at most on the real songs).
    """

    def __init__(self, sr: int):
        self.sr = sr
        self._setup: tuple[str, str, int] | None = None  # (format, layout, rate) of the frames queued now
        self._downmix: Any = None  # several channels to one at the file's rate, when the rate must change too

    def push(self, frame) -> list[np.ndarray]:
        import av

        setup = (frame.format.name, frame.layout.name, frame.sample_rate)
        chunks = []
        if setup != self._setup:
            chunks = self.flush()
            self._setup = setup
            self._fifo = av.AudioFifo()
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sr)
            several = len(frame.layout.channels) > 1 and frame.sample_rate != self.sr
            self._downmix = av.AudioResampler(format="flt", layout="mono", rate=frame.sample_rate) if several else None
        frame.pts = None  # the FIFO demands contiguous timestamps; a skipped bad packet leaves a gap
        self._fifo.write(frame)
        if self._fifo.samples >= RESAMPLE_BATCH:
            chunks += self._resample(self._fifo.read())
        return chunks

    def flush(self) -> list[np.ndarray]:
        if self._setup is None:
            return []
        rest = self._fifo.read()  # None when empty, and resample(None) would mean "flush"
        chunks = self._resample(rest) if rest is not None else []
        if self._downmix is not None:
            chunks += self._resample_mono(self._downmix.resample(None))
        return chunks + self._resample_mono([None])

    def _resample(self, frame) -> list[np.ndarray]:
        return self._resample_mono(self._downmix.resample(frame) if self._downmix is not None else [frame])

    def _resample_mono(self, frames: list) -> list[np.ndarray]:
        return [f.to_ndarray()[0] for frame in frames for f in self._resampler.resample(frame)]


def _blocks_of(chunks: Iterator[np.ndarray], block_samples: int) -> Iterator[np.ndarray]:
    """Re-cut chunks of any size into blocks of exactly `block_samples`, the last one shorter."""
    import numpy as np

    pending, pending_samples = [], 0
    for chunk in chunks:
        pending.append(chunk)
        pending_samples += chunk.size
        if pending_samples < block_samples:
            continue
        joined = np.concatenate(pending)
        full = joined.size - joined.size % block_samples
        yield from np.split(joined[:full], full // block_samples)
        pending, pending_samples = [joined[full:]], joined.size - full
    if pending_samples:
        yield np.concatenate(pending)


def _open_container(path: str | os.PathLike):
    import av

    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise AudioError(f"cannot read file ({_reason(exc)})") from exc
    if size == 0:
        raise AudioError("empty file (0 bytes)")
    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except OSError as exc:  # PyAV's FileNotFoundError, PermissionError... are OSErrors too
        raise AudioError(f"cannot read file ({_reason(exc)})") from exc
    except av.FFmpegError as exc:
        raise AudioError(f"not an audio file, or corrupt ({_reason(exc)})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError("not an audio file (no audio stream)")
    return container


def _expected_seconds(container, stream) -> float | None:
    """The duration the file's headers announce, None when they don't say."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        import av

        return container.duration / av.time_base
    return None


def _reason(exc: Exception) -> str:
    """FFmpeg's short reason, without the path or function name PyAV appends."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(reason.split())[:120].lower()


def stream_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE, block_samples: int = BLOCK_SAMPLES) -> AudioStream:
    """Decode `path` to mono float32 at `sr` Hz, as an iterator of `block_samples`-long blocks.

    Opening raises AudioError (unreadable, empty, not audio); iterating raises it too when no audio
    decodes at all, so iterate inside the same try. Partial damage lands in the stream's `problem`.
    """
    return AudioStream(path, sr, block_samples)


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """The whole file, or its first `max_seconds`, as one mono float32 array at `sr` Hz.

    Raises AudioError like `stream_audio`; a damaged file that decodes in part returns that part and
    warns with TruncatedAudioWarning.
    """
    import numpy as np

    max_samples = None if max_seconds is None else max(1, round(max_seconds * sr))
    blocks, decoded = [], 0
    with stream_audio(path, sr, min(BLOCK_SAMPLES, max_samples or BLOCK_SAMPLES)) as stream:
        for block in stream:
            blocks.append(block)
            decoded += block.size
            if max_samples is not None and decoded >= max_samples:
                break
    if stream.problem:
        warnings.warn(f"{os.fspath(path)}: {stream.problem}", TruncatedAudioWarning, stacklevel=2)
    return np.concatenate(blocks)[:max_samples]
