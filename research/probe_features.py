"""Would other features help? Artist-grouped CV of the shipped heads on alternatives to what they read.

Each probe swaps what one branch's head reads, keeps the head and its training as the `default` preset
has them, and scores it with the same grouped folds as `mer-tag crossval` (mean ± spread over
5 folds × `--seeds`). The songs are the preset split's train + val; the test artists are never heard.

Audio probes read the student's log-mel input (the first 30-s chunk of each song, as the distillation
heard it), decoded once into the feature cache and then reused:
- `embedding`: the student's 200-d window embeddings (what ships);
- `pre-projection`: the mean and max of its last conv layer per window (512-d), before the linear map;
- `layer3`: the same from the third conv layer;
- `tag-logits`: the embeddings through musicnn's own 50-tag output layer (its MSD tags, as logits);
- `offsets`: the head trained on windows starting at 0, 0.5 … 2.5 s (six views a song) and scored as the
  mean of those views;
- `finetune`: the student fine-tuned end to end with the head (lr 1e-4, 12 epochs, early-stopped).
Lyrics probes read MiniLM's states of the first 256-token window:
- `last-layer` (what ships), `layer5`, `layers4-6` (their mean), `layers5+6` (concatenated), `l2` (the
  shipped pool, L2-normalised as sentence-transformers does);
- `tfidf` (word unigrams, logistic regression) and `tfidf+minilm` (the two probabilities' geometric mean).

Fusion probes (`--fusion-probs`) read the fold probabilities `mer-tag crossval --branch fused --probs`
saved, refit the shipped fusion on each fold's out-of-fold rows (it must reproduce crossval's fused
scores) and set beside it logistic regression on the same inputs and a weighted product of the branches'
probabilities (weights chosen on the fold's training rows).

    python research/probe_features.py --data ../shared/datasets/mirex-mood --seeds 3
    python research/probe_features.py --data ../shared/datasets/mirex-mood --probe offsets --probe tfidf
    python research/probe_features.py --fusion-probs cv.npz   # from `mer-tag crossval --branch fused --probs`
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

AUDIO_PROBES = ("embedding", "pre-projection", "layer3", "tag-logits", "offsets", "finetune")
LYRICS_PROBES = ("last-layer", "layer5", "layers4-6", "layers5+6", "l2", "tfidf", "tfidf+minilm")
OFFSETS_S = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)  # window starts of the `offsets` views, seconds
WINDOW_S = 3.0  # musicnn's patch length, seconds


def grouped_scores(y, groups, seeds: int, fit_predict) -> list[float]:
    """crossval's grouped folds (5 per seed) for every seed: macro-F1 per fold."""
    from mer_tag.train.crossval import grouped_fold_scores

    return [score for seed in range(seeds) for score in grouped_fold_scores(y, groups, 5, seed, 5, fit_predict)]


# ------------------------------------------------------------------ audio


def audio_views(probe: str, mel) -> list[np.ndarray]:
    """Per-window features [songs, windows, dim] of each view (one view except for `offsets`)."""
    import torch

    from mer_tag.models.musicnn import Musicnn
    from mer_tag.models.student import MusicnnStudent

    student = MusicnnStudent.load()
    with torch.inference_mode():
        x = (mel - student.mel_mean[:, None]) / student.mel_std[:, None]
        layers = []
        for block in student.cnn:
            x = block(x)
            layers.append(x)
        bounds = student.window_bounds([WINDOW_S * i for i in range(10)], layers[-1].shape[2])
        if probe == "pre-projection":
            return [mean_max(layers[-1], bounds, 1)]
        if probe == "layer3":
            return [mean_max(layers[2], bounds, 1)]
        embeddings = student.pool(layers[-1], bounds)
        if probe == "tag-logits":
            return [Musicnn.load().output(embeddings).numpy()]
        if probe == "offsets":
            return [
                student.pool(
                    layers[-1],
                    student.window_bounds(
                        [start + WINDOW_S * i for i in range(10 if start == 0 else 9)], layers[-1].shape[2]
                    ),
                ).numpy()
                for start in OFFSETS_S
            ]
        return [embeddings.numpy()]


def mean_max(features, bounds, scale: int) -> np.ndarray:
    """[B, C, steps] → [B, windows, 2C]: mean and max over each window's steps."""
    import torch

    return torch.stack(
        [
            torch.cat([features[:, :, a * scale : b * scale].mean(2), features[:, :, a * scale : b * scale].amax(2)], 1)
            for a, b in bounds
        ],
        1,
    ).numpy()


