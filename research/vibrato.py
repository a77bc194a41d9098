"""Expressive features from the lead voice's pitch contour (issue #28): what a listener hears as vibrato,
glissando, a steady or wavering voice, and the melody's range, read from CREPE's frame-wise pitch and
confidence (research/extract_vibrato.py).

How the contour becomes notes: frames the network is confident about (confidence >= VOICED) and that do
not jump by more than a semitone from the frame before form continuous runs; a run is cut into notes where
its pitch, smoothed over about one vibrato cycle (SMOOTH_FRAMES), leaves the current note's median by more
than NOTE_SPLIT_CENTS and stays away for NOTE_PERSIST_FRAMES. Notes shorter than MIN_NOTE_SECONDS are the
slides between notes, not notes, and are joined to the note they lead into.
"""

from __future__ import annotations

import numpy as np

FRAMES_PER_SECOND = 50  # research/extract_vibrato.py's hop of 20 ms
VOICED = 0.3  # CREPE confidence above which a frame has a clear pitch (torchcrepe suggests 0.2–0.3)
MAX_JUMP_CENTS = 100.0  # a larger step between two frames starts a new run (vibrato moves < 50 per frame)
SMOOTH_FRAMES = 7  # 140 ms ≈ one 7-Hz vibrato cycle: the moving average keeps the note, drops the wobble
NOTE_SPLIT_CENTS = 70.0  # a new note once the smoothed pitch is this far from the note's median ...
NOTE_PERSIST_FRAMES = 4  # ... for 80 ms
MIN_NOTE_SECONDS = 0.1
HELD_NOTE_SECONDS = 0.3  # long enough for about two cycles of a 6-Hz vibrato
ONSET_FRAMES = 4  # the first 80 ms of a note: where a slide into it shows
GLISSANDO_CENTS = 50.0  # an onset this far (a quarter tone +) from the note's pitch is a slide into it
VIBRATO_BAND_HZ = (4.0, 8.0)
VIBRATO_MIN_CENTS = 15.0  # half the peak-to-peak swing; smaller is a wavering tone, not vibrato
VIBRATO_MIN_SHARE = 0.4  # of the note's wobble power (above 1.5 Hz) that must sit in the vibrato band
FFT_SIZE = 256  # zero-padded: 0.2-Hz steps at 50 frames/s

FEATURE_NAMES = [
    "voiced_share", "confidence_mean", "note_rate", "note_length",
    "vibrato_share", "vibrato_ratio", "vibrato_rate", "vibrato_extent", "vibrato_coverage",
    "glissando_share", "glissando_extent", "glissando_up_share",
    "pitch_wobble", "pitch_jitter",
    "melody_range", "melody_register", "melody_interval",
]  # fmt: skip


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def contour_runs(pitch: np.ndarray, confidence: np.ndarray) -> list[tuple[int, int]]:
    voiced = confidence >= VOICED
    joined = voiced.copy()
    joined[1:] &= ~(voiced[:-1] & (np.abs(np.diff(pitch)) > MAX_JUMP_CENTS))  # a jump starts a new run
    out = []
    for start, end in runs(voiced):
        cuts = [start] + [i for i in range(start + 1, end) if not joined[i]] + [end]
        out += [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b - a >= 2]
    return out


