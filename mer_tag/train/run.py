"""`mer-tag train`: dataset → artist-grouped split → features → branches → out-of-fold fusion → bundle + report.

Protocol. Whole artists are held out as `test` (reported, never used to choose anything) and `val`
(early stopping). Each branch trains on `train`. The fusion learns from predictions on songs a branch
never trained on: out-of-fold predictions over `train` (the branch refit on the other folds for as many
epochs as early stopping chose) plus the branch's predictions on `val`.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_tag import _fs
from mer_tag.errors import MerTagError
from mer_tag.models import combine
from mer_tag.train.branches import fusion_items, make_branch

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
MODALITIES = ("audio", "lyrics", "midi")


class TrainError(MerTagError):
    pass


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml") if not p.stem.startswith("tag-"))


def load_preset(preset: str | Path) -> dict:
    path = Path(preset)
    if not path.exists():
        path = PRESETS_DIR / f"{preset}.toml"
    if not path.exists():
        raise TrainError(f"no preset {preset!r}: choose one of {', '.join(preset_names())} or give a .toml path")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.setdefault("name", path.stem)
    return data


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
) -> TrainResult:
    """Train every branch and the fusion on `data`, write the bundle, metrics, plots and model card to `out`.
    `label_map` (e.g. 'valence') relabels the dataset; it overrides a preset's `[labels] map`.
    `quadrant_data` (songs labelled with their valence–arousal quadrant, the 4Q emotion dataset) adds the
    valence–arousal head (train/quadrant.py)."""
    import torch

    from mer_tag import bundle as bundle_io
    from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig, config_from_json
    from mer_tag.train import extract
    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.splits import preset_split

    started = time.time()
    torch.set_num_threads(max(1, jobs))
    config = load_preset(preset)
    if label_map:
        config.setdefault("labels", {})["map"] = label_map  # kept in the card's preset
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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

    audio, problems = extract.extract_branch("audio", config, examples, feature_cache, jobs, bar)
    keep = [i for i, x in enumerate(audio) if x is not None]  # a song without usable audio is left out
    examples, audio = [examples[i] for i in keep], [audio[i] for i in keep]
    lyrics, lyric_problems = extract.extract_branch("lyrics", config, examples, feature_cache, jobs, bar)
    midi, midi_problems = extract.extract_branch("midi", config, examples, feature_cache, jobs, bar)
    problems += lyric_problems + midi_problems + list(dataset.problems)
    if problems:
        log(f"{len(problems)} files skipped or used without a modality (all in problems.txt), e.g.:")
        for path, reason in problems[:5]:
            log(f"  {path}: {reason}")
    features = {"audio": audio, "lyrics": lyrics, "midi": midi}

    y = np.array([e.label for e in examples])
    groups = [artist_group(e.artist, e.id) for e in examples]
    split = preset_split(y, groups, config, seed)
    _fs.write_text(
        out / "split.json",
        json.dumps({name: [examples[i].id for i in idx] for name, idx in split.items()}, indent=1) + "\n",
    )
    log("split: " + ", ".join(f"{k} {len(v)}" for k, v in split.items()) + " songs (grouped by artist)")

    trainers, branch_models, histories, metrics, oof = {}, {}, {}, {}, {}
    n_folds = config.get("fusion", {}).get("folds", 5)
    ensembled = set(config.get("final", {}).get("ensemble", []))  # branches shipped as fold + full model means
    for name in MODALITIES:
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

    fusion_model, fusion_metrics = _train_fusion(
        config.get("fusion", {}), oof, trainers, branch_models, features, split, y, names, seed
    )
    metrics["fusion"] = fusion_metrics
    if config.get("final", {}).get("refit_all", False):
        log("refitting every branch and the fusion on all songs, with the epoch counts chosen above")
        branch_models, fusion_model = _refit_all(
            config.get("fusion", {}), trainers, histories, features, y, groups, n_folds, seed, len(names), ensembled
        )
    card = _card(config, dataset, examples, split, metrics, histories, problems, started, data)
    if quadrants is not None:
        from mer_tag.train.quadrant import train_quadrant

        branch_models["quadrant"], quadrant_metrics, card["quadrant"], quadrant_problems = train_quadrant(
            quadrants, config, feature_cache, jobs, bar, seed, limit, log
        )
        metrics["quadrant"] = quadrant_metrics
        card["quadrant"]["metrics"] = _card_metrics({"quadrant": quadrant_metrics})["quadrant"]
        problems += quadrant_problems
    bundle = bundle_io.Bundle(
        name=str(config.get("model_name", config["name"])),
        labels=dataset.labels,
        audio_config=audio_config,
        lyrics_config=lyrics_config,
        midi_config=midi_config,
        models={**branch_models, "fusion": fusion_model},
        card=card,
    )
    model_dir = bundle_io.save(bundle, out / "model")
    _write_reports(out, bundle, metrics, histories, names, problems)
    seconds = time.time() - started
    log(
        f"done in {seconds / 60:.1f} min: "
        f"fused test macro-F1 {metrics['fusion']['test'].get('macro_f1', float('nan')):.3f}; "
        f"model in {model_dir}"
    )
    return TrainResult(out, model_dir, metrics, seconds)


MIN_SONGS_PER_CLASS = 2  # a lyrics or MIDI branch needs this many training songs with it per class, or is left out


@dataclass
class RecipeBranch:
    """One branch as the recipe makes it: its trainer, the model as shipped (the mean of the full and fold models
    where `[final] ensemble` names the branch), the full model alone, its history, the fold models, and song →
    out-of-fold probabilities over fit + stop (what the fusion learns from)."""

    trainer: object
    model: object
    single: object
    history: object
    fold_models: list
    oof: dict


def branch_skip_reason(config: dict, name: str, n_train: int, n_classes: int) -> str | None:
    """Why the recipe leaves a branch out, or None. Audio is never left out for want of songs: every song kept
    has it, and the fusion needs at least one branch."""
    if config.get(name, {}).get("enabled", True) is False:
        return "off in this preset"
    if name != "audio" and n_train < MIN_SONGS_PER_CLASS * n_classes:
        return f"only {n_train} training songs have it"
    return None


def fit_recipe_branch(config, name, items, y, groups, fit, stop, seed, n_classes, epochs=0, progress=None):
    """The recipe's outer policy for one branch, shared by `train` and `crossval --branch fused`: the songs
    of `fit`/`stop` that have the modality, the skip rule, the preset section (`epochs` overrides its epoch
    count), `fit_branch`, the ensemble. Returns a RecipeBranch, or None when the branch is left out."""
    fit = [i for i in fit if items[i] is not None]
    stop = [i for i in stop if items[i] is not None]
    if branch_skip_reason(config, name, len(fit), n_classes):
        return None
    section = dict(config.get(name, {}))
    if epochs:
        section["epochs"] = epochs
    frontend = config.get("audio", {}).get("features", {}).get("frontend", "logmel")
    branch = make_branch(name, section, n_classes, frontend)
    model, history, fold_models, oof = fit_branch(
        branch, items, y, groups, fit, stop, config.get("fusion", {}).get("folds", 5), seed, n_classes, progress
    )
    shipped = model
    if name in set(config.get("final", {}).get("ensemble", [])) and fold_models:
        shipped = combine([model, *fold_models])
    return RecipeBranch(branch, shipped, model, history, fold_models, oof)


def fit_branch(branch, items, y, groups, fit, stop, n_folds, seed, n_classes, progress=None):
    """One branch as a run makes it: trained on the `fit` songs, early-stopped on `stop`, then refit on grouped
    folds of `fit` for the epochs chosen. Returns (model, history, fold models, song → out-of-fold
    probabilities over fit + stop: what the fusion learns from)."""
    model, history = branch.train(
        [items[i] for i in fit], y[fit], [items[i] for i in stop], y[stop], n_classes, seed, progress
    )
    oof, fold_models = cross_fit(branch, items, y, fit, groups, history.best_epoch, n_folds, seed, n_classes)
    oof.update(zip(stop, branch_probs(branch, model, items, stop)))
    return model, history, fold_models, oof


def cross_fit(branch, items, y, idx, groups, epochs, n_folds, seed, n_classes) -> tuple[dict, list]:
    """(song index → probabilities from a model refit without that song's artist, the fold models)."""
    from mer_tag.train.splits import grouped_folds, max_folds

    idx = np.asarray(idx)
    n_folds = min(n_folds, max_folds(y[idx], np.asarray(groups)[idx])) if len(idx) else 0
    if n_folds < 2:
        return {}, []  # too few songs to fold: the fusion learns from validation predictions alone
    out: dict[int, np.ndarray] = {}
    models: list = []
    for k, held in enumerate(grouped_folds(y[idx], np.asarray(groups)[idx], n_folds, seed)):
        fit_idx = idx[np.setdiff1d(np.arange(len(idx)), held)]
        model, _ = branch.train(
            [items[i] for i in fit_idx], y[fit_idx], None, None, n_classes, seed + 100 + k, None, epochs=max(1, epochs)
        )
        out.update(zip(idx[held], branch.predict(model, [items[i] for i in idx[held]])))
        models.append(model)
    return out, models


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
    """Learn the fusion on out-of-fold probabilities; score it on val (seen) and test (unseen)."""

    branches = tuple(MODALITIES)
    fusion, model = fit_fusion(section, oof, split["train"] + split["val"], y, len(names), seed)

    metrics = {}
    for set_name in ("val", "test"):
        idx = split[set_name]
        set_probs = {b: branch_probs(trainers.get(b), branch_models.get(b), features[b], idx) for b in branches}
        set_items, _ = fusion_items(set_probs, branches, len(names), subsets=False)
        metrics[set_name] = _scores(y[idx], fusion.predict(model, set_items), names) if idx else {"n": 0}
    return model, metrics


def fit_fusion(section, oof, idx, y, n_classes, seed):
    """The fusion trainer and model, fitted on the out-of-fold probabilities of the songs in `idx`."""
    fusion = make_branch(
        "fusion",
        {
            "epochs": 300,
            "batch_size": 64,
            "lr": 1e-2,
            "weight_decay": 1e-3,
            "optimizer": "adamw",
            **section,
            "model": {"branches": list(MODALITIES), **section.get("model", {})},
        },
        n_classes,
    )
    fit_idx = [i for i in idx if i in oof.get("audio", {})]
    fit_probs = {b: [oof.get(b, {}).get(i) for i in fit_idx] for b in MODALITIES}
    items, source = fusion_items(fit_probs, MODALITIES, n_classes, subsets=True)
    model, _ = fusion.train(items, y[np.asarray(fit_idx)][source], None, None, n_classes, seed, None)
    return fusion, model


def branch_probs(trainer, model, items, idx):
    """A trained branch's probabilities per song (None where the song lacks the modality)."""
    if model is None:
        return [None] * len(idx)
    have = [i for i in idx if items[i] is not None]
    probs = dict(zip(have, trainer.predict(model, [items[i] for i in have]))) if have else {}
    return [probs.get(i) for i in idx]


def _scores(y_true, probs, names):
    from mer_tag.train.evaluate import scores

    return scores(y_true, probs, names) if len(y_true) else {"n": 0}


def stratified_subset(examples, limit, seed):
    """A small stratified subset (smoke runs): `limit` songs, classes interleaved."""
    by_class = {}
    for e in examples:
        by_class.setdefault(e.label, []).append(e)
    picked, order = [], sorted(by_class)
    while len(picked) < min(limit, len(examples)):
        for label in order:
            if by_class[label] and len(picked) < limit:
                picked.append(by_class[label].pop(0))
    return picked


def _progress_factory(enabled: bool):
    def bar(iterable, total=None, desc=""):
        if not enabled:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)

    return bar


