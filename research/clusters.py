"""Do issue #28's audio descriptors help the five clusters? Paired artist-grouped CV of the whole recipe.

The protocol is `mer-tag crossval --data mirex-mood -b fused --seeds 2` (the model card's 0.521 ± 0.054):
the preset split's train + val songs (577; the test artists never heard), 5 artist-grouped folds per seed,
inside each fold every branch made by the recipe (`recipe.fit_recipe_branch`: early-stopped on a grouped
1/8, refit on inner folds for out-of-fold probabilities, ensembled as shipped) and the fusion learned on
those. Every variant below is scored on the same folds, with the same trained lyrics and MIDI branches (and
the same audio branch unless the variant changes it), so a difference is the variant's alone (paired Δ).

Descriptors (what default@0.4.0's valence–arousal head reads, `mer_tag.valence`): `tags`, musicnn's 50 MSD
tags over the song as log-odds; `key`, key strength, clarity and mode over the song and in 5-s stretches (7);
`dis`, sensory dissonance (3); `va`, the shipped head's four quadrant probabilities (learned on 4Q only).
Variants: `base`, the recipe as it ships (it reproduces `mer-tag crossval`); `fusion+va`, `fusion+va2`, the
head's quadrant log-probabilities (4) or valence and arousal log-odds (2) as extra fusion inputs;
`branch:tags`, `branch:tags+key`, `branch:tags+key+dis`, a fourth branch (a standardised logistic regression
on the descriptors, C chosen by inner folds) into the fusion as the branches are; `branch:tags+key + va`,
both; `audio+tags+key` (and `+ va`), the descriptors joined to the BiGRU's pooled state before the audio
head's classifier, the audio branch retrained.

Also scored: the most confident halves' accuracy, how often the `valence` column and the predicted cluster
disagree on the side, the side AUC of the clusters, and the clusters' valence on the 4Q songs (audio only).
Results: research/ABLATION.md.

    .venv/bin/python research/clusters.py --data ../shared/datasets/mirex-mood \
        --quadrant-data ../shared/datasets/4q-emotion --seeds 2 -o research/out/clusters.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_CLASSES = 5
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)  # the descriptor branch's inverse L2 strength, chosen per fold
POSITIVE_CLUSTERS, NEGATIVE_CLUSTERS = (1, 3), (2, 4)  # 0-based: Cheerful, Humorous | Wistful, Aggressive
FUSION_VARIANTS = (
    "base",
    "fusion+va",
    "fusion+va2",
    "branch:tags",
    "branch:tags+key",
    "branch:tags+key+dis",
    "branch:tags+key + va",
)
AUDIO_VARIANTS = ("audio+tags+key", "audio+tags+key + va")


def quiet(iterable, **_):
    return iterable


# ------------------------------------------------------------------ songs and their descriptors


@dataclass
class Songs:
    features: dict  # branch → items (None where a song lacks it)
    y: np.ndarray
    groups: np.ndarray
    blocks: dict  # descriptor name → [n, d]


def descriptor_blocks(windows: list, tonal: list, head) -> dict[str, np.ndarray]:
    """Per song: tags (50 log-odds), key (7), dis (3), va (the head's four quadrant probabilities)."""
    from mer_tag.models.quadrant import pool_track
    from mer_tag.train.quadrant import head_probs, tag_layer
    from mer_tag.valence import TONAL_SLICES, head_features, log_odds, tag_probabilities

    layer = tag_layer()
    tags = np.stack([tag_probabilities(w, *layer) for w in windows])
    tonal_values = np.stack(tonal).astype(np.float64)
    inputs = np.stack([head_features(head.inputs, pool_track(w), t, v) for w, t, v in zip(windows, tags, tonal_values)])
    return {
        "tags": log_odds(tags),
        "key": tonal_values[:, TONAL_SLICES["key"]],
        "dis": tonal_values[:, TONAL_SLICES["dissonance"]],
        "va": head_probs(head, inputs),
        "head_inputs": inputs,
    }


def mirex_songs(data: str, cache: str, jobs: int, head) -> Songs:
    from mer_tag.features import AudioConfig, config_from_json
    from mer_tag.models.fusion import BRANCHES
    from mer_tag.train.crossval import Extraction, dev_songs
    from mer_tag.train.datasets import load_dataset
    from mer_tag.train.extract import FeatureCache, extract_tonal
    from mer_tag.train.recipe import load_preset

    config = load_preset("default")
    examples, y, groups = dev_songs(load_dataset(data), config)
    extraction = Extraction(FeatureCache(Path(cache)), jobs, "fp32")
    features = {name: extraction.of(name, config, examples) for name in BRANCHES}
    keep = [i for i, x in enumerate(features["audio"]) if x is not None]  # as crossval: no audio, no song
    features = {name: [items[i] for i in keep] for name, items in features.items()}
    audio_config = config_from_json(AudioConfig, config["audio"]["features"])
    tonal = extract_tonal([examples[i].audio_path for i in keep], audio_config, extraction.cache, jobs, quiet)
    blocks = descriptor_blocks(features["audio"], tonal, head)
    return Songs(features, y[keep], groups[keep], blocks)


def quadrant_songs_oof(data: str, cache: str, jobs: int, head) -> Songs:
    """The 4Q songs (all 640): window embeddings, quadrant labels, descriptors, and the head's quadrant
    probabilities out-of-fold (artist-grouped 5 folds, the shipped settings) instead of the shipped head's,
    which learned from these songs."""
    from mer_tag.train.datasets import artist_group
    from mer_tag.train.extract import FeatureCache
    from mer_tag.train.quadrant import fit_head, head_probs, quadrant_dataset, song_tonal
    from mer_tag.train.recipe import load_preset
    from mer_tag.train.splits import grouped_folds

    config = load_preset("default")
    dataset = quadrant_dataset(data, config)
    from mer_tag.train.extract import extract_branch

    fc = FeatureCache(Path(cache))
    audio, _ = extract_branch("audio", config, dataset.examples, fc, jobs, quiet)
    keep = [i for i, x in enumerate(audio) if x is not None]
    examples = [dataset.examples[i] for i in keep]
    windows = [audio[i] for i in keep]
    tonal = song_tonal(config, examples, fc, jobs, quiet, "fp32")
    y = np.array([e.label for e in examples], dtype=int)
    groups = np.array([artist_group(e.artist, e.id) for e in examples])
    blocks = descriptor_blocks(windows, tonal, head)
    oof = np.zeros((len(y), 4))
    for held in grouped_folds(y, groups, 5, 0):
        fit = np.setdiff1d(np.arange(len(y)), held)
        oof[held] = head_probs(
            fit_head(blocks["head_inputs"][fit], y[fit], config["quadrant"]), blocks["head_inputs"][held]
        )
    blocks["va"] = oof
    return Songs({"audio": windows}, y, groups, blocks)


# ------------------------------------------------------------------ the descriptor branch (a 4th input)


def _standardised_lr(x, y, C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0).clip(min=1e-6)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
    return mean, std, model.fit((x - mean) / std, y)


def _lr_probs(fitted, x) -> np.ndarray:
    mean, std, model = fitted
    probs = np.zeros((len(x), N_CLASSES))
    probs[:, model.classes_] = model.predict_proba((x - mean) / std)
    return probs


def descriptor_branch(x, y, groups, fit, stop, seed):
    """As the recipe makes a branch: out-of-fold probabilities over `fit` (grouped inner folds) and `stop`
    (the model fit on `fit`), and that model; C chosen by the inner folds' log-loss."""
    from mer_tag.train.splits import grouped_folds

    fit = np.asarray(fit)
    inner = list(grouped_folds(y[fit], groups[fit], 5, seed))
    best = None
    for C in C_GRID:
        oof = np.zeros((len(fit), N_CLASSES))
        for held in inner:
            train = np.setdiff1d(np.arange(len(fit)), held)
            oof[held] = _lr_probs(_standardised_lr(x[fit[train]], y[fit[train]], C, seed), x[fit[held]])
        loss = -np.mean(np.log(np.clip(oof[np.arange(len(fit)), y[fit]], 1e-6, 1)))
        if best is None or loss < best[0]:
            best = (loss, C, oof)
    _, C, oof = best
    model = _standardised_lr(x[fit], y[fit], C, seed)
    out = dict(zip(fit.tolist(), oof))
    out.update(zip(np.asarray(stop).tolist(), _lr_probs(model, x[stop])))
    return out, model, C


# ------------------------------------------------------------------ the fusion with extra inputs


class WideFusion:
    """The shipped fusion (models.fusion.LateFusion's inputs: each branch's log-probabilities × presence, and
    the presence mask; one linear layer; trained as recipe.fit_fusion trains it) with per-song extra inputs
    that are always present (they come from the audio). Without extras it is the shipped fusion."""

    SETTINGS = {"epochs": 300, "batch_size": 64, "lr": 1e-2, "weight_decay": 1e-3, "optimizer": "adamw"}

    def __init__(self, n_extra: int):
        self.n_extra = n_extra

    def _model(self, seed):
        import torch
        from torch import nn

        from mer_tag.models.fusion import BRANCHES, LateFusion

        torch.manual_seed(seed)
        n_extra = self.n_extra

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(len(BRANCHES) * (N_CLASSES + 1) + n_extra, N_CLASSES)

            def forward(self, log_probs, present, extra):
                return self.net(torch.cat([LateFusion.inputs(log_probs, present), extra], -1))

        return Net()

    @staticmethod
    def collate(items, targets, train):
        import torch

        log_probs = torch.from_numpy(np.stack([i[0] for i in items]).astype(np.float32))
        present = torch.from_numpy(np.stack([i[1] for i in items]))
        extra = torch.from_numpy(np.stack([i[2] for i in items]).astype(np.float32))
        y = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        return (log_probs, present, extra), y

    def fit(self, probs: dict, extra: dict, idx, y, seed):
        from mer_tag.models.fusion import BRANCHES
        from mer_tag.train.branches import fusion_items, loop_config
        from mer_tag.train.loop import fit

        idx = [i for i in idx if i in probs["audio"]]
        items, source = fusion_items({b: [probs[b].get(i) for i in idx] for b in BRANCHES}, BRANCHES, N_CLASSES, True)
        items = [(lp, pr, extra[idx[s]]) for (lp, pr), s in zip(items, source)]
        model = self._model(seed)
        fit(
            model,
            items,
            y[np.asarray(idx)][source],
            self.collate,
            loop_config(self.SETTINGS, seed),
            n_classes=N_CLASSES,
        )
        return model

    def predict(self, model, probs: dict, extra: dict, idx) -> np.ndarray:
        from mer_tag.models.fusion import BRANCHES
        from mer_tag.train.branches import fusion_items
        from mer_tag.train.loop import predict_proba

        items, _ = fusion_items({b: [probs[b].get(i) for i in idx] for b in BRANCHES}, BRANCHES, N_CLASSES, False)
        items = [(lp, pr, extra[i]) for (lp, pr), i in zip(items, idx)]
        return predict_proba(model, items, self.collate)


def log_floor(p):
    return np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1.0))


