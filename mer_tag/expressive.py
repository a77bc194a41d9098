"""Notes from basic-pitch's posteriors, and what a listener hears in them: how the notes are played
(vibrato, glissando, tremolo, articulation), how many sound at once (texture), and the melody's range and
contour. numpy only.

Note tracking follows basic-pitch's `output_to_notes_polyphonic` (Apache-2.0, Spotify; see
mer_tag/weights/basic_pitch/NOTICE): a note starts at an onset peak above 0.5 and lasts while its frame
posterior stays above 0.3 (allowing 11 frames below), at least 11 frames; then the "melodia trick" turns
the strongest leftover frame energy into notes too. Each note's pitch track is read from the pitch-contour
posterior (3 bins per semitone) as basic-pitch reads its pitch bends, refined between bins by a weighted
centroid, so vibrato of a fraction of a semitone shows.

The feature definitions follow Panda, Malheiro & Paiva (2018, IEEE Trans. Affective Computing), who found
the share of notes sung or played with vibrato the single most informative feature for valence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAMES_PER_SECOND = 22050 / 256  # basic-pitch's frame rate (86.13 Hz)
ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_FRAMES = 11  # 128 ms
ENERGY_TOLERANCE = 11  # frames below threshold a note may hold through
LOWEST_MIDI = 21  # note posterior column 0 is A0
CONTOUR_BINS_PER_SEMITONE = 3
BEND_TOLERANCE = 25  # contour bins either side of the note's own pitch searched for its pitch track

VIBRATO_MIN_FRAMES = 22  # 0.26 s: a note must hold for about two vibrato cycles
VIBRATO_HZ = (4.0, 8.0)  # the rate of sung and bowed vibrato
VIBRATO_MIN_EXTENT = 0.15  # semitones, half of the peak-to-peak swing
TREMOLO_HZ = (4.0, 12.0)  # amplitude modulation rate (a mandolin's or a tremolo pedal's)
GLISSANDO_MIN = 0.6  # semitones of steady pitch drift within one note
HELD_GAP = 2  # frames (23 ms) between two notes of one pitch that still count as one held tone
MODULATION_FFT = 256  # points for a modulation spectrum: 0.34 Hz apart at 86 frames a second
STACCATO_GAP = 0.4  # share of the inter-onset interval that is silence, beyond which a note is detached

FEATURE_NAMES = (
    "vibrato_share",  # held tones (0.26 s or longer) with vibrato / all of them
    "vibrato_ratio",  # held tones with vibrato / those without (the paper's best valence feature)
    "vibrato_rate",  # Hz, mean over vibrato notes
    "vibrato_extent",  # semitones, mean over vibrato notes
    "vibrato_coverage",  # share of note time under vibrato
    "glissando_share",
    "glissando_extent",  # semitones, mean over glissando notes
    "glissando_up_share",  # of glissandos, the share that rise
    "tremolo_share",
    "tremolo_rate",
    "pitch_wobble",  # semitones, median standard deviation of long notes' pitch around their trend
    "staccato_share",  # melody notes detached from the next one
    "legato_ratio",  # median of melody note duration / inter-onset interval
    "note_density",  # notes per second
    "note_duration",  # median seconds
    "note_strength",  # mean posterior over notes (a loudness and certainty proxy)
    "layers_mean",  # notes sounding at once, mean over frames that sound
    "layers_std",
    "layers_max",  # 95th percentile
    "layers_changes",  # changes in the number of layers per second
    "silence_share",  # frames with no note
    "melody_range",  # semitones between the 5th and 95th percentile of the top line
    "melody_mean",  # MIDI number, mean of the top line
    "melody_std",
    "melody_interval",  # semitones, mean absolute step between top-line notes
    "melody_up_share",
    "melody_down_share",
    "melody_repeat_share",
    "melody_leap_share",  # steps of 5 semitones (a fourth) or more
    "bass_mean",  # MIDI number, mean of the lowest line
    "pitch_range",  # semitones, 5th to 95th percentile over all notes
)


@dataclass
class Note:
    start: int  # frame
    end: int  # frame, exclusive
    pitch: int  # MIDI number
    strength: float  # mean note posterior over the note
    track: np.ndarray  # [end - start] pitch in fractional MIDI numbers, from the contour


def infer_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """Onsets plus rises of the frame posterior, rescaled to the onsets' maximum (basic-pitch's)."""
    diffs = []
    for n in range(1, n_diff + 1):
        padded = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(padded[n:] - padded[:-n])
    rise = np.maximum(np.min(diffs, axis=0), 0.0)
    rise[:n_diff] = 0.0
    top = rise.max()
    rise = onsets.max() * rise / top if top > 0 else rise
    return np.maximum(onsets, rise)


def _hold(energy: np.ndarray, start: int, pitch: int, step: int, clear: bool) -> int:
    """Walk from `start` in `step` direction while the pitch keeps its energy (with tolerance); return the
    last frame above threshold (+1 going forward). With `clear`, zero the walked frames and neighbours."""
    n = energy.shape[0]
    i, k = start, 0
    while 0 < i < n - 1 and k < ENERGY_TOLERANCE:
        k = k + 1 if energy[i, pitch] < FRAME_THRESHOLD else 0
        if clear:
            energy[i, max(0, pitch - 1) : pitch + 2] = 0.0
        i += step
    return i - k if step > 0 else i + k


def track_notes(note: np.ndarray, onset: np.ndarray) -> list[tuple[int, int, int, float]]:
    """(start, end, key index, strength) of every note: onset-led notes, then the melodia trick."""
    frames = np.asarray(note, dtype=np.float64)
    onsets = infer_onsets(np.asarray(onset, dtype=np.float64), frames)
    n_frames = frames.shape[0]
    peak = np.zeros_like(onsets, dtype=bool)
    peak[1:-1] = (onsets[1:-1] > onsets[:-2]) & (onsets[1:-1] > onsets[2:])
    times, keys = np.nonzero(peak & (onsets >= ONSET_THRESHOLD))
    energy = frames.copy()
    out = []
    for start, key in zip(times[::-1], keys[::-1], strict=True):  # backwards in time, as basic-pitch
        if start >= n_frames - 1:
            continue
        end = _hold(energy, start + 1, key, 1, clear=False)
        if end - start <= MIN_NOTE_FRAMES:
            continue
        energy[start:end, max(0, key - 1) : key + 2] = 0.0
        out.append((int(start), int(end), int(key), float(frames[start:end, key].mean())))
    while energy.size and energy.max() > FRAME_THRESHOLD:  # the melodia trick
        mid, key = (int(i) for i in np.unravel_index(int(np.argmax(energy)), energy.shape))
        energy[mid, key] = 0.0
        end = _hold(energy, mid + 1, key, 1, clear=True) - 1  # basic-pitch's i_end and i_start
        start = _hold(energy, mid - 1, key, -1, clear=True) + 1
        if end - start <= MIN_NOTE_FRAMES:
            continue
        out.append((int(start), int(end), int(key), float(frames[start:end, key].mean())))
    return sorted(out)


def pitch_track(contour: np.ndarray, start: int, end: int, key: int) -> np.ndarray:
    """[end - start] fractional MIDI pitch of a note from the contour posterior: basic-pitch's pitch bend
    (argmax under a Gaussian around the note's own bin, std 5 bins), refined by the centroid of the bins
    either side."""
    n_bins = contour.shape[1]
    centre = key * CONTOUR_BINS_PER_SEMITONE + 1  # bin of the key's own pitch (3 bins per key, centre one)
    lo, hi = max(0, centre - BEND_TOLERANCE), min(n_bins, centre + BEND_TOLERANCE + 1)
    offsets = np.arange(lo, hi) - centre
    window = np.exp(-0.5 * (offsets / 5.0) ** 2)
    sub = contour[start:end, lo:hi] * window
    best = np.argmax(sub, axis=1)
    left = np.take_along_axis(sub, np.clip(best - 1, 0, sub.shape[1] - 1)[:, None], 1)[:, 0]
    mid = np.take_along_axis(sub, best[:, None], 1)[:, 0]
    right = np.take_along_axis(sub, np.clip(best + 1, 0, sub.shape[1] - 1)[:, None], 1)[:, 0]
    total = np.maximum(left + mid + right, 1e-9)
    refined = best + (right - left) / total
    return LOWEST_MIDI + key + (refined + lo - centre) / CONTOUR_BINS_PER_SEMITONE


def transcribe_notes(posteriors: dict[str, np.ndarray]) -> list[Note]:
    """Notes with their pitch tracks from basic-pitch's posteriors ('note', 'onset', 'contour')."""
    contour = np.asarray(posteriors["contour"], dtype=np.float64)
    return [
        Note(start, end, LOWEST_MIDI + key, strength, pitch_track(contour, start, end, key))
        for start, end, key, strength in track_notes(posteriors["note"], posteriors["onset"])
    ]


def held_tones(notes: list[Note]) -> list[Note]:
    """Notes of one pitch that follow each other with at most HELD_GAP frames between them, joined into one
    held tone: basic-pitch hears each cycle of a vibrato as a new onset (its onset posterior swings with the
    pitch), so a sung note reaches the pitch analysis in pieces of a sixth of a second otherwise."""
    by_pitch: dict[int, list[Note]] = {}
    for note in sorted(notes, key=lambda n: n.start):
        run = by_pitch.setdefault(note.pitch, [])
        last = run[-1] if run else None
        if last is not None and note.start - last.end <= HELD_GAP:
            strength = (last.strength * (last.end - last.start) + note.strength * (note.end - note.start)) / (
                note.end - last.start
            )
            run[-1] = Note(last.start, note.end, note.pitch, strength, np.concatenate([last.track, note.track]))
        else:
            run.append(note)
    return sorted((n for run in by_pitch.values() for n in run), key=lambda n: (n.start, n.pitch))


def _modulation(signal: np.ndarray, band: tuple[float, float]) -> tuple[float, float, float]:
    """(rate Hz, extent = half the peak-to-peak swing at that rate, share of the signal's variance in the
    band) of a signal sampled at the frame rate, after removing its linear trend."""
    n = signal.size
    t = np.arange(n)
    detrended = signal - np.polyval(np.polyfit(t, signal, 1), t)
    n_fft = max(MODULATION_FFT, n)  # zero-padded: a 0.3-s note's 26 frames alone resolve only 3.3 Hz
    spectrum = np.abs(np.fft.rfft(detrended * np.hanning(n), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / FRAMES_PER_SECOND)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    total = spectrum[1:].sum()
    if not inside.any() or total <= 0:
        return 0.0, 0.0, 0.0
    k = np.flatnonzero(inside)[np.argmax(spectrum[inside])]
    extent = 2.0 * np.sqrt(spectrum[k]) / np.hanning(n).sum()  # sine amplitude at the peak
    return float(freqs[k]), float(extent), float(spectrum[inside].sum() / total)


def _line(notes: list[Note], highest: bool) -> list[Note]:
    """The top (or bottom) line: at each onset, of the notes starting within 3 frames, the highest
    (lowest); later notes that start while the chosen one still sounds are skipped."""
    out: list[Note] = []
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch if highest else n.pitch)):
        if out and note.start < out[-1].start + 3:
            continue
        out.append(note)
    return out


