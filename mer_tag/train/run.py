"""`mer-tag train`: dataset → artist-grouped split → features → branches → out-of-fold fusion → bundle + report.

Protocol. Whole artists are held out as `test` (reported, never used to choose anything) and `val`
(early stopping). Each branch trains on `train`. The fusion learns from predictions on songs a branch
never trained on: out-of-fold predictions over `train` (the branch refit on the other folds for as many
epochs as early stopping chose) plus the branch's predictions on `val`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_tag import _fs
from mer_tag.labels import MIREX
from mer_tag.models import combine
from mer_tag.models.fusion import BRANCHES
from mer_tag.train.recipe import (
    TrainError,
    branch_probs,
    branch_skip_reason,
    cross_fit,
    fit_fusion,
    fit_recipe_branch,
    fused_probs,
    load_preset,
    stratified_subset,
)


@dataclass
class TrainResult:
    out: Path
    model_dir: Path
    metrics: dict
    seconds: float


def train(
    data: str | Path,
    preset: str | Path = "default",
    out: str | Path = "runs/default",
    cache: str | Path | None = None,
    jobs: int = 2,
    seed: int = 0,
    limit: int = 0,
    epochs: int = 0,
    progress: bool = True,
    log=print,
    label_map: str | None = None,
    quadrant_data: str | Path | None = None,
    precision: str = "fp32",
) -> TrainResult:
    """Train every branch and the fusion on `data`, write the bundle, metrics, plots and model card to `out`.
    `label_map` (e.g. 'valence') relabels the dataset; it overrides a preset's `[labels] map`.
    `quadrant_data` (songs labelled with their valence–arousal quadrant, the 4Q emotion dataset) adds the
    valence–arousal head (train/quadrant.py). `precision` ('fp32', 'bf16' or 'auto', as `scan --precision`):
    what the frozen encoders run in while the heads' inputs are made. torch runs on `jobs` threads inside
    the call, on as many as before after it."""
    from mer_tag._process import torch_threads
    from mer_tag.models.precision import resolve

    encoder_precision = resolve(precision)  # 'auto' made concrete: the feature cache and the card name what ran
    with torch_threads(jobs):
        return _train(
            data,
            preset,
            Path(out),
            cache,
            jobs,
            seed,
            limit,
            epochs,
            progress,
            log,
            label_map,
            quadrant_data,
            encoder_precision,
        )


def _check_usable(dataset, examples: list, keep: list[int], problems: list) -> None:
    """A TrainError, before anything is written, when the songs with usable audio cannot make a model: none
    at all, or all in one mood."""
    example = f", e.g. {problems[0][0]}: {problems[0][1]}" if problems else ""
    if not keep:
        raise TrainError(f"none of the {len(examples)} songs in {dataset.root} has usable audio{example}")
    moods = {examples[i].label for i in keep}
    if len(moods) < 2:
        name = dataset.labels.names[moods.pop()]
        raise TrainError(
            f"the songs in {dataset.root} with usable audio are all {name}: a model needs two moods or more{example}"
        )


def _train(
    data, preset, out: Path, cache, jobs, seed, limit, epochs, progress, log, label_map, quadrant_data, precision
) -> TrainResult:
    from mer_tag import bundle as bundle_io
    from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig, config_from_json
    from mer_tag.train import extract
    from mer_tag.train.card import card_metrics, make_card, write_reports
    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.splits import preset_split

    started = time.time()
    config = load_preset(preset)
    if label_map:
        config.setdefault("labels", {})["map"] = label_map  # kept in the card's preset
    bar = _progress_factory(progress)

    dataset = load_dataset(data, config.get("labels", {}).get("map"))
    quadrants = None
    if quadrant_data is not None:
        from mer_tag.train.quadrant import quadrant_dataset

        quadrants = quadrant_dataset(quadrant_data, config)  # a wrong dataset is said now, not after the clusters
    examples = stratified_subset(dataset.examples, limit, seed) if limit else dataset.examples
    names = dataset.labels.names
    log(f"{len(examples)} songs from {dataset.root} ({dataset.layout} layout), {len(names)} classes")

    audio_config = config_from_json(AudioConfig, config.get("audio", {}).get("features", {}))
    lyrics_config = config_from_json(LyricsConfig, config.get("lyrics", {}).get("features", {}))
    midi_config = config_from_json(MidiConfig, config.get("midi", {}).get("features", {}))
    feature_cache = extract.FeatureCache(Path(cache) if cache else None)

    def features_of(name: str, songs: list) -> tuple[list, list]:
        return extract.extract_branch(name, config, songs, feature_cache, jobs, bar, precision)

    audio, problems = features_of("audio", examples)
    keep = [i for i, x in enumerate(audio) if x is not None]  # a song without usable audio is left out
    _check_usable(dataset, examples, keep, problems)
    examples, audio = [examples[i] for i in keep], [audio[i] for i in keep]
    lyrics, lyric_problems = features_of("lyrics", examples)
    midi, midi_problems = features_of("midi", examples)
    problems += lyric_problems + midi_problems + list(dataset.problems)
    if problems:
        log(f"{len(problems)} files skipped or used without a modality (all in problems.txt), e.g.:")
        for path, reason in problems[:5]:
            log(f"  {path}: {reason}")
    features = {"audio": audio, "lyrics": lyrics, "midi": midi}

    y = np.array([e.label for e in examples])
    groups = [artist_group(e.artist, e.id) for e in examples]
    split = preset_split(y, groups, config, seed)
    out.mkdir(parents=True, exist_ok=True)  # only now: a dataset that cannot train leaves no folder behind
    log("split: " + ", ".join(f"{k} {len(v)}" for k, v in split.items()) + " songs (grouped by artist)")

    trainers, branch_models, histories, metrics, oof = _train_branches(
        config, features, y, groups, split, seed, names, epochs, bar, log
    )
    fusion_model, fusion_metrics, test_cluster_probs = _train_fusion(
        config.get("fusion", {}), oof, trainers, branch_models, features, split, y, names, seed
    )
    metrics["fusion"] = fusion_metrics
    if config.get("final", {}).get("refit_all", False):
        log("refitting every branch and the fusion on all songs, with the epoch counts chosen above")
        branch_models, fusion_model = _refit_all(
            config.get("fusion", {}),
            trainers,
            histories,
            features,
            y,
            groups,
            config.get("fusion", {}).get("folds", 5),
            seed,
            len(names),
            set(config.get("final", {}).get("ensemble", [])),  # branches shipped as fold + full model means
        )
    card = make_card(config, dataset, examples, split, metrics, histories, problems, started, data, precision)
    if quadrants is not None:
        from mer_tag.train.quadrant import train_quadrant

        branch_models["quadrant"], quadrant_metrics, card["quadrant"], quadrant_problems = train_quadrant(
            quadrants, config, feature_cache, jobs, bar, seed, limit, log, precision
        )
        metrics["quadrant"] = quadrant_metrics
        card["quadrant"]["metrics"] = card_metrics({"quadrant": quadrant_metrics})["quadrant"]
        problems += quadrant_problems
        frozen_lyrics = config.get("lyrics", {}).get("encoder", "frozen") != "finetune"  # song embeddings
        if "valence" in config and dataset.labels.names == MIREX.names and frozen_lyrics:
            from mer_tag.train.valence import train_valence

            words, words_card = train_valence(
                branch_models["quadrant"],
                examples,
                features,
                y,
                groups,
                split,
                config,
                feature_cache,
                jobs,
                bar,
                log,
                precision,
                test_cluster_probs,
            )
            if words is not None:
                branch_models["lyrics_valence"], card["valence"] = words, words_card
    models = {**branch_models, "fusion": fusion_model}
    card["version"] = f"{card['version']}+{weights_digest(models)}"  # this model's own: not the shipped one's
    bundle = bundle_io.Bundle(
        name=str(config.get("model_name", config["name"])),
        labels=dataset.labels,
        audio_config=audio_config,
        lyrics_config=lyrics_config,
        midi_config=midi_config,
        models=models,
        card=card,
    )
    model_dir = bundle_io.save(bundle, out / "model")
    _fs.write_text(  # with the model it describes: an interrupted run into this folder leaves the earlier pair
        out / "split.json",
        json.dumps({name: [examples[i].id for i in idx] for name, idx in split.items()}, indent=1) + "\n",
    )
    write_reports(out, bundle, metrics, histories, names, problems)
    seconds = time.time() - started
    log(
        f"done in {seconds / 60:.1f} min: "
        f"fused test macro-F1 {metrics['fusion']['test'].get('macro_f1', float('nan')):.3f}; "
        f"model in {model_dir}"
    )
    return TrainResult(out, model_dir, metrics, seconds)


def weights_digest(models: dict) -> str:
    """8 hex digits of every weight of `models` (branch → module), in a fixed order. A trained model's version
    is mer-tag's plus this, so result rows and beets name it apart from the shipped model and from each other
    (a scan or `beet mood` redoes what another model did); the same training gives the same digest."""
    import hashlib

    import torch

    digest = hashlib.blake2b(digest_size=4)
    for branch in sorted(models):
        for key, tensor in sorted(models[branch].state_dict().items()):
            digest.update(f"{branch}.{key}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _train_branches(config, features, y, groups, split, seed, names, epochs, bar, log):
    """Every branch the preset keeps, made by the recipe and scored on val and test: (trainers, shipped
    models, histories, metrics, out-of-fold probabilities), each keyed by branch."""
    trainers, branch_models, histories, metrics, oof = {}, {}, {}, {}, {}
    for name in BRANCHES:
        present = {s: [i for i in idx if features[name][i] is not None] for s, idx in split.items()}
        skipped = branch_skip_reason(config, name, len(present["train"]), len(names))
        if skipped:
            log(f"{name}: {skipped}; branch skipped")
            continue
        made = fit_recipe_branch(
            config, name, features[name], y, groups, split["train"], split["val"], seed, len(names), epochs, bar
        )
        branch, history, oof[name] = made.trainer, made.history, made.oof
        trainers[name], branch_models[name], histories[name] = branch, made.model, history
        scored = [made.single, made.model] if made.model is not made.single else [made.model]  # one, then the mean
        for model in scored:
            probs = {
                s: branch.predict(model, [features[name][i] for i in idx]) if idx else np.zeros((0, len(names)))
                for s, idx in present.items()
            }
            metrics[name] = {s: _scores(y[present[s]], probs[s], names) for s in ("val", "test")}
            if model is not made.model:
                log(
                    f"{name}: one model's test macro-F1 {metrics[name]['test'].get('macro_f1', float('nan')):.3f}; "
                    f"the mean of it and its {len(made.fold_models)} fold models:"
                )
        log(
            f"{name}: best epoch {history.best_epoch}, "
            f"val macro-F1 {metrics[name]['val'].get('macro_f1', float('nan')):.3f}, "
            f"test macro-F1 {metrics[name]['test'].get('macro_f1', float('nan')):.3f}"
        )
    return trainers, branch_models, histories, metrics, oof


def _refit_all(section, trainers, histories, features, y, groups, n_folds, seed, n_classes, ensembled):
    """The shipped model: every branch refit on all songs, the fusion on all songs' out-of-fold predictions.

    More songs (all artists) make a better model for strangers' music; the numbers reported stay those of
    the held-out protocol above, where the same recipe never saw the test artists.
    """
    everything = np.arange(len(y))
    models, oof = {}, {}
    for name, branch in trainers.items():
        have = [i for i in everything if features[name][i] is not None]
        epochs = max(1, histories[name].best_epoch)
        models[name], _ = branch.train(
            [features[name][i] for i in have], y[have], None, None, n_classes, seed, None, epochs=epochs
        )
        oof[name], fold_models = cross_fit(branch, features[name], y, have, groups, epochs, n_folds, seed, n_classes)
        if name in ensembled:
            models[name] = combine([models[name], *fold_models])
    _, fusion_model = fit_fusion(section, oof, everything.tolist(), y, n_classes, seed)
    return models, fusion_model


def _train_fusion(section, oof, trainers, branch_models, features, split, y, names, seed):
    """Learn the fusion on out-of-fold probabilities; score it on val (seen) and test (unseen). Also returns
    the test songs' fused probabilities (for the valence's agreement with the clusters)."""
    fusion, model = fit_fusion(section, oof, split["train"] + split["val"], y, len(names), seed)
    metrics = {}
    test_probs = np.zeros((0, len(names)))
    for set_name in ("val", "test"):
        idx = split[set_name]
        set_probs = {b: branch_probs(trainers.get(b), branch_models.get(b), features[b], idx) for b in BRANCHES}
        probs = fused_probs(fusion, model, set_probs, len(names)) if idx else np.zeros((0, len(names)))
        metrics[set_name] = _scores(y[idx], probs, names) if idx else {"n": 0}
        if set_name == "test":
            test_probs = probs
    return model, metrics, test_probs


def _scores(y_true, probs, names):
    from mer_tag.train.evaluate import scores

    return scores(y_true, probs, names) if len(y_true) else {"n": 0}


def _progress_factory(enabled: bool):
    def bar(iterable, total=None, desc=""):
        if not enabled:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)

    return bar
