"""One valence per track (issue #28): what the valence–arousal head reads, and how the words move it.

numpy only, shared by training (train/quadrant.py, train/valence.py) and the engines' predictor, so a head
never meets at inference a feature assembled otherwise than the ones it learned from.

- The head's input (`head_features`): musicnn's 50 Million-Song-Dataset tags as a broad prior (the teacher's
  output layer over each of the student's 3-s window embeddings, averaged over the song, as log-odds), the
  key and mode features of `tonal`, or the song's mean 200-d embedding (the 0.3 head), in the order the
  model's card lists them.
- The lyrics' evidence (`lyrics_shift`): where a track has lyrics, a lyrics valence and the audio's are
  fused by a logistic regression on their log-odds (learned on the MIREX-like songs through their
  clusters); the quadrant probabilities are then tilted towards the positive or the negative half by the
  change in log-odds (`tilt_quadrants`), so `valence` equals the fused value exactly and quadrant,
  valence and arousal still come from one distribution.
"""

from __future__ import annotations

import numpy as np

from mer_tag import tonal

# Head inputs, by name: how many values each adds.
TAG_COUNT = 50  # musicnn's MSD tags
KEY_FEATURES = tonal.FEATURE_NAMES[3:10]  # key strength and clarity, mode strength (song and 5-s segments)
INPUT_SIZES = {"embedding": 200, "tags": TAG_COUNT, "key": len(KEY_FEATURES), "dissonance": 3, "tonic": 12}
TONAL_SLICES = {"dissonance": slice(0, 3), "key": slice(3, 10), "tonic": slice(10, 22)}
LEGACY_INPUTS = ("embedding",)  # a card without `inputs`: the 0.3 head on the mean embedding

# Five-cluster index → valence side: Cheerful and Humorous positive, Wistful and Aggressive negative;
# Passionate (rousing, confident, boisterous) has no side.
CLUSTER_SIDES = (0, 1, -1, 1, -1)
POSITIVE_QUADRANTS = np.array([1.0, 0.0, 0.0, 1.0])  # Q1 positive/energetic … Q4 positive/calm


def tag_probabilities(windows: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """[50] mean tag probability over a song's window embeddings [..., 200] through musicnn's output layer
    (`weight` [50, 200], `bias` [50])."""
    flat = np.asarray(windows, dtype=np.float32).reshape(-1, weight.shape[1])
    logits = flat @ np.asarray(weight, dtype=np.float32).T + np.asarray(bias, dtype=np.float32)
    return (1.0 / (1.0 + np.exp(-logits))).mean(0)


def log_odds(p: np.ndarray | float, floor: float = 1e-6) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), floor, 1.0 - floor)
    return np.log(q / (1.0 - q))


def head_features(
    inputs: tuple[str, ...] | list[str],
    embedding: np.ndarray | None = None,
    tag_probs: np.ndarray | None = None,
    tonal_values: np.ndarray | None = None,
) -> np.ndarray:
    """The head's input vector for one song, its blocks in the order of `inputs`. ValueError when a block
    it names was not computed (a preset and its features out of step)."""
    blocks = []
    for name in inputs:
        if name == "embedding" and embedding is not None:
            blocks.append(np.asarray(embedding, dtype=np.float64).ravel())
        elif name == "tags" and tag_probs is not None:
            blocks.append(log_odds(tag_probs))
        elif name in TONAL_SLICES and tonal_values is not None:
            blocks.append(np.asarray(tonal_values, dtype=np.float64)[TONAL_SLICES[name]])
        else:
            raise ValueError(f"the valence–arousal head reads {name!r}, which was not computed for this track")
    return np.concatenate(blocks).astype(np.float32)


def input_size(inputs: tuple[str, ...] | list[str]) -> int:
    unknown = [name for name in inputs if name not in INPUT_SIZES]
    if unknown:
        raise ValueError(f"unknown valence–arousal inputs {unknown}; known: {', '.join(INPUT_SIZES)}")
    return sum(INPUT_SIZES[name] for name in inputs)


def tilt_quadrants(probs: np.ndarray, shift: float) -> np.ndarray:
    """Quadrant probabilities with the positive half's odds multiplied by exp(shift): valence's log-odds
    move by exactly `shift`; within each half the proportions stay."""
    weights = np.asarray(probs, dtype=np.float64) * np.exp(shift * POSITIVE_QUADRANTS)
    return weights / weights.sum(-1, keepdims=True)


def lyrics_shift(audio_valence: float, lyrics_valence: float, fusion: np.ndarray) -> float:
    """The change of valence's log-odds that the lyrics bring: fused log-odds (`fusion` = [weight on the
    audio's log-odds, weight on the lyrics', bias]) minus the audio's own."""
    a, b, c = (float(v) for v in fusion)
    audio = float(log_odds(audio_valence))
    return a * audio + b * float(log_odds(lyrics_valence)) + c - audio


def disagreement_share(valence: np.ndarray, clusters: np.ndarray) -> tuple[float, int]:
    """(share, n) of the tracks whose cluster has a valence side (clusters 1-based) on which `valence`
    (0–1) falls on the other side of 0.5."""
    sides = np.asarray(CLUSTER_SIDES)[np.asarray(clusters, dtype=int) - 1]
    sided = sides != 0
    if not sided.any():
        return 0.0, 0
    positive = np.asarray(valence)[sided] > 0.5
    return float(np.mean(positive != (sides[sided] > 0))), int(sided.sum())