def expressive_features(notes: list[Note], n_frames: int, note_posterior: np.ndarray | None = None) -> np.ndarray:
    """FEATURE_NAMES' values for a song's notes (0 for what cannot be measured, e.g. with no notes)."""
    seconds = max(n_frames / FRAMES_PER_SECOND, 1e-6)
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    if not notes:
        values["silence_share"] = 1.0
        return np.array([values[k] for k in FEATURE_NAMES], dtype=np.float32)
    long_notes = [n for n in held_tones(notes) if n.track.size >= VIBRATO_MIN_FRAMES]
    vibrato, wobble, gliss, tremolo = [], [], [], []
    for note in long_notes:
        rate, extent, share = _modulation(note.track, VIBRATO_HZ)
        if extent >= VIBRATO_MIN_EXTENT and share >= 0.3:
            vibrato.append((rate, extent, note.end - note.start, note))
        t = np.arange(note.track.size)
        wobble.append(float(np.std(note.track - np.polyval(np.polyfit(t, note.track, 1), t))))
        q = max(1, note.track.size // 5)
        drift = float(np.median(note.track[-q:]) - np.median(note.track[:q]))
        if abs(drift) >= GLISSANDO_MIN:
            gliss.append(drift)
        if note_posterior is not None:
            key = note.pitch - LOWEST_MIDI
            rate_t, extent_t, share_t = _modulation(note_posterior[note.start : note.end, key], TREMOLO_HZ)
            # a held tone's posterior swings with its vibrato too: tremolo only where the pitch stays put
            if vibrato and vibrato[-1][3] is note:
                share_t = 0.0
            if extent_t >= 0.05 and share_t >= 0.3:
                tremolo.append(rate_t)
    n_long = max(len(long_notes), 1)
    values["vibrato_share"] = len(vibrato) / n_long
    values["vibrato_ratio"] = len(vibrato) / max(len(long_notes) - len(vibrato), 1)
    if vibrato:
        values["vibrato_rate"] = float(np.mean([v[0] for v in vibrato]))
        values["vibrato_extent"] = float(np.mean([v[1] for v in vibrato]))
        values["vibrato_coverage"] = min(1.0, sum(v[2] for v in vibrato) / sum(n.end - n.start for n in notes))
    values["glissando_share"] = len(gliss) / n_long
    if gliss:
        values["glissando_extent"] = float(np.mean(np.abs(gliss)))
        values["glissando_up_share"] = float(np.mean(np.asarray(gliss) > 0))
    values["tremolo_share"] = len(tremolo) / n_long
    values["tremolo_rate"] = float(np.mean(tremolo)) if tremolo else 0.0
    values["pitch_wobble"] = float(np.median(wobble)) if wobble else 0.0

    melody = _line(notes, highest=True)
    if len(melody) > 1:
        starts = np.array([n.start for n in melody])
        ends = np.array([n.end for n in melody])
        ioi = np.diff(starts).astype(float)
        gap = (starts[1:] - ends[:-1]) / np.maximum(ioi, 1)
        values["staccato_share"] = float(np.mean(gap > STACCATO_GAP))
        values["legato_ratio"] = float(np.median((ends[:-1] - starts[:-1]) / np.maximum(ioi, 1)))
        steps = np.diff([n.pitch for n in melody]).astype(float)
        values["melody_interval"] = float(np.mean(np.abs(steps)))
        values["melody_up_share"] = float(np.mean(steps > 0))
        values["melody_down_share"] = float(np.mean(steps < 0))
        values["melody_repeat_share"] = float(np.mean(steps == 0))
        values["melody_leap_share"] = float(np.mean(np.abs(steps) >= 5))
    top = np.array([n.pitch for n in melody], dtype=float)
    values["melody_range"] = float(np.percentile(top, 95) - np.percentile(top, 5))
    values["melody_mean"] = float(top.mean())
    values["melody_std"] = float(top.std())
    values["bass_mean"] = float(np.mean([n.pitch for n in _line(notes, highest=False)]))
    pitches = np.array([n.pitch for n in notes], dtype=float)
    values["pitch_range"] = float(np.percentile(pitches, 95) - np.percentile(pitches, 5))
    values["note_density"] = len(notes) / seconds
    values["note_duration"] = float(np.median([n.end - n.start for n in notes])) / FRAMES_PER_SECOND
    values["note_strength"] = float(np.mean([n.strength for n in notes]))

    layers = np.zeros(n_frames + 1)
    for note in notes:
        layers[note.start] += 1
        layers[min(note.end, n_frames)] -= 1
    layers = np.cumsum(layers)[:n_frames]
    sounding = layers[layers > 0]
    values["silence_share"] = float(np.mean(layers == 0))
    if sounding.size:
        values["layers_mean"] = float(sounding.mean())
        values["layers_std"] = float(sounding.std())
        values["layers_max"] = float(np.percentile(sounding, 95))
    values["layers_changes"] = float(np.count_nonzero(np.diff(layers))) / seconds
    return np.array([values[k] for k in FEATURE_NAMES], dtype=np.float32)