def va2(quadrant_probs):
    """Valence and arousal log-odds from quadrant probabilities."""
    from mer_tag.models.quadrant import ENERGETIC, POSITIVE
    from mer_tag.valence import log_odds

    q = np.asarray(quadrant_probs)
    return np.column_stack([log_odds(q @ np.asarray(POSITIVE)), log_odds(q @ np.asarray(ENERGETIC))])


# ------------------------------------------------------------------ the audio head with the descriptors


def song_audio_branch(section: dict):
    """The audio branch whose items are (chunks' window embeddings, descriptors): the descriptors,
    standardised on the training songs, join the BiGRU's attention-pooled state before the classifier."""
    import torch
    from torch import nn

    from mer_tag.models.crnn import MusicnnCRNN
    from mer_tag.train.branches import AudioBranch

    class SongCRNN(MusicnnCRNN):
        def __init__(self, n_extra, **dims):
            super().__init__(**dims)
            self.register_buffer("extra_mean", torch.zeros(n_extra))
            self.register_buffer("extra_std", torch.ones(n_extra))
            dropout, hidden = self.head[0].p, self.head[1].in_features
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden + n_extra, self.head[1].out_features))

        def forward(self, patches, extra):
            extra = (extra - self.extra_mean) / self.extra_std
            return self.head(torch.cat([self.embed(patches), extra], -1))

    class SongAudioBranch(AudioBranch):
        def build(self):
            dims = {k: v for k, v in self.dims.items() if k not in ("arch",)}
            return SongCRNN(**dims)

        def prepare(self, model, items):
            extra = np.stack([x[1] for x in items])
            model.extra_mean.copy_(torch.from_numpy(extra.mean(0).astype(np.float32)))
            model.extra_std.copy_(torch.from_numpy(extra.std(0).clip(min=1e-6).astype(np.float32)))

        def collate(self, items, targets, train):
            (chunks,), y = super().collate([x[0] for x in items], targets, train)
            return (chunks, torch.from_numpy(np.stack([x[1] for x in items]).astype(np.float32))), y

        def predict_excerpts(self, model, items):
            model.eval()
            songs, excerpts = [], []
            with torch.inference_mode():
                for chunks, extra in items:
                    x = torch.from_numpy(np.asarray(chunks, dtype=np.float32))
                    e = torch.from_numpy(np.asarray(extra, dtype=np.float32))[None].expand(len(x), -1)
                    probs = torch.softmax(model(x, e), -1)
                    songs.append(probs.mean(0).numpy())
                    excerpts.append(probs.numpy())
            return np.stack(songs), excerpts

    return SongAudioBranch


