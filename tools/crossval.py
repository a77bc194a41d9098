"""Artist-grouped cross-validation of one or more branches of a preset: macro-F1 per fold, mean and spread.

The songs are the preset split's train + val (its test artists are left out, untouched, so a choice made
here never peeks at the numbers the model card reports). Each fold holds out whole artists; inside the
rest, a grouped 1/8 is kept for early stopping, as `mer-tag train` does with `val`.

    python tools/crossval.py --data ../shared/datasets/mirex-mood --preset default --branch midi
    python tools/crossval.py --data ../shared/datasets/mirex-mood --branch midi \
        --set "midi.model={'arch': 'midi_stats', 'hidden': 32}" --set midi.epochs=80

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
    from mer_tag.train.evaluate import macro_f1
    from mer_tag.train.splits import grouped_folds, grouped_holdout

    scores = []
    for k, held in enumerate(grouped_folds(y, groups, folds, seed)):
        rest = np.setdiff1d(np.arange(len(y)), held)
        fit, stop = grouped_holdout(y[rest], groups[rest], 1 / 8, seed + k)
        fit, stop = rest[fit], rest[stop]
        model, _ = branch.train([items[i] for i in fit], y[fit], [items[i] for i in stop], y[stop], n_classes,
                                seed + k, None)
        pred = branch.predict(model, [items[i] for i in held]).argmax(1)
        scores.append(macro_f1(y[held], pred, n_classes))
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--branch", action="append", choices=("audio", "lyrics", "midi"), required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset value")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1, help="repeat with this many split seeds")
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", help="write the scores here")
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
    examples = [dataset.examples[i] for i in dev]
    names = dataset.labels.names
    cache = FeatureCache(Path(args.cache))
    report = {"preset": config.get("name"), "overrides": args.set, "folds": args.folds, "branches": {}}
    for name in args.branch:
        items, _ = extract_branch(name, config, examples, cache, args.jobs, lambda it, **kw: it)
        have = [i for i, x in enumerate(items) if x is not None]
        y, groups = y_all[dev][have], groups_all[dev][have]
        branch = make_branch(name, dict(config.get(name, {})), len(names),
                             config.get("audio", {}).get("features", {}).get("frontend", "logmel"))
        started, scores = time.time(), []
        for seed in range(args.seeds):
            scores += crossval(branch, [items[i] for i in have], y, groups, args.folds, seed, len(names))
        report["branches"][name] = {"songs": len(have), "fold_macro_f1": scores, "mean": float(np.mean(scores)),
                                    "std": float(np.std(scores)), "seconds": round(time.time() - started, 1)}
        print(f"{name}: {len(have)} songs, {args.folds}-fold × {args.seeds} grouped CV macro-F1 "
              f"{np.mean(scores):.3f} ± {np.std(scores):.3f}  ({' '.join(f'{s:.2f}' for s in scores)})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
