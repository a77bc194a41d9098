"""Paired bootstrap of the cross-set valence AUC (issue #28): a candidate's head against today's, both fit on
all of one set and scored on the other; 1,000 resamples of the scored songs give the change's 95 % interval.

    .venv/bin/python research/boot.py [prefix]
"""

from __future__ import annotations

import sys

import numpy as np
from evaluate import Q_POSITIVE, blocks, cheap_tables, fit, mirex_valence
from sklearn.metrics import roc_auc_score

CANDIDATES = {
    "tags": ["logtags"],
    "tags + key/mode": ["logtags", "key"],
    "tags + key/mode + tonic": ["logtags", "key", "tonic"],
    "embedding + key/mode": ["emb", "key"],
}


def interval(truth, base, cand, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(truth), len(truth))
        if truth[i].min() == truth[i].max():
            continue
        diffs.append(roc_auc_score(truth[i], cand[i]) - roc_auc_score(truth[i], base[i]))
    return np.percentile(diffs, [2.5, 97.5])


def cross_set_scores(q4: dict, mx: dict, names: list[str], C: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A head on the blocks `names`: (fit on 4Q, its valence on the MIREX-like songs with a side; fit on those,
    its valence on 4Q)."""
    keep, side = mirex_valence(mx["label"])
    to_mx = fit(blocks(q4, names), q4["label"], C)(blocks(mx, names)[keep]) @ Q_POSITIVE
    to_4q = fit(blocks(mx, names)[keep], side[keep], C)(blocks(q4, names))[:, 1]
    return to_mx, to_4q


def main(prefix: str = "", C: float = 0.01) -> None:
    q4, mx = cheap_tables(prefix)
    keep, side = mirex_valence(mx["label"])
    pos4 = (Q_POSITIVE[q4["label"]] > 0.5).astype(int)

    def scores(names):
        return cross_set_scores(q4, mx, names, C)

    base = scores(["emb"])
    for name, names in CANDIDATES.items():
        cand = scores(names)
        lo1, hi1 = interval(side[keep], base[0], cand[0])
        lo2, hi2 = interval(pos4, base[1], cand[1])
        print(
            f"{name:26s} 4Q→MX ΔAUC {roc_auc_score(side[keep], cand[0]) - roc_auc_score(side[keep], base[0]):+.3f} "
            f"[{lo1:+.3f}, {hi1:+.3f}]   MX→4Q ΔAUC {roc_auc_score(pos4, cand[1]) - roc_auc_score(pos4, base[1]):+.3f} "
            f"[{lo2:+.3f}, {hi2:+.3f}]",
            flush=True,
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