def audio_probe(probe: str, mel, y, groups, config, seeds: int) -> list[float]:
    from mer_tag.train.branches import make_branch

    views = audio_views(probe, mel)
    if probe == "finetune":
        return grouped_scores(
            y, groups, seeds, lambda fit, stop, held, seed: finetune(mel, views[0], y, fit, stop, held, seed, config)
        )
    section = copy.deepcopy(config["audio"])
    section.setdefault("model", {})["embed_dim"] = views[0].shape[-1]
    branch = make_branch("audio", section, 5, "musicnn_student")

    def fit_predict(fit, stop, held, seed):
        train_items = [view[i][None] for view in views for i in fit]  # every view of a song is one more example
        model, _ = branch.train(
            train_items, np.tile(y[fit], len(views)), [views[0][i][None] for i in stop], y[stop], 5, seed, None
        )
        log_probs = [np.log(branch.predict(model, [view[i][None] for i in held])) for view in views]
        return np.mean(log_probs, 0).argmax(1)

    return grouped_scores(y, groups, seeds, fit_predict)


def finetune(mel, embeddings, y, fit, stop, held, seed, config, epochs: int = 12, student_lr: float = 1e-4):
    """The head trained as shipped on frozen embeddings, then student and head trained together on random
    24-s crops (batch norm statistics kept), the epoch with the best stop-set macro-F1 kept."""
    import torch

    from mer_tag.models.student import MusicnnStudent
    from mer_tag.train.branches import make_branch
    from mer_tag.train.evaluate import macro_f1

    student = MusicnnStudent.load()  # a fresh copy per fold: fine-tuning changes it
    branch = make_branch("audio", copy.deepcopy(config["audio"]), 5, "musicnn_student")
    head, _ = branch.train(
        [embeddings[i][None] for i in fit], y[fit], [embeddings[i][None] for i in stop], y[stop], 5, seed, None
    )

    def predict(idx):
        student.eval(), head.eval()
        with torch.inference_mode():
            return head(student(mel[idx])).argmax(1).numpy()

    torch.manual_seed(seed)
    rng, crop = np.random.default_rng(seed), int(24 / student.frame_seconds)
    weights = torch.tensor(len(fit) / (5 * np.maximum(np.bincount(y[fit], minlength=5), 1)), dtype=torch.float32)
    optimizer = torch.optim.AdamW(
        [{"params": student.parameters(), "lr": student_lr}, {"params": head.parameters(), "lr": 3e-4}],
        weight_decay=1e-2,
    )
    best = (macro_f1(y[stop], predict(stop), 5), copy.deepcopy(student.state_dict()), copy.deepcopy(head.state_dict()))
    for _ in range(epochs):
        student.train(), head.train()
        for module in student.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.eval()
        order = rng.permutation(fit)
        for b in range(0, len(order), 32):
            idx, start = order[b : b + 32], rng.integers(0, mel.shape[2] - crop + 1)
            loss = torch.nn.functional.cross_entropy(
                head(student(mel[idx][:, :, start : start + crop])), torch.from_numpy(y[idx]), weight=weights
            )
            optimizer.zero_grad(), loss.backward(), optimizer.step()
        score = macro_f1(y[stop], predict(stop), 5)
        if score > best[0]:
            best = (score, copy.deepcopy(student.state_dict()), copy.deepcopy(head.state_dict()))
    student.load_state_dict(best[1]), head.load_state_dict(best[2])
    return predict(held)


def student_mels(data: str, config, jobs: int, cache: str | Path = ".cache/features"):
    """(log-mel [songs, 64, frames] of each dev song's first 30-s chunk, their dataset indices, labels, groups):
    the student's own input, as tools/distill_musicnn.py computes it, from the feature cache."""
    import torch

    from mer_tag.train.extract import FeatureCache, extract_branch

    dataset, y, groups, dev = dev_songs(data, config)
    logmel = {"audio": {"features": {**config["audio"]["features"], "frontend": "logmel"}}}  # not its embeddings
    items, _ = extract_branch(
        "audio", logmel, [dataset.examples[i] for i in dev], FeatureCache(Path(cache)), jobs, lambda it, **kw: it
    )
    ok = [j for j, x in enumerate(items) if x is not None]
    mel = np.stack([items[j][0] for j in ok]).astype(np.float32)
    return torch.from_numpy(mel), np.asarray(dev)[ok], y, groups


# ------------------------------------------------------------------ lyrics


