"""How consonant and how clearly in a key a song sounds, from its short-time spectrum (numpy only).

Computed in the decode workers beside the log-mel, from the same power spectrum (`features.power_frames`),
so they cost a scan little: no second FFT, no torch.

- Sensory dissonance (Plomp & Levelt 1965, in Sethares' 1993 parametrisation): every pair of the loudest
  spectral peaks in a frame that lie within a critical band of each other beats and sounds rough; the
  roughness of the pair peaks at about a quarter of a critical band. A frame's value is the amplitude-weighted
  mean roughness of its peak pairs, so loudness does not move it.
- Key clarity and mode: a chroma (how much of each of the 12 pitch classes sounds) correlated with the
  Krumhansl–Kessler major and minor key profiles, rotated to all 24 keys. Clarity is how far the best key's
  correlation stands above the runner-up's; mode strength is the best major key's correlation minus the best
  minor key's (positive: it sounds major).
"""

from __future__ import annotations

import functools

import numpy as np

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

N_PEAKS = 20  # loudest spectral peaks per frame: 190 pairs for dissonance, and the chroma
PEAK_MIN_HZ = 50.0  # below: rumble, not pitch
PEAK_MAX_HZ = 5000.0  # above: mostly noise and cymbals, whose "roughness" is not harmonic
CHROMA_MIN_HZ = 100.0  # a 1024-point FFT at 16 kHz has 15.6 Hz bins: about a semitone at 270 Hz
CHROMA_MAX_HZ = 5000.0
FRAME_STEP = 4  # every 4th log-mel frame is analysed: 128 ms apart at a 512-sample hop and 16 kHz
SEGMENT_FRAMES = 39  # analysed frames per segment for the local key: 5 s at 128 ms

# Sethares (1993): roughness of two partials df Hz apart, the lower at f Hz:
# exp(-B1 * s * df) - exp(-B2 * s * df), s = S1 / (S2 * f + S3); it peaks near a quarter critical band.
B1, B2 = 3.5, 5.75
S1, S2, S3 = 0.24, 0.0207, 18.96

FEATURE_NAMES = (
    "dissonance_mean",
    "dissonance_std",
    "dissonance_p90",
    "key_strength",  # the best key's correlation
    "key_clarity",  # best key's correlation minus the runner-up's
    "mode_strength",  # best major minus best minor correlation (song chroma)
    "segment_key_clarity",  # mean over 5-s segments
    "segment_mode_strength",  # mean over 5-s segments
    "segment_mode_major_share",  # share of segments that sound major
    "key_changes",  # share of segment boundaries where the best key changes
    *(f"tonic_chroma_{i}" for i in range(12)),  # the chroma turned so the best key's tonic comes first
)