def split_notes(pitch: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """Cut one continuous run into notes (see the module's docstring)."""
    kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
    seg = pitch[start:end]
    smooth = np.convolve(np.pad(seg, SMOOTH_FRAMES // 2, mode="edge"), kernel, mode="valid")
    cuts, note_start = [0], 0
    i = 1
    while i < len(seg):
        ref = np.median(smooth[note_start : i + 1])
        ahead = smooth[i : i + NOTE_PERSIST_FRAMES]
        if len(ahead) == NOTE_PERSIST_FRAMES and np.all(np.abs(ahead - ref) > NOTE_SPLIT_CENTS):
            cuts.append(i)
            note_start = i
            i += NOTE_PERSIST_FRAMES
            continue
        i += 1
    cuts.append(len(seg))
    notes = [(start + a, start + b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return join_slides(notes)


def join_slides(notes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A too-short 'note' is a slide: it becomes the onset of the note after it (or joins the one before
    when it ends the run)."""
    shortest = round(MIN_NOTE_SECONDS * FRAMES_PER_SECOND)
    out: list[tuple[int, int]] = []
    pending = None
    for a, b in notes:
        a = pending if pending is not None else a
        pending = None
        if b - a < shortest:
            pending = a
            continue
        out.append((a, b))
    if pending is not None and out:
        out[-1] = (out[-1][0], notes[-1][1])
    return out


def vibrato_of(cents: np.ndarray) -> tuple[bool, float, float, float]:
    """(has vibrato, rate in Hz, extent in cents (half the swing), wobble in cents: the std of the
    detrended pitch) of one held note's pitch."""
    t = np.arange(len(cents))
    detrended = cents - np.polyval(np.polyfit(t, cents, 1), t)
    window = np.hanning(len(cents))
    spectrum = np.abs(np.fft.rfft(detrended * window, FFT_SIZE))
    freqs = np.fft.rfftfreq(FFT_SIZE, 1 / FRAMES_PER_SECOND)
    band = (freqs >= VIBRATO_BAND_HZ[0]) & (freqs <= VIBRATO_BAND_HZ[1])
    wobble = freqs >= 1.5
    peak = np.flatnonzero(band)[spectrum[band].argmax()]
    extent = 2 * spectrum[peak] / window.sum()
    share = (spectrum[band] ** 2).sum() / max((spectrum[wobble] ** 2).sum(), 1e-12)
    has = bool(extent >= VIBRATO_MIN_CENTS and share >= VIBRATO_MIN_SHARE)
    return has, float(freqs[peak]), float(extent), float(detrended.std())


def describe(pitch: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """FEATURE_NAMES for one song's contour; NaN where a song has nothing to measure (no vibrato note for
    its rate, for example): research/evaluate_vibrato.py fills those with the set's median."""
    pitch = pitch.astype(np.float64)
    notes = [n for a, b in contour_runs(pitch, confidence) for n in split_notes(pitch, a, b)]
    seconds = len(pitch) / FRAMES_PER_SECOND
    f = dict.fromkeys(FEATURE_NAMES, np.nan)
    f["voiced_share"] = float((confidence >= VOICED).mean())
    f["confidence_mean"] = float(confidence.mean())
    f["note_rate"] = len(notes) / seconds
    if not notes:
        return np.array([f[k] for k in FEATURE_NAMES])
    lengths = np.array([b - a for a, b in notes]) / FRAMES_PER_SECOND
    f["note_length"] = float(np.median(lengths))
    onset = ONSET_FRAMES
    medians = np.array(
        [np.median(pitch[a + onset : b]) if b - a > 2 * onset else np.median(pitch[a:b]) for a, b in notes]
    )
    slides = np.array([np.median(pitch[a : a + onset]) for a, _ in notes]) - medians
    glide = np.abs(slides) >= GLISSANDO_CENTS
    f["glissando_share"] = float(glide.mean())
    if glide.any():
        f["glissando_extent"] = float(np.abs(slides[glide]).mean())
        f["glissando_up_share"] = float((slides[glide] < 0).mean())  # from below: the pitch rises into the note
    held = [(a, b) for a, b in notes if b - a >= HELD_NOTE_SECONDS * FRAMES_PER_SECOND]
    if held:
        vib = [vibrato_of(pitch[a + onset // 2 : b]) for a, b in held]
        has = np.array([v[0] for v in vib])
        f["vibrato_share"] = float(has.mean())
        f["vibrato_ratio"] = float(np.log1p(has.sum() / (1 + (~has).sum())))
        held_frames = np.array([b - a for a, b in held])
        f["vibrato_coverage"] = float(held_frames[has].sum() / max(1, (confidence >= VOICED).sum()))
        f["pitch_wobble"] = float(np.median([v[3] for v in vib]))
        if has.any():
            f["vibrato_rate"] = float(np.mean([v[1] for v, h in zip(vib, has, strict=True) if h]))
            f["vibrato_extent"] = float(np.mean([v[2] for v, h in zip(vib, has, strict=True) if h]))
    f["pitch_jitter"] = float(np.median(np.concatenate([np.abs(np.diff(pitch[a:b])) for a, b in notes])))
    semitones = medians / 100
    f["melody_range"] = float(np.percentile(semitones, 95) - np.percentile(semitones, 5))
    f["melody_register"] = float(np.median(semitones))
    if len(notes) > 1:
        f["melody_interval"] = float(np.median(np.abs(np.diff(semitones))))
    return np.array([f[k] for k in FEATURE_NAMES])
