"""`mer-tag eval`: run any model over a labelled dataset through the same engine `scan` uses, and score it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def evaluate(
    data: str | Path,
    model: str | Path = "default",
    out: str | Path | None = None,
    jobs: int = 2,
    label_map: str | None = None,
) -> dict:
    """Per-branch (on songs that have the modality) and fused scores of `model` on every song of `data`.
    Without `label_map`, data whose labels the model does not know is relabelled with the map the model was
    trained with (its card's `[labels] map`). Quadrant-labelled data (the 4Q emotion layout) scores the
    model's valence–arousal head, when it has one and its classes are not the quadrants themselves."""
    from mer_tag import bundle as bundle_io
    from mer_tag.train.datasets import DatasetError, load_dataset, relabel
    from mer_tag.train.evaluate import scores

    bundle = bundle_io.read_card(model)
    dataset = load_dataset(data, label_map)
    trained_map = bundle.card.get("preset", {}).get("labels", {}).get("map")
    if not label_map and trained_map and not _names_known(dataset.labels.names, bundle.labels):
        dataset = relabel(dataset, trained_map)  # e.g. a valence model on quadrant-labelled songs
    if _scores_quadrants(bundle, dataset.labels.names):
        return _evaluate_quadrants(dataset, model, out, jobs, bundle)
    names = bundle.labels.names
    try:
        to_model = [bundle.labels.index(name) for name in dataset.labels.names]  # dataset class → model class
    except KeyError as exc:
        raise DatasetError(f"{data}: {exc.args[0]} (the model's classes; a --label-map may be missing)") from None
    truth = {str(e.audio_path): to_model[e.label] for e in dataset.examples}
    rows = _scan_rows(dataset, model, jobs)
    metrics = {}
    for column, name in (
        ("audio_cluster", "audio"),
        ("lyrics_cluster", "lyrics"),
        ("midi_cluster", "midi"),
        ("cluster", "fusion"),
    ):
        have = [r for r in rows if r[column] is not None]
        if have:
            y = np.array([truth[r["path"]] for r in have])
            if name == "fusion":  # its probabilities are in the rows: the coverage table reads them
                probs = np.array([[r[f"prob_cluster_{k + 1}"] for k in range(len(names))] for r in have])
            else:
                probs = np.eye(len(names))[[r[column] - 1 for r in have]]
            metrics[name] = scores(y, probs, names)
    if out:
        _save(Path(out), metrics, names, bundle.ref)
    return metrics


def _save(out: Path, metrics: dict, names, model_ref: str) -> None:
    """metrics.json and a confusion matrix per model part in `out`."""
    from mer_tag.train.evaluate import plot_confusion

    out.mkdir(parents=True, exist_ok=True)
    from mer_tag import _fs

    _fs.write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    for name, s in metrics.items():
        if s.get("n"):
            plot_confusion(s["confusion"], names, f"{name} ({model_ref})", out / f"confusion-{name}.png")


def _scan_rows(dataset, model, jobs: int) -> list[dict]:
    """The ok rows a scan of the dataset's songs gives, with `model`."""
    from mer_tag import engines
    from mer_tag.library import Track

    tracks = [Track(e.audio_path, e.lyrics_path, e.midi_path) for e in dataset.examples]
    engine = engines.create("local", engines.EngineSettings(model, jobs=jobs))
    try:
        engine.start()
        return [r for r in engine.rows(tracks) if r["status"] == "ok"]
    finally:
        engine.close()


def _scores_quadrants(bundle, dataset_names) -> bool:
    from mer_tag.labels import QUADRANTS

    return tuple(dataset_names) == QUADRANTS.names and bundle.labels.names != QUADRANTS.names


def _evaluate_quadrants(dataset, model, out, jobs: int, bundle) -> dict:
    """The valence–arousal head's scores on quadrant-labelled songs (quadrant, valence, arousal)."""
    from mer_tag.labels import QUADRANTS
    from mer_tag.train.datasets import DatasetError
    from mer_tag.train.quadrant import quadrant_scores

    if "quadrant" not in bundle.card.get("models", {}):
        raise DatasetError(
            f"{dataset.root}: songs labelled with quadrants, and model {bundle.ref} has no valence–arousal head "
            "(train one with --quadrant-data)"
        )
    truth = {str(e.audio_path): e.label for e in dataset.examples}
    rows = _scan_rows(dataset, model, jobs)
    y = np.array([truth[r["path"]] for r in rows], dtype=int)
    probs = np.array([[r[f"prob_quadrant_{k + 1}"] for k in range(len(QUADRANTS))] for r in rows]).reshape(-1, 4)
    metrics = {"quadrant": quadrant_scores(y, probs)}
    if out:
        _save(Path(out), metrics, QUADRANTS.names, bundle.ref)
    return metrics


def _names_known(names, labels) -> bool:
    try:
        [labels.index(name) for name in names]
        return True
    except KeyError:
        return False
