"""Artist-grouped cross-validation of one or more branches of a preset: macro-F1 per fold, mean and spread.

The songs are the preset split's train + val (its test artists are left out, untouched, so a choice made
here never peeks at the numbers the model card reports). Each fold holds out whole artists; inside the
rest, a grouped 1/8 is kept for early stopping, as `mer-tag train` does with `val`.

    python tools/crossval.py --data ../shared/datasets/mirex-mood --preset default --branch midi
    python tools/crossval.py --data ../shared/datasets/mirex-mood --branch midi \
        --set "midi.model={'arch': 'midi_stats', 'hidden': 32}" --set midi.epochs=80
    python tools/crossval.py --data ../shared/datasets/mirex-mood --branch fused --probs cv-probs.npz

`--branch fused` runs the whole `mer-tag train` recipe inside each fold: every branch early-stopped on the
fold's grouped 1/8, refit on inner folds for out-of-fold probabilities, ensembled as the preset ships it,
and the fusion learned on those; it reports each branch and the fused answer on the held-out artists.
`--probs` keeps every fold's probabilities, so a new fusion can be tried without retraining the branches.

`--set a.b=VALUE` replaces one value; a dict VALUE replaces a whole section (another architecture's
settings must not leak into the new one).

Features come from the same cache as `mer-tag train` (`--cache`, default .cache/features).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def override(config: dict, assignment: str) -> None:
    """`a.b.c=value` sets config['a']['b']['c'] (value parsed as a Python literal when it is one)."""
    key, _, raw = assignment.partition("=")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    *path, last = key.split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def crossval(branch, items, y, groups, folds: int, seed: int, n_classes: int) -> list[float]:
    """Macro-F1 of each grouped fold (the branch trained on the others, early-stopped on a grouped 1/8)."""
    def fit_predict(fit, stop, held, fold_seed):
        model, _ = branch.train([items[i] for i in fit], y[fit], [items[i] for i in stop], y[stop], n_classes,
                                fold_seed, None)
        return branch.predict(model, [items[i] for i in held]).argmax(1)

    return grouped_fold_scores(y, groups, folds, seed, n_classes, fit_predict)


def grouped_fold_scores(y, groups, folds: int, seed: int, n_classes: int, fit_predict) -> list[float]:
    """Macro-F1 of each grouped fold; `fit_predict(fit, stop, held, fold_seed)` trains on `fit` (early
    stopping on `stop`, a grouped 1/8 of the rest) and returns the `held` songs' predicted classes."""
    from mer_tag.train.evaluate import macro_f1
    from mer_tag.train.splits import grouped_folds, grouped_holdout

    scores = []
    for k, held in enumerate(grouped_folds(y, groups, folds, seed)):
        rest = np.setdiff1d(np.arange(len(y)), held)
        fit, stop = grouped_holdout(y[rest], groups[rest], 1 / 8, seed + k)
        scores.append(macro_f1(y[held], fit_predict(rest[fit], rest[stop], held, seed + k), n_classes))
    return scores


