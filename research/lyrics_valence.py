"""Lyrics valence and its fusion with the audio's (issue #28), on the MIREX-like songs.

- lyrics valence: a logistic regression on the frozen MiniLM song embedding (the shipped lyrics path),
  learned from the clusters (Cheerful, Humorous positive; Wistful, Aggressive negative; Passionate out);
- audio valence: the 4Q-trained quadrant head's P(Q1) + P(Q4) (never saw a MIREX-like song);
- fused: a two-input logistic regression on their logits (plus a no-lyrics indicator, the lyrics logit 0
  then), fit on the MIREX-like train songs with the lyrics valence out of fold.
Scored on the default preset's own MIREX-like test split (artists unseen, 20 %), and by artist-grouped CV.

    .venv/bin/python research/lyrics_valence.py
"""

from __future__ import annotations

import numpy as np
from evaluate import Q_POSITIVE, blocks, fit, load, mirex_valence
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mer_tag.train.splits import grouped_folds, make_split

AUDIO_SETS = {"embedding": (["emb"], 0.01), "tags+key": (["logtags", "key"], 0.01)}
PREFIX = "new_"  # tables with the shipped tonal settings (every 4th frame)


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def bootstrap_auc(truth, score, n=1000, seed=0):
    """95 % interval of an AUC over 1,000 resamples of the songs."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        i = rng.integers(0, len(truth), len(truth))
        if truth[i].min() != truth[i].max():
            values.append(roc_auc_score(truth[i], score[i]))
    return np.percentile(values, [2.5, 97.5])


def oof_lyrics(x, y, groups, C, seed=0, folds=5):
    out = np.zeros(len(y))
    for held in grouped_folds(y, groups, folds, seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        out[held] = fit(x[train], y[train], C)(x[held])[:, 1]
    return out


def main():
    q4, mx = load(f"{PREFIX}4q_cheap.npz"), load(f"{PREFIX}mirex_cheap.npz")
    for t in (q4, mx):
        t["logtags"] = np.log(t["tags"] / (1 - t["tags"]))
        t["key"], t["tonic"] = t["tonal"][:, 3:10], t["tonal"][:, 10:]
    lyr = load("mirex_lyrics.npz")
    index = {str(i): n for n, i in enumerate(lyr["id"])}
    has = np.array([str(i) in index for i in mx["id"]])
    lyrics = np.zeros((len(mx["id"]), lyr["lyrics"].shape[1]))
    lyrics[has] = lyr["lyrics"][[index[str(i)] for i in mx["id"][has]]]
    keep, side = mirex_valence(mx["label"])
    split = make_split(mx["label"], mx["group"], 0.2, 0.1, 0)
    train = np.array(sorted(split["train"] + split["val"]))
    test = np.array(sorted(split["test"]))
    tr, te = train[keep[train]], test[keep[test]]
    print(
        f"MIREX-like: {keep.sum()} songs with a valence side ({has[keep].sum()} with lyrics); "
        f"train {len(tr)}, test {len(te)}"
    )
    for C in (0.003, 0.01, 0.03, 0.1):
        lt = tr[has[tr]]
        oof = oof_lyrics(lyrics[lt], side[lt], mx["group"][lt], C)
        print(f"lyrics valence C={C}: OOF AUC on train songs with lyrics {roc_auc_score(side[lt], oof):.3f}")
    C_lyr = 0.003
    lt = tr[has[tr]]
    lyr_oof = np.zeros(len(mx["id"]))
    lyr_oof[lt] = logit(oof_lyrics(lyrics[lt], side[lt], mx["group"][lt], C_lyr))
    lyr_model = fit(lyrics[lt], side[lt], C_lyr)
    ltest = te[has[te]]
    lyr_oof[ltest] = logit(lyr_model(lyrics[ltest])[:, 1])
    for name, (names, C) in AUDIO_SETS.items():
        head = fit(blocks(q4, names), q4["label"], C)
        audio = logit(head(blocks(mx, names)) @ Q_POSITIVE)
        z = np.stack([audio, lyr_oof], 1)
        sung = tr[has[tr]]  # the fusion is learned, and used, only where there are lyrics
        stack = LogisticRegression(C=1.0).fit(z[sung], side[sung])
        fused_logit = np.where(has, z @ stack.coef_[0] + stack.intercept_[0], audio)
        fused = fused_logit[te]
        boot = bootstrap_auc(side[te], fused)
        print(
            f"audio {name:16s} test AUC: audio {roc_auc_score(side[te], audio[te]):.3f}  "
            f"lyrics (with lyrics only, n={len(ltest)}) {roc_auc_score(side[ltest], lyr_oof[ltest]):.3f}  "
            f"fused {roc_auc_score(side[te], fused):.3f} [{boot[0]:.3f}, {boot[1]:.3f}]  "
            f"(fusion: audio {stack.coef_[0][0]:.2f}, lyrics {stack.coef_[0][1]:.2f}, bias {stack.intercept_[0]:.2f})"
        )


if __name__ == "__main__":
    main()
