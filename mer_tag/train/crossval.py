"""`mer-tag crossval`: artist-grouped cross-validation of a preset, one branch alone or the whole recipe.

The songs are the preset split's train + val (its test artists are left out, untouched, so a choice made
here never peeks at the numbers `train` reports). Each fold holds out whole artists; inside the rest, a
grouped 1/8 is kept for early stopping, as `train` does with `val`. Every fold gives macro-F1 and accuracy;
a report is their mean and spread over folds × seeds.

A branch alone (`audio`, `lyrics`, `midi`) is trained once per fold. For the audio branch each excerpt (a
`chunk_seconds` piece of a song) is also scored alone, against its song's label: with excerpts shorter than
the clips, that is the per-excerpt accuracy a paper reports for its "clip" setting.

`fused` runs the whole `train` recipe inside each fold (`recipe.fit_recipe_branch`, the same outer policy):
every branch early-stopped on the fold's grouped 1/8, refit on inner folds for out-of-fold probabilities,
ensembled as the preset ships it, and the fusion learned on those; it scores each branch and the fused
answer on the held-out artists. `probs` keeps every fold's probabilities, so another fusion can be tried
without retraining a branch (research/probe_features.py).

`quadrant` cross-validates the valence–arousal head (train/quadrant.py) on quadrant-labelled songs (the 4Q
emotion dataset): quadrant macro-F1 and accuracy, valence and arousal accuracy per fold.

Every fused or quadrant report also gives accuracy against coverage: the accuracy of the 10 %, 25 %, 50 %,
75 % most confident held-out songs, over all folds of a seed (one value per seed).

The frozen encoders run in `precision` (fp32 unless asked, as `train`); the library leaves torch's thread
count alone (`mer-tag crossval` sets it for its own process).
"""

from __future__ import annotations

import ast
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mer_tag.errors import MerTagError
from mer_tag.models.fusion import BRANCHES

if TYPE_CHECKING:
    from mer_tag.train.extract import FeatureCache

CHOICES = (*BRANCHES, "fused", "quadrant")  # what `--branch` takes: one branch alone, the whole recipe, the head
STOP_FRACTION = 1 / 8  # of a fold's training artists, held out for early stopping (as `val` in a run)


class CrossvalError(MerTagError):
    pass