def fit_song_audio(config, items, y, groups, fit, stop, seed, n_extra):
    """The recipe's audio branch (fit_branch, the shipped ensemble of the full and fold models) with the
    descriptors beside the embeddings. Returns (a predict function, out-of-fold probabilities)."""
    from mer_tag.train.recipe import fit_branch

    section = dict(config["audio"])
    dims = {**section.get("model", {}), "n_classes": N_CLASSES, "n_extra": n_extra, "arch": "musicnn_crnn"}
    branch = song_audio_branch(section)("audio", dims, section)
    model, _, fold_models, oof = fit_branch(branch, items, y, groups, fit, stop, 5, seed, N_CLASSES)
    members = [model, *fold_models]

    def predict(song_items):
        return np.mean([branch.predict(m, song_items) for m in members], axis=0)

    return predict, oof


# ------------------------------------------------------------------ scores


def cluster_valence(probs: np.ndarray) -> np.ndarray:
    """The side the clusters imply: P(Cheerful) + P(Humorous) − P(Wistful) − P(Aggressive)."""
    return probs[:, list(POSITIVE_CLUSTERS)].sum(1) - probs[:, list(NEGATIVE_CLUSTERS)].sum(1)


def auc(truth, score) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, score)) if len(set(np.asarray(truth).tolist())) == 2 else float("nan")


