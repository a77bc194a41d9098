"""The valence–arousal head in `mer-tag train --quadrant-data` and `mer-tag crossval -b quadrant`.

Songs labelled with their quadrant of Russell's plane (the 4Q emotion dataset) go through the same audio
path as every other song (`extract.extract_branch`, i.e. `prepare` and the frozen front-end); the head's
input per song is what `[quadrant] inputs` names (mer_tag.valence.head_features: the window embeddings
averaged over the whole song, as the 0.3 head read; or musicnn's tag prior over the windows and the key and
mode features `prepare` read beside the log-mel), and a standardised logistic regression learns the quadrant
(`models.quadrant.QuadrantHead`).

Same protocol as the cluster branches: whole artists held out as test (scored, never used to choose
anything), the head fit on the others; with `[final] refit_all` the shipped head is then refit on every
song. Cross-validation holds out whole artists per fold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mer_tag.labels import QUADRANTS
from mer_tag.models.quadrant import ENERGETIC, POSITIVE, pool_track
from mer_tag.train.recipe import TrainError, stratified_subset

# [quadrant] in a preset. C: inverse L2 strength of the logistic regression (the default preset's comment has
# the cross-validation that chose 0.01); inputs: the blocks of the head's input (mer_tag.valence.INPUT_SIZES).
DEFAULTS = {"C": 0.01, "class_weights": True, "max_iter": 2000, "inputs": ["embedding"]}
TONAL_INPUTS = ("key", "dissonance", "tonic")  # need [audio.features] tonal = true


class QuadrantDataError(TrainError):
    """Data or a preset the valence–arousal head cannot learn from (a usage error, as every TrainError)."""


@dataclass
class QuadrantSongs:
    """The head's input per song [n, D], quadrant labels (0–3), artist groups and reading problems of a
    dataset."""

    pooled: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    examples: list
    problems: list


def quadrant_dataset(data, config: dict):
    """The quadrant-labelled dataset at `data`, after checking that `config` can learn from it: a
    QuadrantDataError says why not (cheap: nothing is decoded, so `train` asks before the long work)."""
    from mer_tag.models import FROZEN_FRONTENDS
    from mer_tag.train.datasets import load_dataset

    frontend = config.get("audio", {}).get("features", {}).get("frontend", "logmel")
    if frontend not in FROZEN_FRONTENDS:
        raise QuadrantDataError(
            f"the valence–arousal head reads a frozen front-end's embeddings ({', '.join(FROZEN_FRONTENDS)}); "
            f"this preset's audio front-end is {frontend!r}"
        )
    inputs = head_inputs(config)
    features = config.get("audio", {}).get("features", {})
    tonal = bool(features.get("tonal", False))
    needs_tonal = [name for name in inputs if name in TONAL_INPUTS]
    if needs_tonal and not tonal:
        raise QuadrantDataError(
            f"[quadrant] inputs {needs_tonal} are read from the spectrum while decoding: set "
            "[audio.features] tonal = true"
        )
    if "dissonance" in inputs and not features.get("dissonance", True):
        raise QuadrantDataError(
            "[quadrant] inputs name 'dissonance', which [audio.features] dissonance = false leaves out"
        )
    dataset = load_dataset(data)
    if dataset.labels.names != QUADRANTS.names:
        raise QuadrantDataError(
            f"{data}: the valence–arousal head learns from songs labelled with their quadrant (Q1–Q4, as in the "
            f"4Q emotion dataset); this dataset's labels are {', '.join(dataset.labels.names)}"
        )
    return dataset


def quadrant_songs(
    dataset, config: dict, cache, jobs: int, progress, limit: int = 0, seed: int = 0, precision: str = "fp32"
) -> QuadrantSongs:
    """Pool every usable song's front-end embeddings (the front-end in `precision`), for a dataset
    `quadrant_dataset` gave."""
    from mer_tag.train.datasets import artist_group
    from mer_tag.train.extract import extract_branch

    examples = stratified_subset(dataset.examples, limit, seed) if limit else dataset.examples
    audio, problems = extract_branch("audio", config, examples, cache, jobs, progress, precision)
    keep = [i for i, x in enumerate(audio) if x is not None]
    tonal = song_tonal(config, [examples[i] for i in keep], cache, jobs, progress, precision)
    examples = [examples[i] for i in keep]
    inputs = head_inputs(config)
    return QuadrantSongs(
        pooled=song_features(inputs, [audio[i] for i in keep], tonal),
        y=np.array([e.label for e in examples], dtype=int),
        groups=np.array([artist_group(e.artist, e.id) for e in examples]),
        examples=examples,
        problems=problems + list(dataset.problems),
    )


def head_inputs(config: dict) -> tuple[str, ...]:
    """The blocks of the head's input a preset names (validated), the 0.3 head's without any."""
    from mer_tag.valence import input_size

    inputs = tuple(config.get("quadrant", {}).get("inputs", DEFAULTS["inputs"]))
    try:
        input_size(inputs)
    except ValueError as exc:
        raise QuadrantDataError(f"[quadrant] inputs: {exc}") from None
    return inputs


def song_tonal(config: dict, examples: list, cache, jobs: int, progress, precision: str) -> list:
    """Each song's tonal features (None each without `[audio.features] tonal`), from the feature cache the
    audio extraction just filled."""
    from mer_tag.features import AudioConfig, config_from_json
    from mer_tag.train.extract import extract_tonal

    audio_config = config_from_json(AudioConfig, config.get("audio", {}).get("features", {}))
    if not audio_config.tonal:
        return [None] * len(examples)
    return extract_tonal([e.audio_path for e in examples], audio_config, cache, jobs, progress, precision)


@functools.lru_cache(maxsize=1)
def tag_layer() -> tuple[np.ndarray, np.ndarray]:
    """musicnn's output layer (weights [50, 200], bias [50]): the tag prior over the student's windows."""
    from mer_tag.models.musicnn import Musicnn

    output = Musicnn.load().output
    return output.weight.detach().numpy().copy(), output.bias.detach().numpy().copy()


def song_features(inputs: tuple[str, ...], windows: list, tonal: list) -> np.ndarray:
    """[n, D] the head's input for each song from its window embeddings [chunks, windows, 200] and its
    tonal features (or None)."""
    from mer_tag.valence import head_features, input_size, tag_probabilities

    if not windows:
        return np.zeros((0, input_size(inputs)), np.float32)
    layer = tag_layer() if "tags" in inputs else None
    rows = []
    for song_windows, song_tonal in zip(windows, tonal, strict=True):
        tags = tag_probabilities(song_windows, *layer) if layer is not None else None
        rows.append(head_features(inputs, pool_track(song_windows), tags, song_tonal))
    return np.stack(rows)


def fit_head(pooled: np.ndarray, y: np.ndarray, section: dict, seed: int = 0):
    """A QuadrantHead fitted on the songs' head inputs: standardise, then an L2 logistic regression."""
    from sklearn.linear_model import LogisticRegression

    from mer_tag import models

    settings = {**DEFAULTS, **section}
    inputs = [str(name) for name in settings["inputs"]]
    mean, std = pooled.mean(0), pooled.std(0).clip(min=1e-6)
    classifier = LogisticRegression(
        C=float(settings["C"]),
        class_weight="balanced" if settings["class_weights"] else None,
        max_iter=int(settings["max_iter"]),
        random_state=seed,
    )
    classifier.fit((pooled - mean) / std, y)
    coef, intercept = _all_classes(classifier, len(QUADRANTS))
    dims = {"arch": "quadrant", "embed_dim": int(pooled.shape[1]), "n_classes": len(QUADRANTS)}
    if inputs != DEFAULTS["inputs"]:
        dims["inputs"] = inputs  # a 0.3 card has no inputs: it keeps loading as it was
    head = models.build(dims)
    head.set_weights(mean, std, coef, intercept)
    if "tags" in inputs:
        import torch

        weight, bias = tag_layer()
        head.tag_weight.copy_(torch.from_numpy(weight))
        head.tag_bias.copy_(torch.from_numpy(bias))
    return head.eval()