def lyrics_states(dataset, songs) -> np.ndarray:
    """[songs, 7, 384]: the masked mean of the embeddings and of each layer's states, first window."""
    import torch

    from mer_tag.features import LyricsConfig, lyrics_windows
    from mer_tag.models.lyrics import LyricsClassifier, load_tokenizer
    from mer_tag.sources.lyrics import clean_lyrics, read_lyrics_file

    tokenizer, classifier = load_tokenizer(), LyricsClassifier()
    classifier.attach_encoder()
    bert, pools = classifier.encoder, []
    with torch.inference_mode():
        for i in songs:
            window = lyrics_windows(
                clean_lyrics(read_lyrics_file(dataset.examples[i].lyrics_path)), tokenizer, LyricsConfig()
            )
            ids, mask = torch.from_numpy(window["input_ids"][:1]), torch.from_numpy(window["attention_mask"][:1])
            x, keep, weights = bert.embeddings(ids), mask[:, None, None, :].bool(), mask.unsqueeze(-1).float()
            per_layer = [(x * weights).sum(1) / weights.sum(1)]
            for layer in bert.encoder.layer:
                x = layer(x, keep)
                per_layer.append((x * weights).sum(1) / weights.sum(1))
            pools.append(torch.cat(per_layer).numpy())
    return np.stack(pools)


def lyrics_probe(probe: str, states, texts, y, groups, config, seeds: int) -> list[float]:
    from mer_tag.train.branches import make_branch

    pooled = {
        "last-layer": states[:, 6],
        "layer5": states[:, 5],
        "layers4-6": states[:, 4:].mean(1),
        "layers5+6": np.concatenate([states[:, 5], states[:, 6]], 1),
        "l2": states[:, 6] / np.linalg.norm(states[:, 6], axis=1, keepdims=True),
    }
    features = pooled.get(probe, states[:, 6]).astype(np.float32)
    section = copy.deepcopy(config["lyrics"])
    section["model"] = {**section.get("model", {}), "hidden": features.shape[1]}
    branch = make_branch("lyrics", section, 5)

    def fit_predict(fit, stop, held, seed):
        log_probs = 0.0
        if probe != "tfidf":
            model, _ = branch.train(list(features[fit]), y[fit], list(features[stop]), y[stop], 5, seed, None)
            log_probs = np.log(branch.predict(model, list(features[held])))
        if probe.startswith("tfidf"):
            log_probs = log_probs + np.log(tfidf_probs(texts, np.concatenate([fit, stop]), held, y))
        return np.asarray(log_probs).argmax(1)

    return grouped_scores(y, groups, seeds, fit_predict)


def tfidf_probs(texts, train, held, y) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True, max_features=20000)
    train_x = vectorizer.fit_transform([texts[i] for i in train])
    model = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(train_x, y[train])
    return model.predict_proba(vectorizer.transform([texts[i] for i in held]))


# ------------------------------------------------------------------ fusion


def fusion_probes(path: str) -> dict[str, list[float]]:
    """Macro-F1 per saved fold of the shipped fusion refit and of its alternatives."""
    import re

    from sklearn.linear_model import LogisticRegression

    from mer_tag.models.fusion import BRANCHES
    from mer_tag.train.evaluate import macro_f1
    from mer_tag.train.recipe import fit_fusion, fused_probs

    saved = np.load(path)
    y = saved["labels"]
    scores: dict = {}
    for fold in sorted({m.group(1) for m in (re.match(r"(s\d+f\d+)_fused_held$", k) for k in saved.files) if m}):
        seed, k = (int(n) for n in re.findall(r"\d+", fold))
        rows = {
            part: {
                b: {int(r[0]): r[1:] for r in saved[f"{fold}_{b}_{part}"]} if f"{fold}_{b}_{part}" in saved else {}
                for b in BRANCHES
            }
            for part in ("oof", "held")
        }
        train, held = sorted(rows["oof"]["audio"]), sorted(rows["held"]["audio"])
        fusion, model = fit_fusion({}, rows["oof"], train, y, 5, seed + k)
        held_probs = {b: [rows["held"][b].get(i) for i in held] for b in BRANCHES}
        scores.setdefault("shipped fusion (refit)", []).append(
            macro_f1(y[held], fused_probs(fusion, model, held_probs, 5).argmax(1), 5)
        )
        train_x, source = flat_inputs(rows["oof"], train, subsets=True)
        held_x, _ = flat_inputs(rows["held"], held, subsets=False)
        for c in (0.1, 1.0):
            lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(
                train_x, y[np.asarray(train)[source]]
            )
            scores.setdefault(f"logistic regression C={c}", []).append(macro_f1(y[held], lr.predict(held_x), 5))
        grid = [(1.0, wl, wm) for wl in (0.25, 0.5, 0.75, 1.0, 1.5) for wm in (0.0, 0.25, 0.5, 1.0)]
        best = max(grid, key=lambda w: macro_f1(y[train], product(rows["oof"], train, w).argmax(1), 5))
        scores.setdefault("weighted product", []).append(
            macro_f1(y[held], product(rows["held"], held, best).argmax(1), 5)
        )
    return scores


