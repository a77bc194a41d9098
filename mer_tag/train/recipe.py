"""The training recipe, shared by `mer-tag train` (run.py), `mer-tag crossval` (crossval.py) and the
valence–arousal head (quadrant.py): presets, and the outer policy that makes each branch and the fusion.

A branch trains on its `fit` songs, early-stops on `stop`, then is refit on artist-grouped folds of `fit`
for the epochs chosen: those fold models' predictions on songs they never trained on (out-of-fold), plus
the branch's predictions on `stop`, are what the fusion learns from.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_tag.errors import MerTagError, first_line
from mer_tag.models import combine
from mer_tag.models.fusion import BRANCHES
from mer_tag.train.branches import fusion_items, make_branch

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
MIN_SONGS_PER_CLASS = 2  # a lyrics or MIDI branch needs this many training songs with it per class, or is left out


class TrainError(MerTagError):
    """A preset, or data, that training cannot use."""


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml") if not p.stem.startswith("tag-"))


def load_preset(preset: str | Path) -> dict:
    path = Path(preset)
    if not path.exists():
        path = PRESETS_DIR / f"{preset}.toml"
    if not path.is_file():
        raise TrainError(f"no preset {preset!r}: choose one of {', '.join(preset_names())} or give a .toml path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TrainError(f"preset {path}: {first_line(exc)}") from None
    data.setdefault("name", path.stem)
    return data


def stratified_subset(examples, limit, seed):
    """A small stratified subset (smoke runs): `limit` songs, classes interleaved."""
    by_class = {}
    for e in examples:
        by_class.setdefault(e.label, []).append(e)
    picked, order = [], sorted(by_class)
    while len(picked) < min(limit, len(examples)):
        for label in order:
            if by_class[label] and len(picked) < limit:
                picked.append(by_class[label].pop(0))
    return picked


# ------------------------------------------------------------------ branches


@dataclass
class RecipeBranch:
    """One branch as the recipe makes it: its trainer, the model as shipped (the mean of the full and fold models
    where `[final] ensemble` names the branch), the full model alone, its history, the fold models, and song →
    out-of-fold probabilities over fit + stop (what the fusion learns from)."""

    trainer: object
    model: object
    single: object
    history: object
    fold_models: list
    oof: dict


def branch_skip_reason(config: dict, name: str, n_train: int, n_classes: int) -> str | None:
    """Why the recipe leaves a branch out, or None. Audio is never left out for want of songs: every song kept
    has it, and the fusion needs at least one branch."""
    if config.get(name, {}).get("enabled", True) is False:
        return "off in this preset"
    if name != "audio" and n_train < MIN_SONGS_PER_CLASS * n_classes:
        return f"only {n_train} training songs have it"
    return None


def fit_recipe_branch(config, name, items, y, groups, fit, stop, seed, n_classes, epochs=0, progress=None):
    """The recipe's outer policy for one branch, shared by `train` and `crossval --branch fused`: the songs
    of `fit`/`stop` that have the modality, the skip rule, the preset section (`epochs` overrides its epoch
    count), `fit_branch`, the ensemble. Returns a RecipeBranch, or None when the branch is left out."""
    fit = [i for i in fit if items[i] is not None]
    stop = [i for i in stop if items[i] is not None]
    if branch_skip_reason(config, name, len(fit), n_classes):
        return None
    section = dict(config.get(name, {}))
    if epochs:
        section["epochs"] = epochs
    frontend = config.get("audio", {}).get("features", {}).get("frontend", "logmel")
    branch = make_branch(name, section, n_classes, frontend)
    model, history, fold_models, oof = fit_branch(
        branch, items, y, groups, fit, stop, config.get("fusion", {}).get("folds", 5), seed, n_classes, progress
    )
    shipped = model
    if name in set(config.get("final", {}).get("ensemble", [])) and fold_models:
        shipped = combine([model, *fold_models])
    return RecipeBranch(branch, shipped, model, history, fold_models, oof)


def fit_branch(branch, items, y, groups, fit, stop, n_folds, seed, n_classes, progress=None):
    """One branch as a run makes it: trained on the `fit` songs, early-stopped on `stop`, then refit on grouped
    folds of `fit` for the epochs chosen. Returns (model, history, fold models, song → out-of-fold
    probabilities over fit + stop: what the fusion learns from)."""
    model, history = branch.train(
        [items[i] for i in fit], y[fit], [items[i] for i in stop], y[stop], n_classes, seed, progress
    )
    oof, fold_models = cross_fit(branch, items, y, fit, groups, history.best_epoch, n_folds, seed, n_classes)
    oof.update(zip(stop, branch_probs(branch, model, items, stop)))
    return model, history, fold_models, oof


def cross_fit(branch, items, y, idx, groups, epochs, n_folds, seed, n_classes) -> tuple[dict, list]:
    """(song index → probabilities from a model refit without that song's artist, the fold models)."""
    from mer_tag.train.splits import grouped_folds, max_folds

    idx = np.asarray(idx)
    n_folds = min(n_folds, max_folds(y[idx], np.asarray(groups)[idx])) if len(idx) else 0
    if n_folds < 2:
        return {}, []  # too few songs to fold: the fusion learns from validation predictions alone
    out: dict[int, np.ndarray] = {}
    models: list = []
    for k, held in enumerate(grouped_folds(y[idx], np.asarray(groups)[idx], n_folds, seed)):
        fit_idx = idx[np.setdiff1d(np.arange(len(idx)), held)]
        model, _ = branch.train(
            [items[i] for i in fit_idx], y[fit_idx], None, None, n_classes, seed + 100 + k, None, epochs=max(1, epochs)
        )
        out.update(zip(idx[held], branch.predict(model, [items[i] for i in idx[held]])))
        models.append(model)
    return out, models


def branch_probs(trainer, model, items, idx):
    """A trained branch's probabilities per song (None where the song lacks the modality)."""
    if model is None:
        return [None] * len(idx)
    have = [i for i in idx if items[i] is not None]
    probs = dict(zip(have, trainer.predict(model, [items[i] for i in have]))) if have else {}
    return [probs.get(i) for i in idx]


# ------------------------------------------------------------------ the fusion


def fit_fusion(section, oof, idx, y, n_classes, seed):
    """The fusion trainer and model, fitted on the out-of-fold probabilities of the songs in `idx`."""
    fusion = make_branch(
        "fusion",
        {
            "epochs": 300,
            "batch_size": 64,
            "lr": 1e-2,
            "weight_decay": 1e-3,
            "optimizer": "adamw",
            **section,
            "model": {"branches": list(BRANCHES), **section.get("model", {})},
        },
        n_classes,
    )
    fit_idx = [i for i in idx if i in oof.get("audio", {})]
    fit_probs = {b: [oof.get(b, {}).get(i) for i in fit_idx] for b in BRANCHES}
    items, source = fusion_items(fit_probs, BRANCHES, n_classes, subsets=True)
    model, _ = fusion.train(items, y[np.asarray(fit_idx)][source], None, None, n_classes, seed, None)
    return fusion, model


def fused_probs(fusion, model, held_probs: dict[str, list], n_classes: int) -> np.ndarray:
    """The fusion's [songs, K] answer from each branch's probabilities per song (None where absent)."""
    return fusion.predict(model, fusion_items(held_probs, BRANCHES, n_classes, subsets=False)[0])