def _all_classes(classifier, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients for every quadrant, even one missing from a small training set (it gets logit -inf's
    stand-in, a very low bias, so it is never predicted)."""
    coef = np.zeros((n_classes, classifier.coef_.shape[1]), dtype=np.float32)
    intercept = np.full(n_classes, -30.0, dtype=np.float32)
    classes = classifier.classes_.astype(int)
    if len(classes) == 2:  # sklearn's binary form: one row for the second class against the first
        coef[classes[1]], intercept[classes[1]] = classifier.coef_[0], classifier.intercept_[0]
        intercept[classes[0]] = 0.0
    else:
        coef[classes], intercept[classes] = classifier.coef_, classifier.intercept_
    return coef, intercept


def head_probs(head, pooled: np.ndarray) -> np.ndarray:
    """[n, 4] quadrant probabilities."""
    import torch

    with torch.inference_mode():
        return torch.softmax(head(torch.from_numpy(pooled.astype(np.float32))), -1).numpy()


def quadrant_scores(y: np.ndarray, probs: np.ndarray) -> dict:
    """Quadrant scores (as every branch's) plus how often valence and arousal alone are right."""
    from mer_tag.train.evaluate import scores

    result = scores(y, probs, QUADRANTS.names)
    if len(y):
        for name, side in (("valence", POSITIVE), ("arousal", ENERGETIC)):
            truth = np.asarray(side)[y] > 0.5
            result[f"{name}_accuracy"] = float(((probs @ np.asarray(side) > 0.5) == truth).mean())
    return result


def train_quadrant(
    dataset, config: dict, cache, jobs: int, progress, seed: int, limit: int, log, precision: str = "fp32"
):
    """(shipped head, {'test': scores}, card section, problems) for `mer-tag train`, from a dataset
    `quadrant_dataset` gave; the front-end in `precision`."""
    from mer_tag.bundle import seen_record
    from mer_tag.train.splits import preset_split

    section = config.get("quadrant", {})
    data = dataset.root
    songs = quadrant_songs(dataset, config, cache, jobs, progress, limit, seed, precision)
    if len(set(songs.y.tolist())) < 2:
        raise QuadrantDataError(f"{data}: fewer than two quadrants among the usable songs")
    split = preset_split(songs.y, songs.groups, config, seed)
    fit = split["train"] + split["val"]  # no early stopping here: val joins the fit
    head = fit_head(songs.pooled[fit], songs.y[fit], section, seed)
    test = split["test"]
    metrics = {"test": quadrant_scores(songs.y[test], head_probs(head, songs.pooled[test])) if test else {"n": 0}}
    log(
        f"valence–arousal: {len(songs.y)} songs from {data}; test quadrant macro-F1 "
        f"{metrics['test'].get('macro_f1', float('nan')):.3f}, valence accuracy "
        f"{metrics['test'].get('valence_accuracy', float('nan')):.3f}, arousal accuracy "
        f"{metrics['test'].get('arousal_accuracy', float('nan')):.3f} ({len(test)} songs, artists unseen)"
    )
    if config.get("final", {}).get("refit_all", False):
        head = fit_head(songs.pooled, songs.y, section, seed)
        fit = list(range(len(songs.y)))
    card = {
        "labels": QUADRANTS.to_json(),
        "data": {
            "root": str(data),
            "songs": len(songs.y),
            "split_sizes": {k: len(v) for k, v in split.items()},
            "seen": seen_record(songs.examples[i].audio_path for i in fit),  # what `mer-tag eval` leaves out
        },
        "settings": {**DEFAULTS, **section},
    }
    return head, metrics, card, songs.problems


def crossval_quadrant(songs: QuadrantSongs, section: dict, folds: int, seed: int) -> dict[str, list[float]]:
    """Per-fold scores of the head over artist-grouped folds, and the accuracy of the most confident songs
    pooled over the folds (one value per seed)."""
    from mer_tag.train.evaluate import accuracy_by_coverage, coverage_scores
    from mer_tag.train.splits import grouped_folds

    scores: dict[str, list[float]] = {}
    pooled_probs = np.zeros((len(songs.y), len(QUADRANTS)))
    for held in grouped_folds(songs.y, songs.groups, folds, seed):
        fit = np.setdiff1d(np.arange(len(songs.y)), held)
        probs = head_probs(fit_head(songs.pooled[fit], songs.y[fit], section, seed), songs.pooled[held])
        pooled_probs[held] = probs
        for key in ("macro_f1", "accuracy", "top2_accuracy", "valence_accuracy", "arousal_accuracy"):
            scores.setdefault(key, []).append(quadrant_scores(songs.y[held], probs)[key])
    for key, value in coverage_scores(accuracy_by_coverage(songs.y, pooled_probs)).items():
        scores.setdefault(key, []).append(value)
    return scores