def fold_valence(songs: Songs, rest, held, seed) -> dict[str, np.ndarray]:
    """The held songs' `valence` column: the head's (audio), and fused with a lyrics valence learned on the
    fold's other songs (`train/valence.py`), as `train` learns it."""
    from mer_tag.models.quadrant import POSITIVE
    from mer_tag.train.valence import ValenceSongs, fit_valence, fused_valence

    audio = songs.blocks["va"] @ np.asarray(POSITIVE)
    lyrics = songs.features["lyrics"]
    train = ValenceSongs.from_clusters(audio, lyrics, songs.y, songs.groups).among(rest)
    head = fit_valence(train, {})
    held_songs = ValenceSongs(
        audio[held], [lyrics[i] for i in held], np.zeros(len(held), int), np.zeros(len(held)), held
    )
    _, fused = fused_valence(head, held_songs)
    return {"audio": audio[held], "fused": fused}


# ------------------------------------------------------------------ the study


def run(data, quadrant_data, seeds, cache, jobs, variants, out, log=print):
    from mer_tag import bundle as bundles
    from mer_tag.models.fusion import BRANCHES
    from mer_tag.train.crossval import fold_splits
    from mer_tag.train.evaluate import macro_f1
    from mer_tag.train.recipe import branch_probs, fit_fusion, fit_recipe_branch, fused_probs, load_preset
    from mer_tag.valence import CLUSTER_SIDES, disagreement_share

    head = bundles.load("default").models["quadrant"]
    config = load_preset("default")
    songs = mirex_songs(data, cache, jobs, head)
    q = quadrant_songs_oof(quadrant_data, cache, jobs, head) if quadrant_data else None
    log(f"{len(songs.y)} MIREX-like songs; {0 if q is None else len(q.y)} 4Q songs")
    y, groups = songs.y, songs.groups
    sides = np.asarray(CLUSTER_SIDES)[y]
    per_fold: dict[str, dict[str, list]] = {}
    held_all: dict[str, dict[int, list]] = {}  # variant → seed → (held, probs) per fold

    def record(name, seed, held, probs, valence, q_probs):
        entry = per_fold.setdefault(name, {})
        entry.setdefault("macro_f1", []).append(macro_f1(y[held], probs.argmax(1), N_CLASSES))
        entry.setdefault("accuracy", []).append(float(np.mean(y[held] == probs.argmax(1))))
        sided = sides[held] != 0
        entry.setdefault("side_auc", []).append(auc(sides[held][sided] > 0, cluster_valence(probs)[sided]))
        for kind, values in valence.items():
            share, n = disagreement_share(values, probs.argmax(1) + 1)
            entry.setdefault(f"disagree_{kind}", []).append(share)
            entry.setdefault(f"disagree_{kind}_n", []).append(n)
        if q_probs is not None:
            q_positive = np.isin(q.y, (0, 3))
            entry.setdefault("to_4q_valence_auc", []).append(auc(q_positive, cluster_valence(q_probs)))
        held_all.setdefault(name, {}).setdefault(seed, []).append((held, probs))

    blocks = songs.blocks
    started = time.time()
    for seed in range(seeds):
        for k, fit, stop, held in fold_splits(y, groups, 5, seed):
            rest = np.sort(np.concatenate([fit, stop]))
            fold_seed = seed + k
            oof, held_probs, audio_model = {}, {}, None
            for name in BRANCHES:
                made = fit_recipe_branch(config, name, songs.features[name], y, groups, fit, stop, fold_seed, N_CLASSES)
                oof[name] = made.oof if made else {}
                held_probs[name] = (
                    branch_probs(made.trainer, made.model, songs.features[name], held) if made else [None] * len(held)
                )
                if name == "audio":
                    audio_model = made
            valence = fold_valence(songs, rest, held, fold_seed)
            q_audio = audio_model.trainer.predict(audio_model.model, q.features["audio"]) if q is not None else None

            n_q = 0 if q is None else len(q.y)
            q_branches = {"audio": list(q_audio), "lyrics": [None] * n_q, "midi": [None] * n_q} if n_q else None
            # base: the shipped recipe's fusion
            fusion, fusion_model = fit_fusion(config.get("fusion", {}), oof, rest.tolist(), y, N_CLASSES, fold_seed)
            base = fused_probs(fusion, fusion_model, held_probs, N_CLASSES)
            q_base = fused_probs(fusion, fusion_model, q_branches, N_CLASSES) if q_branches else None
            record("base", seed, held, base, valence, q_base)
            held_dict = {b: dict(zip(held.tolist(), held_probs[b])) for b in BRANCHES}
            for name in (v for v in variants if v in FUSION_VARIANTS and v != "base"):
                extra, q_extra = variant_extras(name, blocks, y, groups, fit, stop, fold_seed, q)
                wide = WideFusion(extra.shape[1])
                model = wide.fit(oof, extra, rest.tolist(), y, fold_seed)
                probs = wide.predict(model, held_dict, extra, held.tolist())
                q_probs = None
                if q is not None:
                    q_dict = {"audio": dict(enumerate(q_audio)), "lyrics": {}, "midi": {}}
                    q_probs = wide.predict(model, q_dict, q_extra, list(range(len(q.y))))
                record(name, seed, held, probs, valence, q_probs)
            audio_variants = [v for v in variants if v in AUDIO_VARIANTS]
            if audio_variants:
                for name, probs, q_probs in song_audio_variants(
                    audio_variants, config, songs, q, oof, held_probs, fit, stop, held, fold_seed
                ):
                    record(name, seed, held, probs, valence, q_probs)
            log(
                f"  fold {k} (seed {seed}, {time.time() - started:.0f} s): "
                + ", ".join(f"{n} {v['macro_f1'][-1]:.3f}" for n, v in per_fold.items())
            )
    report = summarise(per_fold, held_all, y, seeds)
    report["protocol"] = {
        "seeds": seeds,
        "folds": 5,
        "songs": int(len(y)),
        "quadrant_songs": 0 if q is None else int(len(q.y)),
    }
    Path(out).write_text(json.dumps(report, indent=1) + "\n")
    print_table(report, log)
    return report