def override(config: dict, assignment: str) -> None:
    """`a.b.c=value` sets config['a']['b']['c'] (value parsed as a Python literal when it is one); a dict
    value replaces a whole section, so another architecture's settings do not leak into the new one."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise CrossvalError(f"--set {assignment!r}: expected KEY=VALUE, e.g. audio.epochs=10")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    *path, last = key.strip().split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CrossvalError(f"--set {assignment!r}: {part!r} is a value, not a section")
    _check_fits(assignment, node, last, value)
    node[last] = value


def _check_fits(assignment: str, section: dict, key: str, value) -> None:
    """A CrossvalError, before any work, for a value of another kind than the preset's (a section for a
    number, text for a number), or a new key a letter or two from one the section has (a typo would
    otherwise leave the preset's value in force without a word). A key the preset leaves to the code's
    default is new, and taken."""
    import difflib

    if key not in section:
        near = difflib.get_close_matches(key, [k for k in section if isinstance(k, str)], n=1, cutoff=0.8)
        if near:
            raise CrossvalError(f"--set {assignment!r}: the preset has no {key!r}; did you mean {near[0]!r}?")
        return
    old = section[key]
    if isinstance(old, dict) != isinstance(value, dict):
        kind = "a section" if isinstance(old, dict) else "a value"
        raise CrossvalError(f"--set {assignment!r}: {key!r} is {kind} in the preset")
    numbers = (int, float)
    same = isinstance(value, type(old)) or (isinstance(old, numbers) and isinstance(value, numbers))
    if not isinstance(old, dict) and (not same or isinstance(value, bool) != isinstance(old, bool)):
        raise CrossvalError(
            f"--set {assignment!r}: {key!r} is {type(old).__name__} in the preset ({old!r}), not {value!r}"
        )


# ------------------------------------------------------------------ the folds


def fold_splits(y, groups, folds: int, seed: int):
    """(k, fit, stop, held) per grouped fold: `held` whole artists, `stop` a grouped 1/8 of the rest for early
    stopping, `fit` the others. Indices into `y`."""
    from mer_tag.train.splits import grouped_folds, grouped_holdout

    y, groups = np.asarray(y), np.asarray(groups)
    for k, held in enumerate(grouped_folds(y, groups, folds, seed)):
        rest = np.setdiff1d(np.arange(len(y)), held)
        fit, stop = grouped_holdout(y[rest], groups[rest], STOP_FRACTION, seed + k)
        yield k, rest[fit], rest[stop], held


def grouped_fold_scores(y, groups, folds: int, seed: int, n_classes: int, fit_predict) -> list[float]:
    """Macro-F1 of each grouped fold; `fit_predict(fit, stop, held, fold_seed)` trains on `fit` (early
    stopping on `stop`) and returns the `held` songs' predicted classes."""
    from mer_tag.train.evaluate import macro_f1

    y = np.asarray(y)
    return [
        macro_f1(y[held], fit_predict(fit, stop, held, seed + k), n_classes)
        for k, fit, stop, held in fold_splits(y, groups, folds, seed)
    ]


def crossval_branch(branch, items, y, groups, folds: int, seed: int, n_classes: int) -> dict[str, list[float]]:
    """One branch per grouped fold: macro-F1 and accuracy of its song answers on the held artists, and for
    audio also of each excerpt alone (`excerpt_*`)."""
    scores: dict[str, list[float]] = {}
    for k, fit, stop, held in fold_splits(y, groups, folds, seed):
        model, history = branch.train(
            [items[i] for i in fit], y[fit], [items[i] for i in stop], y[stop], n_classes, seed + k, None
        )
        scores.setdefault("best_epoch", []).append(history.best_epoch)
        held_items = [items[i] for i in held]
        if hasattr(branch, "predict_excerpts"):
            song_probs, excerpts = branch.predict_excerpts(model, held_items)
            excerpt_truth = np.repeat(y[held], [len(p) for p in excerpts])
            _add(scores, "excerpt_", excerpt_truth, np.concatenate(excerpts).argmax(1), n_classes)
            scores.setdefault("held_excerpts", []).append(len(excerpt_truth))
        else:
            song_probs = branch.predict(model, held_items)
        _add(scores, "", y[held], song_probs.argmax(1), n_classes)
        scores.setdefault("held_songs", []).append(len(held))
    return scores


def _add(scores: dict, prefix: str, truth, predicted, n_classes: int) -> None:
    from mer_tag.train.evaluate import macro_f1

    scores.setdefault(f"{prefix}macro_f1", []).append(macro_f1(truth, predicted, n_classes))
    scores.setdefault(f"{prefix}accuracy", []).append(float(np.mean(truth == predicted)))


def crossval_fused(
    config, features, y, groups, folds: int, seed: int, n_classes: int, probs_out: dict, log=print
) -> dict[str, dict[str, list[float]]]:
    """Per grouped fold, macro-F1 and accuracy of each branch (on the held songs that have it) and of the fused
    answer, every model trained as `train` trains it, with the held artists unseen."""
    from mer_tag.train.recipe import branch_probs, fit_fusion, fit_recipe_branch, fused_probs

    scores: dict[str, dict] = {name: {} for name in (*BRANCHES, "fused")}
    for k, fit, stop, held in fold_splits(y, groups, folds, seed):
        rest = np.sort(np.concatenate([fit, stop]))
        oof, held_probs = {}, {}
        for name in BRANCHES:
            made = fit_recipe_branch(config, name, features[name], y, groups, fit, stop, seed + k, n_classes)
            oof[name] = made.oof if made else {}
            held_probs[name] = (
                branch_probs(made.trainer, made.model, features[name], held) if made else [None] * len(held)
            )
            on = [j for j, p in enumerate(held_probs[name]) if p is not None]
            _add_present(scores[name], y[held][on], [held_probs[name][j] for j in on], n_classes)
            _keep_probs(probs_out, f"s{seed}f{k}_{name}", oof[name], dict(zip(held, held_probs[name])))
        fusion, fusion_model = fit_fusion(config.get("fusion", {}), oof, rest.tolist(), y, n_classes, seed + k)
        fused = fused_probs(fusion, fusion_model, held_probs, n_classes)
        _add(scores["fused"], "", y[held], fused.argmax(1), n_classes)
        probs_out[f"s{seed}f{k}_fused_held"] = np.column_stack([held, fused])
        log(f"  fold {k} (seed {seed}): " + ", ".join(f"{n} {v['macro_f1'][-1]:.3f}" for n, v in scores.items()))
    return scores


def _add_present(scores: dict, truth, probs: list, n_classes: int) -> None:
    """Scores over the held songs that have the modality (NaN when none does)."""
    if probs:
        _add(scores, "", truth, np.array([p.argmax() for p in probs]), n_classes)
    else:
        scores.setdefault("macro_f1", []).append(float("nan"))
        scores.setdefault("accuracy", []).append(float("nan"))


def _keep_probs(probs_out: dict, key: str, oof: dict, held: dict) -> None:
    """Rows of [song index, probabilities...] for the fold's out-of-fold (fusion training) and held songs."""
    for part, probs in (("oof", oof), ("held", held)):
        rows = [[i, *p] for i, p in sorted(probs.items()) if p is not None]
        if rows:  # a branch left out of the fold (too few songs have it) keeps nothing
            probs_out[f"{key}_{part}"] = np.asarray(rows, dtype=float)


# ------------------------------------------------------------------ a whole cross-validation


def dev_songs(dataset, config: dict, limit: int = 0, ungrouped: bool = False):
    """(examples, labels, groups) of the preset split's train + val songs (its test artists left out);
    `limit` keeps a stratified subset (smoke runs); `ungrouped` makes every song its own group."""
    from mer_tag.train.datasets import artist_group
    from mer_tag.train.recipe import stratified_subset
    from mer_tag.train.splits import preset_split

    y = np.array([e.label for e in dataset.examples])
    groups = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = preset_split(y, groups, config)
    dev = sorted(split["train"] + split["val"])  # the test artists stay unseen
    if ungrouped:  # after the split: the test artists still stay unseen
        groups = np.array([e.id for e in dataset.examples])
    if limit:
        kept = {id(e) for e in stratified_subset([dataset.examples[i] for i in dev], limit, 0)}
        dev = [i for i in dev if id(dataset.examples[i]) in kept]
    return [dataset.examples[i] for i in dev], y[dev], groups[dev]


def check_counts(folds: int, seeds: int) -> None:
    """CrossvalError for a fold or seed count no cross-validation can run, before anything is read."""
    if folds < 2:
        raise CrossvalError(
            f"--folds {folds}: cross-validation needs at least 2 folds (each is held out once while the others train)"
        )
    if seeds < 1:
        raise CrossvalError(f"--seeds {seeds}: at least 1 (each seed is one more split into folds)")


def check_folds_fit(folds: int, y, groups, ungrouped: bool = False) -> None:
    """CrossvalError when the songs cannot be cut into `folds` stratified folds of whole artists: no more folds
    than artists, nor than songs in the largest class. Reads labels only: nothing is extracted yet."""
    from mer_tag.train.splits import max_folds

    most = max_folds(y, groups)
    if folds > most:
        what = "songs" if ungrouped else "artists"
        raise CrossvalError(
            f"--folds {folds}: these {len(y)} songs ({len(set(np.asarray(groups).tolist()))} {what}) allow at most "
            f"{most} folds{'' if most < 2 else f'; try --folds {most}'}"
        )


def crossval(
    data,
    preset="default",
    branches=("fused",),
    overrides=(),
    folds: int = 5,
    seeds: int = 1,
    cache: str | Path | None = ".cache/features",
    jobs: int = 2,
    ungrouped: bool = False,
    limit: int = 0,
    probs: str | Path | None = None,
    label_map: str | None = None,
    log=print,
    precision: str = "fp32",
) -> dict:
    """Cross-validate `branches` of `preset` on `data`, the frozen encoders in `precision` ('fp32', 'bf16' or
    'auto', as `train`); returns the report (`--json` writes it)."""
    from mer_tag.models.precision import resolve
    from mer_tag.train.datasets import load_dataset
    from mer_tag.train.extract import FeatureCache
    from mer_tag.train.recipe import load_preset

    unknown = [b for b in branches if b not in CHOICES]
    if unknown or not branches:
        raise CrossvalError(f"--branch {', '.join(unknown) or '(none)'}: choose from {', '.join(CHOICES)}")
    check_counts(folds, seeds)
    precision = resolve(precision)
    config = load_preset(preset)
    for assignment in overrides:
        override(config, assignment)
    if label_map:
        config.setdefault("labels", {})["map"] = label_map
    dataset = load_dataset(data, config.get("labels", {}).get("map"))
    examples, y, groups = dev_songs(dataset, config, limit, ungrouped)
    quadrants = _quadrant_dev(data, config, ungrouped) if "quadrant" in branches else None
    # Every count checked before any feature is extracted: a bad --folds is one line at once, not after minutes.
    if set(branches) - {"quadrant"}:
        check_folds_fit(folds, y, groups, ungrouped)
    if quadrants is not None:
        _, quadrant_y, quadrant_groups = quadrants
        check_folds_fit(folds, quadrant_y, quadrant_groups, ungrouped)
    names = dataset.labels.names
    report = {
        "preset": config.get("name"),
        "overrides": list(overrides),
        "label_map": config.get("labels", {}).get("map"),
        "labels": list(names),
        "folds": folds,
        "seeds": seeds,
        "grouped_by_artist": not ungrouped,
        "encoder_precision": precision,
        "branches": {},
    }
    extraction = Extraction(FeatureCache(Path(cache) if cache else None), jobs, precision)
    kind = "UNGROUPED" if ungrouped else "grouped"
    if "fused" in branches:
        _fused_report(config, examples, y, groups, extraction, folds, seeds, len(names), probs, report, kind, log)
    if quadrants is not None:
        _quadrant_report(quadrants[0], config, extraction, folds, seeds, limit, ungrouped, report, kind, log)
    for name in (b for b in branches if b not in ("fused", "quadrant")):
        _branch_report(config, name, examples, y, groups, extraction, folds, seeds, len(names), report, kind, log)
    return report


@dataclass
class Extraction:
    """How a cross-validation makes its features: the cache, the decode workers, the encoders' precision."""

    cache: FeatureCache
    jobs: int
    precision: str

    def of(self, name: str, config: dict, examples) -> list:
        """`name`'s features for `examples` (None where a song lacks the modality)."""
        from mer_tag.train.extract import extract_branch

        return extract_branch(name, config, examples, self.cache, self.jobs, _quiet, self.precision)[0]


def _branch_report(config, name, examples, y, groups, extraction, folds, seeds, n_classes, report, kind, log):
    from mer_tag.train.branches import make_branch

    items = extraction.of(name, config, examples)
    have = [i for i, x in enumerate(items) if x is not None]
    branch = make_branch(
        name,
        dict(config.get(name, {})),
        n_classes,
        config.get("audio", {}).get("features", {}).get("frontend", "logmel"),
    )
    started, scores = time.time(), {}
    for seed in range(seeds):
        for key, values in crossval_branch(
            branch, [items[i] for i in have], y[have], groups[have], folds, seed, n_classes
        ).items():
            scores.setdefault(key, []).extend(values)
    _record(report, name, len(have), scores, time.time() - started, folds, seeds, kind, log)


def _fused_report(config, examples, y, groups, extraction, folds, seeds, n_classes, probs_path, report, kind, log):
    """The whole recipe cross-validated; scores into `report`, probabilities to `probs_path`."""
    features = {}
    for name in BRANCHES:
        off = name != "audio" and config.get(name, {}).get("enabled", True) is False  # not needed: not extracted
        features[name] = [None] * len(examples) if off else extraction.of(name, config, examples)
    keep = [i for i, x in enumerate(features["audio"]) if x is not None]  # as `train`: no audio, no song
    features = {name: [items[i] for i in keep] for name, items in features.items()}
    y, groups = y[keep], groups[keep]
    started, scores, probs = time.time(), {}, {"labels": y}
    for seed in range(seeds):
        for name, per_metric in crossval_fused(config, features, y, groups, folds, seed, n_classes, probs, log).items():
            for key, values in per_metric.items():
                scores.setdefault(name, {}).setdefault(key, []).extend(values)
        for key, value in _seed_coverage(probs, seed, y).items():
            scores["fused"].setdefault(key, []).append(value)
    for name, per_metric in scores.items():
        songs = len(y) if name in ("fused", "audio") else sum(x is not None for x in features[name])
        _record(report, f"fused:{name}", songs, per_metric, time.time() - started, folds, seeds, kind, log)
    if probs_path:
        from mer_tag import _fs

        with _fs.atomic_file(probs_path, suffix=".npz") as tmp:  # np.savez adds .npz to a name without it
            np.savez_compressed(tmp, **probs)


def _seed_coverage(probs: dict, seed: int, y) -> dict[str, float]:
    """Accuracy of the most confident fused answers over every held-out song of one seed's folds."""
    from mer_tag.train.evaluate import accuracy_by_coverage, coverage_scores

    held = np.concatenate([v for k, v in probs.items() if k.startswith(f"s{seed}f") and k.endswith("_fused_held")])
    index, song_probs = held[:, 0].astype(int), held[:, 1:]
    return coverage_scores(accuracy_by_coverage(y[index], song_probs))


def _quadrant_dev(data, config: dict, ungrouped: bool):
    """(the quadrant dataset, its dev songs' labels and groups): what the head's folds will be cut from, read
    (no audio decoded) so that a fold count they cannot take is refused first."""
    from mer_tag.train.datasets import artist_group
    from mer_tag.train.quadrant import quadrant_dataset
    from mer_tag.train.splits import preset_split

    dataset = quadrant_dataset(data, config)
    y = np.array([e.label for e in dataset.examples], dtype=int)
    groups = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = preset_split(y, groups, config)
    dev = sorted(split["train"] + split["val"])
    return dataset, y[dev], (np.array([e.id for e in dataset.examples]) if ungrouped else groups)[dev]


def _quadrant_report(dataset, config, extraction, folds, seeds, limit, ungrouped, report, kind, log) -> None:
    """The valence–arousal head cross-validated on the preset split's train + val quadrant songs."""
    from dataclasses import replace

    from mer_tag.train.quadrant import crossval_quadrant, quadrant_songs
    from mer_tag.train.splits import preset_split

    songs = quadrant_songs(
        dataset,
        config,
        extraction.cache,
        extraction.jobs,
        _quiet,
        limit,
        precision=extraction.precision,
    )
    split = preset_split(songs.y, songs.groups, config)
    dev = np.array(sorted(split["train"] + split["val"]), dtype=int)  # the test artists stay unseen
    songs = replace(
        songs,
        pooled=songs.pooled[dev],
        y=songs.y[dev],
        groups=np.array([songs.examples[i].id for i in dev]) if ungrouped else songs.groups[dev],
        examples=[songs.examples[i] for i in dev],
    )
    started, scores = time.time(), dict[str, list[float]]()
    for seed in range(seeds):
        for key, values in crossval_quadrant(songs, config.get("quadrant", {}), folds, seed).items():
            scores.setdefault(key, []).extend(values)
    _record(report, "quadrant", len(songs.y), scores, time.time() - started, folds, seeds, kind, log)


def _record(report: dict, key: str, songs: int, scores: dict, seconds: float, folds, seeds, kind, log) -> None:
    """One line of the printed summary and its entry in the report (mean and spread over folds)."""
    entry = {"songs": songs, "seconds": round(seconds, 1)}
    for metric, values in scores.items():
        entry[f"fold_{metric}"] = values
        known = [v for v in values if not np.isnan(v)]  # NaN: a fold whose held songs lack the modality
        entry[f"{metric}_mean"] = float(np.mean(known)) if known else float("nan")
        entry[f"{metric}_std"] = float(np.std(known)) if known else float("nan")
    entry["mean"], entry["std"] = entry.get("macro_f1_mean", float("nan")), entry.get("macro_f1_std", float("nan"))
    report["branches"][key] = entry
    values = scores.get("macro_f1", [])
    line = (
        f"{key}: {songs} songs, {folds}-fold × {seeds} {kind} CV macro-F1 {entry['mean']:.3f} ± {entry['std']:.3f}"
        f"  ({' '.join(f'{s:.2f}' for s in values)}); accuracy {entry.get('accuracy_mean', float('nan')):.3f} ± "
        f"{entry.get('accuracy_std', float('nan')):.3f}"
    )
    if "valence_accuracy" in scores:
        line += (
            f"; valence right {entry['valence_accuracy_mean']:.3f} ± {entry['valence_accuracy_std']:.3f}, "
            f"arousal right {entry['arousal_accuracy_mean']:.3f} ± {entry['arousal_accuracy_std']:.3f}"
        )
    percents = [key.removeprefix("accuracy_of_top_").removesuffix("pct") for key in scores if "accuracy_of_top_" in key]
    if percents:
        line += "; most confident right: " + ", ".join(
            f"{pct} % {entry[f'accuracy_of_top_{pct}pct_mean']:.3f} ± {entry[f'accuracy_of_top_{pct}pct_std']:.3f} "
            f"(confidence ≥ {entry[f'min_confidence_of_top_{pct}pct_mean']:.2f})"
            for pct in percents
        )
    if "excerpt_macro_f1" in scores:
        line += (
            f"; each excerpt alone: macro-F1 {entry['excerpt_macro_f1_mean']:.3f} ± "
            f"{entry['excerpt_macro_f1_std']:.3f}, accuracy {entry['excerpt_accuracy_mean']:.3f} ± "
            f"{entry['excerpt_accuracy_std']:.3f}"
        )
    log(line)


def _quiet(iterable, **_):
    return iterable


def write_report(report: dict, path: str | Path) -> None:
    from mer_tag import _fs

    _fs.write_text(path, json.dumps(report, indent=1) + "\n")
