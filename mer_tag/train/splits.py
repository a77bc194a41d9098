"""Splits stratified by label and grouped by artist: the same artist never on both sides of a split.

Songs by one artist share production, voice and era; with the artist on both sides a model scores
by recognising the artist, and the number means nothing for a listener's new music.
"""

from __future__ import annotations

import warnings

import numpy as np


def grouped_folds(labels, groups, n_folds: int, seed: int) -> list[np.ndarray]:
    """`n_folds` disjoint index arrays covering every item; each artist in exactly one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has fewer members than folds": expected, harmless
        warnings.simplefilter("ignore", UserWarning)
        return [held for _, held in splitter.split(np.zeros(len(labels)), labels, groups)]


def max_folds(labels, groups) -> int:
    """The most stratified grouped folds a set allows: no more than its largest class or its artists."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    if len(labels) == 0:
        return 0
    return int(min(np.unique(labels, return_counts=True)[1].max(), len(set(groups.tolist()))))


def grouped_holdout(labels, groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) indices with about `fraction` of the items held out, whole artists at a time.

    Small sets (a smoke run of a few songs) cannot be stratified into 1/fraction folds; there whole
    artists are drawn at random until the fraction is reached.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    n_folds = max(2, int(round(1.0 / fraction)))
    if n_folds <= max_folds(labels, groups):
        held = grouped_folds(labels, groups, n_folds, seed)[0]
    else:
        held = _random_groups(groups, fraction, seed)
    keep = np.setdiff1d(np.arange(len(labels)), held)
    return keep, np.sort(held)


def make_split(labels, groups, test_fraction: float, val_fraction: float, seed: int) -> dict[str, list[int]]:
    """train / val / test index lists. val (early stopping, fusion) is taken from what test leaves."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    dev, test = (
        grouped_holdout(labels, groups, test_fraction, seed)
        if test_fraction > 0
        else (np.arange(len(labels)), np.array([], dtype=int))
    )
    inner_train, inner_val = grouped_holdout(labels[dev], groups[dev], val_fraction / (1 - test_fraction), seed + 1)
    return {
        "train": sorted(dev[inner_train].tolist()),
        "val": sorted(dev[inner_val].tolist()),
        "test": sorted(test.tolist()),
    }


def preset_split(labels, groups, config: dict, seed: int = 0) -> dict[str, list[int]]:
    """The split a preset's `[split]` section asks for (`mer-tag train --seed` adds to its seed): train,
    cross-validation and distillation all call this, so they agree on which artists are the test."""
    section = config.get("split", {})
    return make_split(
        labels,
        groups,
        section.get("test_fraction", 0.2),
        section.get("val_fraction", 0.1),
        seed + section.get("seed", 0),
    )


def _random_groups(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for group in rng.permutation(sorted(set(groups.tolist()))):
        if len(held) >= max(1, round(fraction * len(groups))):
            break
        held.extend(np.flatnonzero(groups == group).tolist())
    return np.sort(np.asarray(held, dtype=int))