def song_audio_variants(names, config, songs, q, oof, held_probs, fit, stop, held, seed):
    """(name, held songs' fused probabilities, 4Q songs' or None) of each audio-head variant: the audio
    branch retrained once with the tag prior and key/mode beside its embeddings, then the shipped fusion
    (or the fusion with the head's quadrant log-probabilities, for '+ va')."""
    from mer_tag.models.fusion import BRANCHES
    from mer_tag.train.recipe import fit_fusion, fused_probs

    y, groups, blocks = songs.y, songs.groups, songs.blocks
    rest = np.sort(np.concatenate([fit, stop])).tolist()
    x = np.hstack([blocks["tags"], blocks["key"]])
    items = list(zip(songs.features["audio"], x))
    predict, audio_oof = fit_song_audio(config, items, y, groups, fit, stop, seed, x.shape[1])
    oof = {**oof, "audio": audio_oof}
    held_probs = {**held_probs, "audio": list(predict([items[i] for i in held]))}
    n_q = 0 if q is None else len(q.y)
    q_probs = None
    if q is not None:
        q_items = list(zip(q.features["audio"], np.hstack([q.blocks["tags"], q.blocks["key"]])))
        q_probs = {"audio": list(predict(q_items)), "lyrics": [None] * n_q, "midi": [None] * n_q}
    for name in names:
        if name.endswith(" + va"):
            extra = log_floor(blocks["va"])
            wide = WideFusion(extra.shape[1])
            model = wide.fit(oof, extra, rest, y, seed)
            held_dict = {b: dict(zip(held.tolist(), held_probs[b])) for b in BRANCHES}
            probs = wide.predict(model, held_dict, extra, held.tolist())
            q_out = None
            if q is not None:
                q_dict = {"audio": dict(enumerate(q_probs["audio"])), "lyrics": {}, "midi": {}}
                q_out = wide.predict(model, q_dict, log_floor(q.blocks["va"]), list(range(n_q)))
        else:
            fusion, model = fit_fusion(config.get("fusion", {}), oof, rest, y, N_CLASSES, seed)
            probs = fused_probs(fusion, model, held_probs, N_CLASSES)
            q_out = None if q is None else fused_probs(fusion, model, q_probs, N_CLASSES)
        yield name, probs, q_out


