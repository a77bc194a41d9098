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
    artist group, and each one's index among the songs it was chosen from."""

    audio_valence: np.ndarray
    lyrics: list
    side: np.ndarray
    groups: np.ndarray
    index: np.ndarray

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
            keep,
        )

    def among(self, chosen) -> ValenceSongs:
        """Those of these songs that were at the positions `chosen` of the original list."""
        rows = np.flatnonzero(np.isin(self.index, np.asarray(chosen, dtype=int)))
        return ValenceSongs(
            self.audio_valence[rows],
            [self.lyrics[i] for i in rows],
            self.side[rows],
            self.groups[rows],
            self.index[rows],
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


def train_valence(
    quadrant_head,
    examples,
    features,
    y,
    groups,
    split,
    config,
    cache,
    jobs,
    progress,
    log,
    precision="fp32",
    test_cluster_probs=None,
) -> tuple:
    """(the shipped LyricsValence, its card section), or (None, None) where too few songs have lyrics, for
    `mer-tag train`: the five-cluster songs' audio
    valence from the valence–arousal head just trained (it never saw them), their lyrics from the lyrics
    branch's frozen song embeddings; fit on the train + val split, scored on the test split's unseen
    artists, refit on every song with `[final] refit_all`."""
    from mer_tag.models.quadrant import POSITIVE
    from mer_tag.train.quadrant import head_probs, song_features, song_tonal

    section = config.get("valence", {})
    tonal = song_tonal(config, examples, cache, jobs, progress, precision)
    audio_valence = head_probs(quadrant_head, song_features(quadrant_head.inputs, features["audio"], tonal))
    songs = ValenceSongs.from_clusters(audio_valence @ np.asarray(POSITIVE), features["lyrics"], y, groups)
    try:
        head = fit_valence(songs.among(split["train"] + split["val"]), section)
    except ValueError as exc:  # a small or lyric-less dataset: the valence stays the audio's
        log(f"valence of the words: not learned ({exc})")
        return None, None
    test = songs.among(split["test"])
    scores = valence_scores(head, test) if len(test.side) else {"n": 0}
    if test_cluster_probs is not None and len(test_cluster_probs) == len(split["test"]):
        positive = audio_valence @ np.asarray(POSITIVE)
        scores.update(agreement(head, features["lyrics"], split["test"], test_cluster_probs, positive))
    log(
        f"valence of the words: {len(songs.side)} songs with a side ({sum(x is not None for x in songs.lyrics)} "
        f"with lyrics); test AUC audio {scores.get('audio_auc', float('nan')):.3f}, lyrics "
        f"{scores.get('lyrics_auc', float('nan')):.3f}, fused {scores.get('fused_auc', float('nan')):.3f} "
        f"({scores.get('n', 0)} songs, artists unseen); valence and cluster disagree on "
        f"{scores.get('disagree_fused', float('nan')):.1%} of the test songs whose cluster has a side "
        f"({scores.get('disagree_audio', float('nan')):.1%} on the audio's valence alone)"
    )
    if config.get("final", {}).get("refit_all", False):
        head = fit_valence(songs, section)
    card = {
        "sides": {"positive": ["Cheerful", "Humorous"], "negative": ["Wistful", "Aggressive"]},
        "data": {"songs": int(len(songs.side)), "with_lyrics": int(sum(x is not None for x in songs.lyrics))},
        "settings": {**DEFAULTS, **section},
        "fusion": [round(float(v), 6) for v in head.fusion.tolist()],
        "metrics": {"test": scores},
    }
    return head, card


def agreement(head, lyrics: list, test: list, cluster_probs: np.ndarray, audio_valence: np.ndarray) -> dict:
    """How often the test songs' valence falls on the other side from their predicted cluster (Cheerful,
    Humorous positive; Wistful, Aggressive negative; a Passionate answer has no side), for the audio's
    valence and the fused one. `cluster_probs` [len(test), 5] the fusion's, in `test`'s order; `lyrics`
    and `audio_valence` for every song."""
    from mer_tag.valence import disagreement_share

    rows = np.asarray(test, dtype=int)
    predicted = np.asarray(cluster_probs).argmax(1) + 1
    audio = np.asarray(audio_valence, dtype=np.float64)[rows]
    every = ValenceSongs(audio, [lyrics[i] for i in rows], np.zeros(len(rows), int), np.zeros(len(rows)), rows)
    _, fused = fused_valence(head, every)
    audio_share, n = disagreement_share(audio, predicted)
    fused_share, _ = disagreement_share(fused, predicted)
    return {"disagree_audio": audio_share, "disagree_fused": fused_share, "n_sided_clusters": n}
