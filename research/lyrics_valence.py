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
from sklearn.metrics import roc_auc_score

from mer_tag.train.splits import grouped_folds, make_split

AUDIO_SETS = {"embedding": (["emb"], 0.01), "tags+key+tonic": (["logtags", "key", "tonic"], 0.01)}


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def oof_lyrics(x, y, groups, C, seed=0, folds=5):
    out = np.zeros(len(y))
    for held in grouped_folds(y, groups, folds, seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        out[held] = fit(x[train], y[train], C)(x[held])[:, 1]
    return out


def main():
    q4, mx = load("4q_cheap.npz"), load("mirex_cheap.npz")
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
    C_lyr = 0.01
    lt = tr[has[tr]]
    lyr_oof = np.zeros(len(mx["id"]))
    lyr_oof[lt] = logit(oof_lyrics(lyrics[lt], side[lt], mx["group"][lt], C_lyr))
    lyr_model = fit(lyrics[lt], side[lt], C_lyr)
    ltest = te[has[te]]
    lyr_oof[ltest] = logit(lyr_model(lyrics[ltest])[:, 1])
    for name, (names, C) in AUDIO_SETS.items():
        head = fit(blocks(q4, names), q4["label"], C)
        audio = logit(head(blocks(mx, names)) @ Q_POSITIVE)
        z = np.stack([audio, lyr_oof, has.astype(float)], 1)
        from sklearn.linear_model import LogisticRegression

        stack = LogisticRegression(C=1.0).fit(z[tr], side[tr])
        fused = stack.predict_proba(z[te])[:, 1]
        print(
            f"audio {name:16s} test AUC: audio {roc_auc_score(side[te], audio[te]):.3f}  "
            f"lyrics (with lyrics only, n={len(ltest)}) {roc_auc_score(side[ltest], lyr_oof[ltest]):.3f}  "
            f"fused {roc_auc_score(side[te], fused):.3f}  "
            f"(weights audio {stack.coef_[0][0]:.2f}, lyrics {stack.coef_[0][1]:.2f})"
        )


if __name__ == "__main__":
    main()