def variant_extras(name, blocks, y, groups, fit, stop, seed, q):
    """(the MIREX songs' extra fusion inputs [n, d], the 4Q songs' or None) of a fusion variant."""
    if name == "fusion+va":
        return log_floor(blocks["va"]), None if q is None else log_floor(q.blocks["va"])
    if name == "fusion+va2":
        return va2(blocks["va"]), None if q is None else va2(q.blocks["va"])
    family = name.removeprefix("branch:").removesuffix(" + va").split("+")
    x = np.hstack([blocks[f] for f in family])
    oof, model, _ = descriptor_branch(x, y, groups, fit, stop, seed)
    extra = np.zeros((len(y), N_CLASSES))
    for i, p in oof.items():
        extra[i] = p
    rest = np.sort(np.concatenate([fit, stop]))
    others = np.setdiff1d(np.arange(len(y)), rest)
    extra[others] = _lr_probs(model, x[others])  # the held songs: the model fit on `fit`
    extra = log_floor(extra)
    q_extra = None
    if q is not None:
        q_extra = log_floor(_lr_probs(model, np.hstack([q.blocks[f] for f in family])))
    if name.endswith(" + va"):
        extra = np.hstack([extra, log_floor(blocks["va"])])
        q_extra = None if q is None else np.hstack([q_extra, log_floor(q.blocks["va"])])
    return extra, q_extra


