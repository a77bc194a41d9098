"""Head variants on the cheap features (issue #28): regularisation of the tag prior, and two heads averaged
(the embedding's and a low-dimensional one), scored like research/evaluate.py (4Q CV + cross-set both ways).

    .venv/bin/python research/variants.py
"""

from __future__ import annotations

import numpy as np
from evaluate import Q_ENERGETIC, Q_POSITIVE, blocks, fit, load, mirex_valence

from mer_tag.train.splits import grouped_folds


def prepared():
    q4, mx = load("4q_cheap.npz"), load("mirex_cheap.npz")
    for t in (q4, mx):
        t["logtags"] = np.log(t["tags"] / (1 - t["tags"]))
        t["key"], t["tonic"], t["diss"] = t["tonal"][:, 3:10], t["tonal"][:, 10:], t["tonal"][:, :3]
    return q4, mx


def ensemble(parts, weights):
    """A predictor averaging the log-probabilities of several (features, C) heads."""

    def fit_all(tables, idx, y):
        models = [fit(blocks(tables, names)[idx], y, C) for names, C in parts]

        def predict(tables2, idx2):
            logp = sum(
                w * np.log(np.clip(m(blocks(tables2, names)[idx2]), 1e-9, 1))
                for w, m, (names, _) in zip(weights, models, parts)
            )
            p = np.exp(logp - logp.max(1, keepdims=True))
            return p / p.sum(1, keepdims=True)

        return predict

    return fit_all


def score(name, fit_all, q4, mx, seeds=(0, 1), base=None):
    from sklearn.metrics import f1_score, roc_auc_score

    y, groups = q4["label"], q4["group"]
    f1, val, aro = [], [], []
    for seed in seeds:
        for held in grouped_folds(y, groups, 5, seed):
            train = np.setdiff1d(np.arange(len(y)), held)
            p = fit_all(q4, train, y[train])(q4, held)
            f1.append(f1_score(y[held], p.argmax(1), average="macro"))
            val.append(float(((p @ Q_POSITIVE > 0.5) == (Q_POSITIVE[y[held]] > 0.5)).mean()))
            aro.append(float(((p @ Q_ENERGETIC > 0.5) == (Q_ENERGETIC[y[held]] > 0.5)).mean()))
    keep, side = mirex_valence(mx["label"])
    all4 = np.arange(len(y))
    to_mx = roc_auc_score(side[keep], fit_all(q4, all4, y)(mx, np.flatnonzero(keep)) @ Q_POSITIVE)
    f1, val = np.array(f1), np.array(val)
    d = "" if base is None else f" (Δval {np.mean(val - base):+.3f} ± {np.std(val - base):.3f})"
    print(
        f"{name:48s} F1 {f1.mean():.3f} ± {f1.std():.3f}  val {val.mean():.3f} ± {val.std():.3f}{d}  "
        f"aro {np.mean(aro):.3f}  4Q→MX {to_mx:.3f}",
        flush=True,
    )
    return val


if __name__ == "__main__":
    q4, mx = prepared()
    base = score("embedding C=0.01", ensemble([(["emb"], 0.01)], [1.0]), q4, mx)
    for C in (0.001, 0.003, 0.03):
        score(f"embedding C={C}", ensemble([(["emb"], C)], [1.0]), q4, mx, base=base)
    for C in (0.003, 0.03, 0.1):
        score(f"tags C={C}", ensemble([(["logtags"], C)], [1.0]), q4, mx, base=base)
    score("tags+key+tonic C=0.01", ensemble([(["logtags", "key", "tonic"], 0.01)], [1.0]), q4, mx, base=base)
    for w in (0.3, 0.5, 0.7):
        score(
            f"emb ⊕ tags, tags weight {w}",
            ensemble([(["emb"], 0.01), (["logtags"], 0.01)], [1 - w, w]),
            q4,
            mx,
            base=base,
        )
    score(
        "emb+key+tonic ⊕ tags+key+tonic 0.5",
        ensemble([(["emb", "key", "tonic"], 0.01), (["logtags", "key", "tonic"], 0.01)], [0.5, 0.5]),
        q4,
        mx,
        base=base,
    )