def crossval_fused(config, features, y, groups, folds: int, seed: int, n_classes: int, probs_out: dict) -> dict:
    """Per grouped fold, the macro-F1 of each branch (on the held songs that have it) and of the fused answer,
    every model trained as `mer-tag train` trains it, with the held artists unseen."""
    from mer_tag.train.branches import fusion_items
    from mer_tag.train.evaluate import macro_f1
    from mer_tag.train.run import MODALITIES, fit_fusion
    from mer_tag.train.splits import grouped_folds, grouped_holdout

    scores = {name: [] for name in (*MODALITIES, "fused")}
    for k, held in enumerate(grouped_folds(y, groups, folds, seed)):
        rest = np.setdiff1d(np.arange(len(y)), held)
        fit, stop = grouped_holdout(y[rest], groups[rest], 1 / 8, seed + k)
        oof, held_probs = {}, {}
        for name in MODALITIES:
            oof[name], held_probs[name] = train_like_run(config, name, features[name], y, groups, rest[fit], rest[stop],
                                                         held, seed + k, n_classes)
            scores[name].append(_branch_macro_f1(y[held], held_probs[name], n_classes))
            _keep_probs(probs_out, f"s{seed}f{k}_{name}", oof[name], dict(zip(held, held_probs[name])))
        fusion, fusion_model = fit_fusion(config.get("fusion", {}), oof, rest.tolist(), y, n_classes, seed + k)
        fused = fusion.predict(fusion_model, fusion_items(held_probs, MODALITIES, n_classes, subsets=False)[0])
        scores["fused"].append(macro_f1(y[held], fused.argmax(1), n_classes))
        probs_out[f"s{seed}f{k}_fused_held"] = np.column_stack([held, fused])
        print(f"  fold {k} (seed {seed}): " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in scores.items()), flush=True)
    return scores


def train_like_run(config, name, items, y, groups, fit, stop, held, seed, n_classes) -> tuple[dict, list]:
    """One branch as `mer-tag train` makes it (`run.fit_branch`), ensembled as the preset ships it:
    (song → out-of-fold probabilities over fit + stop, the fusion's training inputs; probabilities of the
    `held` songs, None where a song lacks the modality)."""
    from mer_tag.models.ensemble import combine
    from mer_tag.train.branches import make_branch
    from mer_tag.train.run import branch_probs, fit_branch

    fit, stop = [i for i in fit if items[i] is not None], [i for i in stop if items[i] is not None]
    if len(fit) < 2 * n_classes:  # as `train`: too few songs have it, the branch is left out
        return {}, [None] * len(held)
    frontend = config.get("audio", {}).get("features", {}).get("frontend", "logmel")
    branch = make_branch(name, dict(config.get(name, {})), n_classes, frontend)
    model, _, fold_models, oof = fit_branch(branch, items, y, groups, fit, stop,
                                            config.get("fusion", {}).get("folds", 5), seed, n_classes)
    if name in set(config.get("final", {}).get("ensemble", [])) and fold_models:
        model = combine([model, *fold_models])  # shipped as the mean of the full and fold models
    return oof, branch_probs(branch, model, items, held)


def _branch_macro_f1(y_held, probs: list, n_classes: int) -> float:
    """Macro-F1 over the held songs that have the modality (NaN when none does)."""
    from mer_tag.train.evaluate import macro_f1

    on = [j for j, p in enumerate(probs) if p is not None]
    return macro_f1(y_held[on], np.array([probs[j].argmax() for j in on]), n_classes) if on else float("nan")