def summarise(per_fold, held_all, y, seeds) -> dict:
    from mer_tag.train.evaluate import accuracy_by_coverage, coverage_scores

    report: dict = {"variants": {}}
    base = per_fold["base"]
    for name, entry in per_fold.items():
        row: dict = {"folds": entry}
        for metric in ("macro_f1", "accuracy", "side_auc", "to_4q_valence_auc"):
            if metric not in entry:
                continue
            values = np.asarray(entry[metric])
            delta = values - np.asarray(base[metric])
            row[metric] = {"mean": float(values.mean()), "std": float(values.std())}
            row[f"delta_{metric}"] = {
                "mean": float(delta.mean()),
                "std": float(delta.std()),
                "per_seed": [float(d.mean()) for d in np.array_split(delta, seeds)],
            }
        for kind in ("audio", "fused"):
            shares, ns = np.asarray(entry[f"disagree_{kind}"]), np.asarray(entry[f"disagree_{kind}_n"])
            row[f"disagree_{kind}"] = float((shares * ns).sum() / ns.sum())
        coverage = []
        for seed in range(seeds):
            held = np.concatenate([h for h, _ in held_all[name][seed]])
            probs = np.concatenate([p for _, p in held_all[name][seed]])
            coverage.append(coverage_scores(accuracy_by_coverage(y[held], probs)))
        for key in coverage[0]:
            values = np.asarray([c[key] for c in coverage])
            row[key] = {"mean": float(values.mean()), "std": float(values.std()), "per_seed": values.tolist()}
        report["variants"][name] = row
    return report


def print_table(report: dict, log=print) -> None:
    log(
        "| variant | fused macro-F1 | Δ (per seed) | accuracy | top 50 % right | Δ top 50 % | "
        "side AUC | disagree (audio / fused valence) | clusters → 4Q valence AUC |"
    )
    log("|---|---|---|---|---|---|---|---|---|")
    base_top = report["variants"]["base"]["accuracy_of_top_50pct"]["per_seed"]
    for name, row in report["variants"].items():
        f1, d = row["macro_f1"], row["delta_macro_f1"]
        top = row["accuracy_of_top_50pct"]
        d_top = np.asarray(top["per_seed"]) - np.asarray(base_top)
        q = row.get("to_4q_valence_auc", {}).get("mean", float("nan"))
        log(
            f"| {name} | {f1['mean']:.3f} ± {f1['std']:.3f} | {d['mean']:+.3f} ± {d['std']:.3f} "
            f"({', '.join(f'{v:+.3f}' for v in d['per_seed'])}) | {row['accuracy']['mean']:.3f} | "
            f"{top['mean']:.3f} ({', '.join(f'{v:.3f}' for v in top['per_seed'])}) | "
            f"{', '.join(f'{v:+.3f}' for v in d_top)} | {row['side_auc']['mean']:.3f} | "
            f"{row['disagree_audio']:.1%} / {row['disagree_fused']:.1%} | {q:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--quadrant-data")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variant", action="append", help="repeatable; default: all")
    parser.add_argument("-o", "--out", default="research/out/clusters.json")
    args = parser.parse_args()
    variants = args.variant or [*FUSION_VARIANTS, *AUDIO_VARIANTS]
    if "base" not in variants:
        variants = ["base", *variants]
    import torch

    torch.set_num_threads(max(1, args.jobs))  # as `mer-tag crossval`: the same numbers
    run(args.data, args.quadrant_data, args.seeds, args.cache, args.jobs, variants, args.out)


if __name__ == "__main__":
    main()
