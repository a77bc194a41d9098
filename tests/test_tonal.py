"""Sensory dissonance, key clarity and mode strength from a power spectrum (mer_tag.tonal)."""

from __future__ import annotations

import numpy as np

from mer_tag import tonal

SR, N_FFT, HOP = 16000, 1024, 512


def power(signal: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(signal, N_FFT // 2), N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1)) ** 2


def chord(freqs, seconds: float = 2.0, harmonics: int = 4) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * f * h * t) / h for f in freqs for h in range(1, harmonics + 1)).astype(np.float32)


def features(signal: np.ndarray) -> dict[str, float]:
    diss, chroma = tonal.frame_features(power(signal), SR, N_FFT)
    return dict(zip(tonal.FEATURE_NAMES, tonal.tonal_summary(diss, chroma).tolist(), strict=True))


def test_a_semitone_cluster_is_rougher_than_a_fifth():
    fifth = features(chord([261.63, 392.0]))
    cluster = features(chord([261.63, 277.18, 293.66]))
    assert cluster["dissonance_mean"] > 1.5 * fifth["dissonance_mean"] > 0


def test_major_and_minor_triads_are_told_apart():
    c_major = features(chord([261.63, 329.63, 392.0], harmonics=1))  # C E G
    a_minor = features(chord([220.0, 261.63, 329.63], harmonics=1))  # A C E
    assert c_major["mode_strength"] > 0 > a_minor["mode_strength"]
    assert c_major["segment_mode_major_share"] == 1.0 and a_minor["segment_mode_major_share"] == 0.0


def test_a_scale_is_clearer_in_key_than_noise():
    rng = np.random.default_rng(0)
    scale = np.concatenate([chord([f], seconds=0.5) for f in (261.63, 293.66, 329.63, 349.23, 392.0, 440.0, 493.88)])
    noise = rng.standard_normal(scale.size).astype(np.float32)
    assert features(scale)["key_strength"] > features(noise)["key_strength"] + 0.3
    tonic = [features(scale)[f"tonic_chroma_{i}"] for i in range(12)]
    assert abs(sum(tonic) - 1.0) < 1e-4  # a chroma, turned to the best key's tonic


def test_silence_gives_finite_neutral_values():
    values = tonal.tonal_summary(*tonal.frame_features(np.zeros((40, N_FFT // 2 + 1)), SR, N_FFT))
    assert values.shape == (len(tonal.FEATURE_NAMES),) and np.all(np.isfinite(values))
    assert values[tonal.FEATURE_NAMES.index("dissonance_mean")] == 0.0


def test_without_dissonance_the_rest_is_the_same_and_the_roughness_is_missing_not_made_up():
    """Where no head reads the roughness the engines skip it (#27): key, mode and chroma do not move, and its
    three values are NaN, so nothing could read them as a real 0."""
    signal = chord([261.63, 329.63, 392.0], seconds=4.0)
    full = tonal.tonal_summary(*tonal.frame_features(power(signal), SR, N_FFT))
    diss, chroma = tonal.frame_features(power(signal), SR, N_FFT, dissonance=False)
    assert diss is None
    lean = tonal.tonal_summary(diss, chroma)
    np.testing.assert_array_equal(lean[3:], full[3:])
    assert np.isnan(lean[:3]).all() and np.isfinite(full[:3]).all()


def test_feature_cache_keys_name_the_roughness_only_where_it_changes_an_entry():
    from mer_tag.features import AudioConfig
    from mer_tag.train.extract import cache_settings

    before = {k: v for k, v in cache_settings(AudioConfig(tonal=True)).items()}
    assert "dissonance" not in before  # entries made before the setting existed had the roughness: still hit
    assert cache_settings(AudioConfig(tonal=True, dissonance=False))["dissonance"] is False  # a different entry
    assert cache_settings(AudioConfig()) == cache_settings(AudioConfig(dissonance=False))  # no tonal: same entry
