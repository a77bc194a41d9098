"""The lyrics' valence and its fusion with the audio's (issue #28), learned from the five-cluster songs.

The clusters say a side of valence for four of them (mer_tag.valence.CLUSTER_SIDES: Cheerful and Humorous
positive, Wistful and Aggressive negative; Passionate has none). On the songs with a side and lyrics:

1. a standardised L2 logistic regression learns that side from the frozen lyrics encoder's song embedding;
2. its out-of-fold answers (artist-grouped folds, so a song's words never judge themselves) beside the
   audio's valence (the valence–arousal head, which learned from other songs: the 4Q set) fit the fusion,
   a logistic regression on the two log-odds;
3. the lyrics model is refit on every song given.

Scored on held-out artists: the audio's valence, the lyrics' alone, and the fused one (AUC of the side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_tag.valence import CLUSTER_SIDES, log_odds

DEFAULTS = {"C": 0.003, "folds": 5, "max_iter": 3000}  # C chosen by OOF AUC (docs/model-card.md)


@dataclass
class ValenceSongs:
    """Songs with a side of valence: audio valence (0–1), lyrics embedding or None, side (1 positive),
    artist group."""

    audio_valence: np.ndarray
    lyrics: list
    side: np.ndarray
    groups: np.ndarray

    @classmethod
    def from_clusters(cls, audio_valence, lyrics: list, clusters, groups) -> ValenceSongs:
        """Keep the songs whose cluster (0-based label) has a side."""
        sides = np.asarray(CLUSTER_SIDES)[np.asarray(clusters, dtype=int)]
        keep = np.flatnonzero(sides != 0)
        return cls(
            np.asarray(audio_valence, dtype=np.float64)[keep],
            [lyrics[i] for i in keep],
            (sides[keep] > 0).astype(int),
            np.asarray(groups)[keep],
        )

    def subset(self, index) -> ValenceSongs:
        index = np.asarray(index, dtype=int)
        return ValenceSongs(
            self.audio_valence[index], [self.lyrics[i] for i in index], self.side[index], self.groups[index]
        )


def _fit_lr(x: np.ndarray, y: np.ndarray, C: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0).clip(min=1e-6)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=max_iter).fit((x - mean) / std, y)
    return mean, std, model


def _lyrics_probability(fitted, x: np.ndarray) -> np.ndarray:
    mean, std, model = fitted
    return model.predict_proba((x - mean) / std)[:, 1]


def out_of_fold(songs: ValenceSongs, settings: dict) -> np.ndarray:
    """Each sung song's lyrics valence from a model that never saw its artist (NaN without lyrics)."""
    from mer_tag.train.splits import grouped_folds

    sung = np.array([i for i, x in enumerate(songs.lyrics) if x is not None], dtype=int)
    out = np.full(len(songs.side), np.nan)
    x = np.stack([songs.lyrics[i] for i in sung])
    y, groups = songs.side[sung], songs.groups[sung]
    for held in grouped_folds(y, groups, int(settings["folds"]), 0):
        train = np.setdiff1d(np.arange(len(sung)), held)
        fitted = _fit_lr(x[train], y[train], float(settings["C"]), int(settings["max_iter"]))
        out[sung[held]] = _lyrics_probability(fitted, x[held])
    return out


def fit_valence(songs: ValenceSongs, section: dict):
    """A fitted models.valence.LyricsValence (lyrics model refit on every sung song, fusion from the
    out-of-fold answers)."""
    from sklearn.linear_model import LogisticRegression

    from mer_tag import models

    settings = {**DEFAULTS, **section}
    sung = np.array([i for i, x in enumerate(songs.lyrics) if x is not None], dtype=int)
    if len(sung) < 2 * int(settings["folds"]) or len(set(songs.side[sung].tolist())) < 2:
        raise ValueError("too few songs with lyrics and a side of valence to learn the lyrics' valence")
    oof = out_of_fold(songs, settings)
    pair = np.column_stack([log_odds(songs.audio_valence[sung]), log_odds(oof[sung])])
    fusion = LogisticRegression(C=1.0).fit(pair, songs.side[sung])
    x = np.stack([songs.lyrics[i] for i in sung])
    mean, std, model = _fit_lr(x, songs.side[sung], float(settings["C"]), int(settings["max_iter"]))
    head = models.build({"arch": "lyrics_valence", "embed_dim": int(x.shape[1])})
    head.set_weights(mean, std, model.coef_[0], model.intercept_[0], [*fusion.coef_[0], fusion.intercept_[0]])
    return head.eval()


def fused_valence(head, songs: ValenceSongs) -> tuple[np.ndarray, np.ndarray]:
    """(lyrics valence or NaN, fused valence) of each song, as a scan computes them."""
    import torch

    from mer_tag.valence import lyrics_shift

    lyrics = np.full(len(songs.side), np.nan)
    fused = songs.audio_valence.copy()
    fusion = head.fusion.numpy()
    for i, x in enumerate(songs.lyrics):
        if x is None:
            continue
        with torch.inference_mode():
            lyrics[i] = float(head(torch.as_tensor(np.asarray(x, dtype=np.float32))[None])[0])
        shift = lyrics_shift(songs.audio_valence[i], lyrics[i], fusion)
        fused[i] = 1.0 / (1.0 + np.exp(-(float(log_odds(songs.audio_valence[i])) + shift)))
    return lyrics, fused


def valence_scores(head, songs: ValenceSongs) -> dict:
    """AUC of the side for the audio's valence, the lyrics' (sung songs only) and the fused one."""
    from sklearn.metrics import roc_auc_score

    def auc(truth, score):
        return float(roc_auc_score(truth, score)) if len(set(truth.tolist())) == 2 else float("nan")

    lyrics, fused = fused_valence(head, songs)
    sung = ~np.isnan(lyrics)
    return {
        "n": int(len(songs.side)),
        "n_lyrics": int(sung.sum()),
        "audio_auc": auc(songs.side, songs.audio_valence),
        "lyrics_auc": auc(songs.side[sung], lyrics[sung]),
        "fused_auc": auc(songs.side, fused),
    }
