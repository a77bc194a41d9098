"""The musicnn port: shipped weights, shapes, determinism, preprocessing, and agreement with TensorFlow.

Reference numbers below come from the package's original TF1 training graph (musicnn 0.1.0,
MSD_musicnn, run with is_training=False via `tools/convert_musicnn.py --reference`), so a wrong
weight mapping or layer order fails here without TensorFlow installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mer_tag.models import musicnn as M

DATASET = Path(__file__).resolve().parents[2] / "shared/datasets/mirex-mood"


@pytest.fixture(scope="module")
def model() -> M.Musicnn:
    return M.Musicnn.load()


def synthetic_patches() -> np.ndarray:
    """Two fixed [187, 96] inputs: a smooth pattern and uniform noise in the log-mel value range."""
    t = np.arange(M.PATCH_FRAMES)[:, None]
    f = np.arange(M.N_MELS)[None, :]
    a = 2.0 + 1.5 * np.sin(0.3 * t) * np.cos(0.2 * f) - 0.02 * f
    b = np.random.default_rng(0).uniform(0.0, 4.0, (M.PATCH_FRAMES, M.N_MELS))
    return np.stack([a, b]).astype(np.float32)


# TensorFlow (original graph) on synthetic_patches(): top-5 (tag index, probability), sum of logits,
# sum of penultimate features.
TF_REFERENCE = [
    ([(24, 0.36351), (4, 0.19899), (30, 0.11940), (28, 0.06501), (18, 0.04204)], -273.0302, 48.2971),
    ([(11, 0.27294), (4, 0.04538), (0, 0.02706), (6, 0.02253), (30, 0.02248)], -376.3799, 171.1066),
]


def test_constants_and_tags():
    assert (M.SAMPLE_RATE, M.N_FFT, M.HOP_LENGTH, M.N_MELS, M.PATCH_FRAMES) == (16000, 512, 256, 96, 187)
    assert len(M.MSD_TAGS) == 50 and len(set(M.MSD_TAGS)) == 50
    assert M.MSD_TAGS[0] == "rock" and M.MSD_TAGS[9] == "jazz" and M.MSD_TAGS[-1] == "happy"


def test_shipped_weights_load(model):
    assert M.WEIGHTS_PATH.is_file()
    assert len(M.weights_sha256()) == 64
    assert not model.training
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert n_params + n_buffers == 792079  # every tensor in the file, nothing random left


def test_shapes_and_ranges(model):
    x = torch.from_numpy(synthetic_patches())
    out = model(x)
    assert out["tags"].shape == (2, 50)
    assert out["logits"].shape == (2, 50)
    assert out["penultimate"].shape == (2, M.EMBED_DIM)
    assert out["mean_pool"].shape == out["max_pool"].shape == (2, M.POOL_DIM)
    assert out["pooled"].shape == (2, 2 * M.POOL_DIM)
    for v in out.values():
        assert torch.isfinite(v).all()
    assert ((out["tags"] > 0) & (out["tags"] < 1)).all()
    # any length works (fully convolutional, global pooling)
    assert model(torch.rand(1, 60, M.N_MELS) * 3)["tags"].shape == (1, 50)


def test_matches_tensorflow_reference(model):
    out = model.predict(synthetic_patches())
    for i, (top5, logit_sum, pen_sum) in enumerate(TF_REFERENCE):
        idx = [j for j, _ in top5]
        assert list(np.argsort(-out["tags"][i])[:5]) == idx
        np.testing.assert_allclose(out["tags"][i][idx], [p for _, p in top5], atol=1e-4)
        assert out["logits"][i].sum() == pytest.approx(logit_sum, abs=2e-3)
        assert out["penultimate"][i].sum() == pytest.approx(pen_sum, abs=2e-3)


def test_deterministic_and_batch_independent(model):
    x = synthetic_patches()
    a, b = model.predict(x), model.predict(x)
    for k in a:
        assert np.array_equal(a[k], b[k])
    single = model.predict(x[1:2])
    np.testing.assert_allclose(single["tags"][0], a["tags"][1], atol=1e-5)
    big = np.concatenate([x] * 3)  # > micro_batch: sliced internally, same result
    np.testing.assert_allclose(model.predict(big, batch_size=6)["tags"][4:6], a["tags"], atol=1e-5)


def test_different_inputs_give_different_tags(model):
    """Guards against the 'same tags for every input' failure (NaN or constant outputs)."""
    sr = M.SAMPLE_RATE
    t = np.arange(6 * sr) / sr
    rng = np.random.default_rng(1)
    hum = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 220 * t)
    clicks = np.zeros_like(t)
    clicks[:: sr // 4] = 1.0  # 4 clicks per second
    clicks = np.convolve(clicks, np.exp(-np.arange(400) / 40.0) * rng.standard_normal(400), mode="same")
    noise = 0.3 * rng.standard_normal(t.size)
    tags = np.stack(
        [model.predict(M.patches(M.logmel(y.astype(np.float32))))["tags"].mean(0) for y in (hum, clicks, noise)]
    )
    assert np.isfinite(tags).all()
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(tags[i] - tags[j]).max() > 0.05


def test_logmel_shape_and_no_float16_overflow():
    sr = M.SAMPLE_RATE
    y = np.sin(2 * np.pi * 100 * np.arange(2 * sr) / sr).astype(np.float32)  # full-scale bass tone
    mel = M.logmel(y)
    assert mel.shape == (1 + y.size // M.HOP_LENGTH, M.N_MELS) and mel.dtype == np.float32
    assert np.isfinite(mel).all()
    # 10000 * mel exceeds float16's 65504 here: musicnn's own code overflows to inf under NumPy 2
    assert mel.max() > np.log10(65505.0)
    assert M.logmel(np.zeros(sr, np.float32)).max() == 0.0
    with pytest.raises(ValueError):
        M.logmel(np.zeros((2, sr), np.float32))


def test_patches():
    mel = np.arange(1876 * 96, dtype=np.float32).reshape(1876, 96)  # 30 s at 16 kHz
    p = M.patches(mel)
    assert p.shape == (10, 187, 96) and p.dtype == np.float32
    assert np.array_equal(p[1], mel[187:374])
    assert M.patches(mel, tail="end").shape == (11, 187, 96)
    assert np.array_equal(M.patches(mel, tail="end")[-1], mel[-187:])
    assert M.patches(mel[: 187 * 3 + 100]).shape == (4, 187, 96)  # >= half a patch left: end-aligned
    assert M.patches(mel[: 187 * 3 + 100], tail="drop").shape == (3, 187, 96)
    assert M.patches(mel, hop_frames=94).shape[0] == 18  # 91 frames left < 93: dropped
    short = M.patches(mel[:50])  # repeat-padded, as musicnn's training did
    assert short.shape == (1, 187, 96) and np.array_equal(short[0, 50:100], mel[:50])
    assert M.patches(mel[:0]).shape == (0, 187, 96)


# Full 30-s clips of the MIREX-mood dataset: expected top-5 (clip-mean of patch tags), from this port,
# checked identical to the original TF graph. The genre tag must stay in the top 3, and at least 3 of
# the 5 must match.
CLIPS = {
    "002.mp3": ("jazz", ["jazz", "instrumental", "electronic", "chillout", "rock"]),  # Art Blakey
    "888.mp3": ("metal", ["metal", "heavy metal", "rock", "hard rock", "punk"]),  # Pantera
    "140.mp3": ("Hip-Hop", ["Hip-Hop", "90s", "electronic", "dance", "rock"]),  # Public Enemy
    "278.mp3": ("country", ["country", "blues", "oldies", "rock", "folk"]),  # Johnny Cash
}


@pytest.mark.dataset
def test_obvious_genres(model):
    if not (DATASET / "Audio").is_dir():
        pytest.skip(f"dataset not found at {DATASET}")
    import librosa

    for name, (genre, expected) in CLIPS.items():
        y, _ = librosa.load(DATASET / "Audio" / name, sr=M.SAMPLE_RATE)
        tags = model.predict(M.patches(M.logmel(y)))["tags"].mean(0)
        top5 = [t for t, _ in M.top_tags(tags, 5)]
        assert genre in top5[:3], (name, top5)
        assert len(set(top5) & set(expected)) >= 3, (name, top5, expected)
