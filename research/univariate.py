"""Each designed feature alone (issue #28): its valence AUC on 4Q (Q1, Q4 positive) and on the MIREX-like
clusters (Cheerful, Humorous positive; Wistful, Aggressive negative). An AUC above 0.5 means the feature is
higher in positive songs; a feature whose direction flips between the sets cannot carry valence across.

    .venv/bin/python research/univariate.py [prefix]
"""

from __future__ import annotations

import sys

from evaluate import Q_POSITIVE, join, load, mirex_valence
from sklearn.metrics import roc_auc_score

from mer_tag import expressive, tonal


def main(prefix: str = "") -> None:
    rows = []
    tables = []
    for name in ("4q", "mirex"):
        tables.append(join([load(f"{prefix}{name}_cheap.npz"), load(f"{name}_notes.npz")]))
    q4, mx = tables
    keep, side = mirex_valence(mx["label"])
    pos4 = Q_POSITIVE[q4["label"]] > 0.5
    for block, names in (("tonal", tonal.FEATURE_NAMES), ("notes_full", expressive.FEATURE_NAMES)):
        for i, feature in enumerate(names):
            a4 = roc_auc_score(pos4, q4[block][:, i])
            am = roc_auc_score(side[keep], mx[block][keep, i])
            rows.append((feature, a4, am))
    tag_names = [str(t) for t in q4["tag_names"]]
    for i, tag in enumerate(tag_names):
        rows.append(
            (f"tag:{tag}", roc_auc_score(pos4, q4["tags"][:, i]), roc_auc_score(side[keep], mx["tags"][keep, i]))
        )
    rows.sort(key=lambda r: -abs(r[1] - 0.5))
    print(f"{'feature':28s} 4Q AUC  MIREX AUC  same direction")
    for feature, a4, am in rows:
        print(f"{feature:28s} {a4:.3f}   {am:.3f}      {'yes' if (a4 - 0.5) * (am - 0.5) > 0 else 'NO'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
