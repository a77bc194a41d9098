"""Score feature families for valence (issue #28): in-set CV on 4Q and cross-set both ways.

Reads the per-song tables that research/extract_*.py wrote and, for each feature set:
- 4Q, artist-grouped CV (5 folds × seeds, mer_tag.train.splits.grouped_folds, the shipped protocol): the
  quadrant head (standardise, L2 logistic regression, balanced classes) → quadrant macro-F1, valence and
  arousal right; mean ± std over every fold of every seed.
- cross-set 4Q → MIREX-like: the quadrant head fit on all 4Q songs; its valence (P(Q1) + P(Q4)) scored on
  MIREX-like songs by their cluster (Cheerful, Humorous positive; Wistful, Aggressive negative; Passionate
  left out): AUC.
- cross-set MIREX-like → 4Q: a valence logistic regression fit on those MIREX-like songs (same two sides),
  scored on 4Q's valence (Q1, Q4 positive): AUC.

    .venv/bin/python research/evaluate.py            # prints the table
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "research" / "out"

POSITIVE_CLUSTERS = (1, 3)  # label indices of Cheerful (cluster 2) and Humorous (cluster 4)
NEGATIVE_CLUSTERS = (2, 4)  # Wistful (3) and Aggressive (5); Passionate (index 0) left out
Q_POSITIVE = np.array([1.0, 0.0, 0.0, 1.0])
Q_ENERGETIC = np.array([1.0, 1.0, 0.0, 0.0])


def load(name: str) -> dict:
    with np.load(OUT / name, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def join(tables: list[dict], key: str = "id") -> dict:
    """Rows of several tables for the ids they all have, in the first table's order."""
    ids = [str(i) for i in tables[0][key]]
    common = set(ids)
    for t in tables[1:]:
        common &= {str(i) for i in t[key]}
    out = {}
    for t in tables:
        index = {str(i): n for n, i in enumerate(t[key])}
        rows = [index[i] for i in ids if i in common]
        for k, v in t.items():
            if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == len(t[key]):
                out.setdefault(k, v[rows])
            else:
                out.setdefault(k, v)
    return out


def fit(x: np.ndarray, y: np.ndarray, C: float, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0).clip(min=1e-6)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit((x - mean) / std, y)
    return lambda z: model.predict_proba((z - mean) / std)


def mirex_valence(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of MIREX-like songs with a valence side, 1 for positive)."""
    keep = np.isin(y, POSITIVE_CLUSTERS + NEGATIVE_CLUSTERS)
    return keep, np.isin(y, POSITIVE_CLUSTERS).astype(int)


def cv_4q(x: np.ndarray, y: np.ndarray, groups: np.ndarray, C: float, seeds=(0, 1), folds: int = 5) -> dict:
    from sklearn.metrics import f1_score, roc_auc_score

    from mer_tag.train.splits import grouped_folds

    scores: dict[str, list[float]] = {}
    for seed in seeds:
        for held in grouped_folds(y, groups, folds, seed):
            train = np.setdiff1d(np.arange(len(y)), held)
            probs = fit(x[train], y[train], C, seed)(x[held])
            valence, arousal = probs @ Q_POSITIVE, probs @ Q_ENERGETIC
            truth_v, truth_a = Q_POSITIVE[y[held]] > 0.5, Q_ENERGETIC[y[held]] > 0.5
            scores.setdefault("f1", []).append(f1_score(y[held], probs.argmax(1), average="macro"))
            scores.setdefault("valence", []).append(float(((valence > 0.5) == truth_v).mean()))
            scores.setdefault("arousal", []).append(float(((arousal > 0.5) == truth_a).mean()))
            scores.setdefault("valence_auc", []).append(roc_auc_score(truth_v, valence))
    return {k: np.asarray(v) for k, v in scores.items()}


def cross_sets(x4: np.ndarray, y4: np.ndarray, xm: np.ndarray, ym: np.ndarray, C: float) -> tuple[float, float]:
    """(AUC of 4Q-trained valence on MIREX-like clusters, AUC of MIREX-trained valence on 4Q)."""
    from sklearn.metrics import roc_auc_score

    keep, side = mirex_valence(ym)
    to_mirex = roc_auc_score(side[keep], fit(x4, y4, C)(xm[keep]) @ Q_POSITIVE)
    to_4q = roc_auc_score(Q_POSITIVE[y4] > 0.5, fit(xm[keep], side[keep], C)(x4)[:, 1])
    return float(to_mirex), float(to_4q)


def blocks(table: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(table[n], dtype=np.float64).reshape(len(table["id"]), -1) for n in names], 1)


def report(sets: dict[str, list[str]], q4: dict, mx: dict, C: float = 0.01, seeds=(0, 1)) -> list[dict]:
    """One line per feature set: mean ± std over folds × seeds, the paired change against the first set
    (same folds) as mean ± std, and the cross-set AUCs."""
    rows = []
    base = None
    for name, names in sets.items():
        x4, xm = blocks(q4, names), blocks(mx, names)
        cv = cv_4q(x4, q4["label"], q4["group"], C, seeds)
        base = base or cv
        to_mirex, to_4q = cross_sets(x4, q4["label"], xm, mx["label"], C)
        rows.append({"set": name, "dims": x4.shape[1], "cv": cv, "to_mirex": to_mirex, "to_4q": to_4q})
        d_f1, d_val = cv["f1"] - base["f1"], cv["valence"] - base["valence"]
        print(
            f"{name:36s} {x4.shape[1]:4d}  F1 {cv['f1'].mean():.3f} ± {cv['f1'].std():.3f} "
            f"(Δ {d_f1.mean():+.3f} ± {d_f1.std():.3f})  val {cv['valence'].mean():.3f} ± {cv['valence'].std():.3f} "
            f"(Δ {d_val.mean():+.3f} ± {d_val.std():.3f})  aro {cv['arousal'].mean():.3f}  "
            f"vAUC {cv['valence_auc'].mean():.3f}  4Q→MX {to_mirex:.3f}  MX→4Q {to_4q:.3f}",
            flush=True,
        )
    return rows


def cheap_tables(prefix: str = "") -> tuple[dict, dict]:
    """The 4Q and MIREX-like cheap tables with the blocks the sets name: log-odds of the tag prior, and the
    tonal features split into dissonance, key/mode and the tonic-turned chroma."""
    q4, mx = load(f"{prefix}4q_cheap.npz"), load(f"{prefix}mirex_cheap.npz")
    for t in (q4, mx):
        t["logtags"] = np.log(t["tags"] / (1 - t["tags"]))
        t["diss"], t["key"], t["tonic"] = t["tonal"][:, :3], t["tonal"][:, 3:10], t["tonal"][:, 10:]
    return q4, mx


if __name__ == "__main__":
    C = float(sys.argv[1]) if len(sys.argv) > 1 else 0.01
    q4, mx = cheap_tables(sys.argv[2] if len(sys.argv) > 2 else "")
    sets = {
        "embedding (today)": ["emb"],
        "tags alone": ["logtags"],
        "embedding + tags": ["emb", "logtags"],
        "embedding + dissonance": ["emb", "diss"],
        "embedding + key/mode": ["emb", "key"],
        "embedding + key/mode + tonic chroma": ["emb", "key", "tonic"],
        "embedding + all tonal": ["emb", "tonal"],
        "tags + dissonance": ["logtags", "diss"],
        "tags + key/mode": ["logtags", "key"],
        "tags + key/mode + tonic chroma": ["logtags", "key", "tonic"],
        "tags + all tonal": ["logtags", "tonal"],
    }
    report(sets, q4, mx, C)