def flat_inputs(probs: dict, songs: list, subsets: bool):
    """The fusion's own inputs (masked log-probabilities and the mask) as one row per item."""
    from mer_tag.models.fusion import BRANCHES
    from mer_tag.train.branches import fusion_items

    items, source = fusion_items({b: [probs[b].get(i) for i in songs] for b in BRANCHES}, BRANCHES, 5, subsets)
    return np.stack([np.concatenate([log_probs.ravel(), mask.astype(float)]) for log_probs, mask in items]), source


def product(probs: dict, songs: list, weights) -> np.ndarray:
    """Σ weight × log-probability over the branches each song has."""
    from mer_tag.models.fusion import BRANCHES

    total = np.zeros((len(songs), 5))
    for branch, weight in zip(BRANCHES, weights):
        for j, song in enumerate(songs):
            if song in probs[branch]:
                total[j] += weight * np.log(np.clip(probs[branch][song], 1e-6, 1))
    return total


# ------------------------------------------------------------------ main


def dev_songs(data: str, config):
    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.splits import preset_split

    dataset = load_dataset(data)
    y = np.array([e.label for e in dataset.examples])
    groups = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = preset_split(y, groups, config)
    return dataset, y, groups, sorted(split["train"] + split["val"])


def run_probes(
    data: str | None,
    fusion_probs: str | None,
    probes: list[str] | None,
    seeds: int,
    jobs: int,
    cache: str | Path = ".cache/features",
) -> None:
    """Print one line per probe: macro-F1 mean ± spread over 5 grouped folds × `seeds`."""
    from mer_tag.sources.lyrics import clean_lyrics, read_lyrics_file
    from mer_tag.train.recipe import load_preset

    if fusion_probs:
        for name, scores in fusion_probes(fusion_probs).items():
            report("fusion", name, 0, scores)
    if not data:
        return
    config = load_preset("default")
    probes = probes or list(AUDIO_PROBES + LYRICS_PROBES)
    if any(p in AUDIO_PROBES for p in probes):
        mel, songs, y, groups = student_mels(data, config, jobs, cache)
        for probe in (p for p in probes if p in AUDIO_PROBES):
            report("audio", probe, len(songs), audio_probe(probe, mel, y[songs], groups[songs], config, seeds))
    if any(p in LYRICS_PROBES for p in probes):
        dataset, y, groups, dev = dev_songs(data, config)
        songs = [i for i in dev if dataset.examples[i].lyrics_path is not None]
        states = lyrics_states(dataset, songs)
        texts = [clean_lyrics(read_lyrics_file(dataset.examples[i].lyrics_path)) for i in songs]
        for probe in (p for p in probes if p in LYRICS_PROBES):
            report(
                "lyrics", probe, len(songs), lyrics_probe(probe, states, texts, y[songs], groups[songs], config, seeds)
            )


def report(branch: str, probe: str, songs: int, scores: list[float]) -> None:
    songs_text = f"{songs} songs, " if songs else ""
    print(
        f"{branch} {probe}: {songs_text}grouped CV macro-F1 {np.mean(scores):.3f} ± {np.std(scores):.3f} "
        f"({len(scores)} folds)",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the dataset (audio and lyrics probes)")
    parser.add_argument("--fusion-probs", help="fold probabilities from `mer-tag crossval --branch fused --probs`")
    parser.add_argument(
        "--probe", action="append", choices=AUDIO_PROBES + LYRICS_PROBES, help="one probe (repeatable; default: all)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="decode workers and torch threads")
    parser.add_argument("--cache", default=".cache/features", help="feature cache (the student's log-mel inputs)")
    args = parser.parse_args(argv)
    if not args.data and not args.fusion_probs:
        parser.error("--data is needed for the audio and lyrics probes")
    import torch

    torch.set_num_threads(max(1, args.jobs))  # this command's own process
    run_probes(args.data, args.fusion_probs, args.probe, args.seeds, args.jobs, args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