def _keep_probs(probs_out: dict, key: str, oof: dict, held: dict) -> None:
    """Rows of [song index, probabilities...] for the fold's out-of-fold (fusion training) and held songs."""
    for part, probs in (("oof", oof), ("held", held)):
        rows = [[i, *p] for i, p in sorted(probs.items()) if p is not None]
        if rows:  # a branch left out of the fold (too few songs have it) keeps nothing
            probs_out[f"{key}_{part}"] = np.asarray(rows, dtype=float)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--branch", action="append", choices=("audio", "lyrics", "midi", "fused"),
                        required=True, help="a branch alone, or `fused`: every branch and the fusion (the whole recipe)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset value")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1, help="repeat with this many split seeds")
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", help="write the scores here")
    parser.add_argument("--ungrouped", action="store_true",
                        help="folds ignore artists, as the published random cross-validations did: only to measure "
                             "how much an artist on both sides inflates a score, never to choose settings")
    parser.add_argument("--limit", type=int, default=0, help="a stratified subset of this many songs (smoke runs)")
    parser.add_argument("--probs", help="with --branch fused: save every fold's probabilities here (.npz)")
    args = parser.parse_args(argv)

    import torch

    from mer_tag.train.branches import make_branch
    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.extract import FeatureCache, extract_branch
    from mer_tag.train.run import load_preset
    from mer_tag.train.splits import preset_split

    torch.set_num_threads(args.jobs)
    config = load_preset(args.preset)
    for assignment in args.set:
        override(config, assignment)
    dataset = load_dataset(args.data)
    y_all = np.array([e.label for e in dataset.examples])
    groups_all = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = preset_split(y_all, groups_all, config)
    dev = sorted(split["train"] + split["val"])  # the test artists stay unseen
    if args.ungrouped:  # every song its own group, after the split: the test artists still stay unseen
        groups_all = np.array([e.id for e in dataset.examples])
    if args.limit:
        from mer_tag.train.run import stratified_subset

        kept = {id(e) for e in stratified_subset([dataset.examples[i] for i in dev], args.limit, 0)}
        dev = [i for i in dev if id(dataset.examples[i]) in kept]
    examples = [dataset.examples[i] for i in dev]
    names = dataset.labels.names
    cache = FeatureCache(Path(args.cache))
    report = {"preset": config.get("name"), "overrides": args.set, "folds": args.folds,
              "grouped_by_artist": not args.ungrouped, "branches": {}}
    if "fused" in args.branch:
        fused_report(args, config, examples, cache, y_all[dev], groups_all[dev], len(names), report)
    for name in (b for b in args.branch if b != "fused"):
        items, _ = extract_branch(name, config, examples, cache, args.jobs, lambda it, **kw: it)
        have = [i for i, x in enumerate(items) if x is not None]
        y, groups = y_all[dev][have], groups_all[dev][have]
        branch = make_branch(name, dict(config.get(name, {})), len(names),
                             config.get("audio", {}).get("features", {}).get("frontend", "logmel"))
        started, scores = time.time(), []
        for seed in range(args.seeds):
            scores += crossval(branch, [items[i] for i in have], y, groups, args.folds, seed, len(names))
        _record(report, name, len(have), scores, time.time() - started, args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def fused_report(args, config, examples, cache, y, groups, n_classes, report) -> None:
    """`--branch fused`: the whole recipe cross-validated; scores into `report`, probabilities to `--probs`."""
    from mer_tag.train.extract import extract_branch
    from mer_tag.train.run import MODALITIES

    features = {name: extract_branch(name, config, examples, cache, args.jobs, lambda it, **kw: it)[0]
                for name in MODALITIES}
    keep = [i for i, x in enumerate(features["audio"]) if x is not None]  # as `train`: no audio, no song
    features = {name: [items[i] for i in keep] for name, items in features.items()}
    y, groups = y[keep], groups[keep]
    started, scores, probs = time.time(), {}, {"labels": y}
    for seed in range(args.seeds):
        for name, values in crossval_fused(config, features, y, groups, args.folds, seed, n_classes, probs).items():
            scores.setdefault(name, []).extend(values)
    for name, values in scores.items():
        songs = len(y) if name in ("fused", "audio") else sum(x is not None for x in features[name])
        _record(report, f"fused:{name}", songs, values, time.time() - started, args)
    if args.probs:
        np.savez_compressed(args.probs, **probs)


def _record(report: dict, key: str, songs: int, scores: list[float], seconds: float, args) -> None:
    """One line of the printed summary and its entry in the --json report (mean and spread over folds)."""
    kind = "UNGROUPED" if args.ungrouped else "grouped"
    report["branches"][key] = {"songs": songs, "fold_macro_f1": scores, "mean": float(np.nanmean(scores)),
                               "std": float(np.nanstd(scores)), "seconds": round(seconds, 1)}
    print(f"{key}: {songs} songs, {args.folds}-fold × {args.seeds} {kind} CV macro-F1 {np.nanmean(scores):.3f} ± "
          f"{np.nanstd(scores):.3f}  ({' '.join(f'{s:.2f}' for s in scores)})", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