def _card(config, dataset, examples, split, metrics, histories, problems, started, data) -> dict:
    import torch

    from mer_tag import __version__

    return {
        "version": __version__,
        "preset": config,
        "data": {
            "root": str(Path(data)),
            "layout": dataset.layout,
            "songs": len(examples),
            "with_lyrics_file": sum(e.lyrics_path is not None for e in examples),
            "with_midi_file": sum(e.midi_path is not None for e in examples),
            "split_sizes": {k: len(v) for k, v in split.items()},
            "problems": len(problems),
        },
        "metrics": _card_metrics(metrics),
        "best_epochs": {b: h.best_epoch for b, h in histories.items()},
        "refit_all": bool(
            config.get("final", {}).get("refit_all", False)
        ),  # weights from all songs, metrics from the split
        "command": "mer-tag " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if "train" in sys.argv else None,
        "trained_seconds": round(time.time() - started, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


CARD_SCORES = ("n", "accuracy", "macro_f1", "top2_accuracy", "valence_accuracy", "arousal_accuracy", "coverage")


def _card_metrics(metrics: dict) -> dict:
    """The scores a card keeps (not the per-class reports or confusion matrices), per model and set."""
    return {
        m: {s: {k: v for k, v in d.items() if k in CARD_SCORES} for s, d in per.items()} for m, per in metrics.items()
    }


def _coverage_section(metrics: dict) -> list[str]:
    """How often the most confident test songs are right, fused clusters and quadrants."""
    from mer_tag.train.evaluate import coverage_table

    points = {m: per["test"]["coverage"] for m, per in metrics.items() if per.get("test", {}).get("coverage")}
    points = {m: p for m, p in points.items() if m in ("fusion", "quadrant")}
    if not points:
        return []
    return [
        "## Accuracy against coverage",
        "",
        "Test songs (artists never seen), most confident first: the accuracy of the top share, and in brackets "
        "the lowest confidence among them (the `--min-confidence` that keeps about that share).",
        "",
        coverage_table(points),
        "",
    ]


def _quadrant_section(card: dict) -> list[str]:
    quadrant = card.get("quadrant")
    if not quadrant:
        return []
    test = quadrant["metrics"]["test"]
    return [
        "## Valence–arousal",
        "",
        f"A standardised logistic regression on the audio front-end's song-mean embedding, trained on "
        f"{quadrant['data']['songs']} songs from `{quadrant['data']['root']}` (split "
        f"{quadrant['data']['split_sizes']}, artist-grouped). Test ({test.get('n', 0)} songs): quadrant "
        f"macro-F1 {test.get('macro_f1', float('nan')):.3f}, accuracy {test.get('accuracy', float('nan')):.3f}; "
        f"valence right {test.get('valence_accuracy', float('nan')):.3f}, arousal right "
        f"{test.get('arousal_accuracy', float('nan')):.3f}.",
        "",
    ]


def _write_reports(out: Path, bundle, metrics, histories, names, problems) -> None:
    from mer_tag.train.evaluate import classification_text, plot_confusion, plot_curves, report_table

    _fs.write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    from mer_tag.labels import QUADRANTS

    for model_name, per_set in metrics.items():
        classes = QUADRANTS.names if model_name == "quadrant" else names
        for set_name, s in per_set.items():
            if s.get("n"):
                plot_confusion(
                    s["confusion"],
                    classes,
                    f"{model_name} ({set_name})",
                    out / f"confusion-{model_name}-{set_name}.png",
                )
    for name, history in histories.items():
        if history.epochs:
            plot_curves(history.epochs, name, out / f"curves-{name}.png")
    _fs.write_text(out / "problems.txt", "".join(f"{path}\t{reason}\n" for path, reason in problems))
    _fs.write_text(out / "classification-report.txt", classification_text(metrics))
    card = bundle.card
    lines = [
        f"# Model card: {bundle.name}",
        "",
        f"Preset `{card['preset']['name']}`; trained on {card['data']['songs']} songs from `{card['data']['root']}` "
        f"({card['data']['layout']} layout); split {card['data']['split_sizes']} (artist-grouped, seeded).",
        "",
        "## Metrics",
        "",
        report_table(metrics),
        "",
        *_coverage_section(metrics),
        *_quadrant_section(card),
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(card["preset"], indent=1),
        "```",
        "",
        f"Best epochs (validation macro-F1): {card['best_epochs']}."
        + (
            " The saved weights were then refit on every song with those epoch counts; the metrics above are"
            " from the split, where the test artists were never seen."
            if card.get("refit_all")
            else ""
        ),
        "",
        "## Reproduce",
        "",
        f"`{card['command'] or 'mer-tag train --preset ' + card['preset']['name']}`",
        "",
        f"Skipped or degraded inputs: {len(problems)} (see problems.txt).",
        "",
    ]
    _fs.write_text(out / "model-card.md", "\n".join(lines))