def spectral_peaks(magnitude: np.ndarray, freqs: np.ndarray, n_peaks: int = N_PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, Hz) of each frame's `n_peaks` loudest local maxima between PEAK_MIN_HZ and PEAK_MAX_HZ,
    each [frames, n_peaks]; the frequency refined by a parabola through the peak's log magnitude and its
    neighbours (a 15.6-Hz bin is too coarse for pitch classes). A frame with fewer peaks pads with 0 amplitude."""
    band = np.flatnonzero((freqs >= PEAK_MIN_HZ) & (freqs <= PEAK_MAX_HZ))
    lo, hi = max(band[0], 1), min(band[-1], magnitude.shape[1] - 2)
    mag = magnitude[:, lo - 1 : hi + 2]
    centre = mag[:, 1:-1]
    is_peak = (centre > mag[:, :-2]) & (centre >= mag[:, 2:]) & (centre > 0)
    peaks = np.where(is_peak, centre, 0.0)
    k = min(n_peaks, peaks.shape[1])
    top = np.argpartition(-peaks, k - 1, axis=1)[:, :k]
    amp = np.take_along_axis(peaks, top, axis=1)
    log = np.log(np.maximum(mag, 1e-12))
    left = np.take_along_axis(log, top, axis=1)
    mid = np.take_along_axis(log, top + 1, axis=1)
    right = np.take_along_axis(log, top + 2, axis=1)
    curve = left - 2 * mid + right
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
    hz = (lo + top + np.clip(shift, -0.5, 0.5)) * (freqs[1] - freqs[0])
    return amp, hz


def frame_dissonance(amp: np.ndarray, hz: np.ndarray) -> np.ndarray:
    """[frames] amplitude-weighted mean Plomp–Levelt roughness of the peak pairs of each frame (0 when a
    frame has fewer than two peaks), from `spectral_peaks`."""
    k = amp.shape[1]
    low = np.minimum(hz[:, :, None], hz[:, None, :])
    diff = np.abs(hz[:, :, None] - hz[:, None, :])
    s = S1 / (S2 * low + S3)
    rough = np.exp(-B1 * s * diff) - np.exp(-B2 * s * diff)
    weight = amp[:, :, None] * amp[:, None, :] * np.triu(np.ones((k, k)), 1)  # each pair once
    total = weight.sum((1, 2))
    return np.where(total > 0, (weight * rough).sum((1, 2)) / np.maximum(total, 1e-20), 0.0)


def frame_chroma(amp: np.ndarray, hz: np.ndarray) -> np.ndarray:
    """[frames, 12] chroma (C first) of each frame from its spectral peaks between CHROMA_MIN_HZ and
    CHROMA_MAX_HZ, each peak shared between its two nearest pitch classes by a cos² of the distance;
    each frame sums to 1 (one without peaks to 0)."""
    use = (hz >= CHROMA_MIN_HZ) & (hz <= CHROMA_MAX_HZ) & (amp > 0)
    pitch = 12.0 * np.log2(np.maximum(hz, 1.0) / 440.0) + 69.0  # MIDI number, fractional
    weight = np.where(use, np.sqrt(amp), 0.0)  # sqrt: loud bass notes rule less
    below = np.floor(pitch)
    frac = pitch - below  # distance to the pitch class below; 1 - frac to the one above
    frames = np.broadcast_to(np.arange(amp.shape[0])[:, None] * 12, amp.shape)
    chroma = np.zeros(amp.shape[0] * 12)
    for offset, share in ((0, np.cos(0.5 * np.pi * frac) ** 2), (1, np.sin(0.5 * np.pi * frac) ** 2)):
        index = frames + (below.astype(np.int64) + offset) % 12
        chroma += np.bincount(index.ravel(), (weight * share).ravel(), minlength=chroma.size)
    chroma = chroma.reshape(-1, 12)
    total = chroma.sum(1, keepdims=True)
    return np.where(total > 0, chroma / np.maximum(total, 1e-20), 0.0)


@functools.lru_cache(maxsize=1)
def _key_profiles() -> np.ndarray:
    """[24, 12] z-scored profiles: 12 major keys (C, C#, …) then 12 minor keys."""
    rows = [np.roll(p, k) for p in (MAJOR_PROFILE, MINOR_PROFILE) for k in range(12)]
    profiles = np.array(rows)
    return (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)


def key_correlations(chroma: np.ndarray) -> np.ndarray:
    """[..., 24] Pearson correlation of chroma [..., 12] with every key profile (0 for a flat chroma)."""
    centred = chroma - chroma.mean(-1, keepdims=True)
    scale = centred.std(-1, keepdims=True)
    z = np.where(scale > 0, centred / np.maximum(scale, 1e-20), 0.0)
    return z @ _key_profiles().T / 12.0


def _clarity_mode(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ordered = np.sort(corr, -1)
    return ordered[..., -1], ordered[..., -1] - ordered[..., -2], corr[..., :12].max(-1) - corr[..., 12:].max(-1)


def tonal_summary(frames_dissonance: np.ndarray | None, chroma: np.ndarray) -> np.ndarray:
    """FEATURE_NAMES' values for a song from its frames' dissonance [frames] (None: not computed, and its three
    values NaN) and chroma [frames, 12]."""
    loud = chroma.sum(1) > 0
    if frames_dissonance is None:
        diss = np.full(1, np.nan)
    else:
        diss = frames_dissonance[loud] if loud.any() else np.zeros(1)
    song = chroma[loud].mean(0) if loud.any() else np.full(12, 1.0 / 12)
    corr = key_correlations(song)
    strength, clarity, mode = _clarity_mode(corr)
    best = int(np.argmax(corr))
    tonic_chroma = np.roll(song, -(best % 12))
    n_seg = max(1, len(chroma) // SEGMENT_FRAMES)
    segments = np.array([c.mean(0) for c in np.array_split(chroma, n_seg)])
    seg_corr = key_correlations(segments)
    _, seg_clarity, seg_mode = _clarity_mode(seg_corr)
    seg_keys = seg_corr.argmax(-1)
    changes = float(np.mean(seg_keys[1:] != seg_keys[:-1])) if n_seg > 1 else 0.0
    values = [
        diss.mean(),
        diss.std(),
        np.percentile(diss, 90),
        strength,
        clarity,
        mode,
        seg_clarity.mean(),
        seg_mode.mean(),
        float(np.mean(seg_mode > 0)),
        changes,
        *tonic_chroma,
    ]
    return np.asarray(values, dtype=np.float32)


def frame_features(
    power: np.ndarray, sample_rate: int, n_fft: int, every: int = FRAME_STEP, dissonance: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dissonance [frames'], chroma [frames', 12]) of every `every`-th frame of a power spectrum
    [frames, bins]: a song's chords and roughness are summarised from frames 128 ms apart at the default
    log-mel's 32-ms hop, for a quarter of the cost (docs/performance.md). Without `dissonance`, None for it:
    its 190 peak pairs a frame are 40 % of the cost, spent for nothing where no head reads it."""
    magnitude = np.sqrt(np.asarray(power[::every], dtype=np.float32)).astype(np.float64)
    amp, hz = spectral_peaks(magnitude, np.fft.rfftfreq(n_fft, 1.0 / sample_rate))
    return (frame_dissonance(amp, hz) if dissonance else None), frame_chroma(amp, hz)
