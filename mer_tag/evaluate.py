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
    trained with (its card's `[labels] map`)."""
    from mer_tag import bundle as bundle_io
    from mer_tag import engines
    from mer_tag.library import Track
    from mer_tag.train.datasets import DatasetError, load_dataset, relabel
    from mer_tag.train.evaluate import plot_confusion, scores

    bundle = bundle_io.read_card(model)
    dataset = load_dataset(data, label_map)
    trained_map = bundle.card.get("preset", {}).get("labels", {}).get("map")
    if not label_map and trained_map and not _names_known(dataset.labels.names, bundle.labels):
        dataset = relabel(dataset, trained_map)  # e.g. a valence model on quadrant-labelled songs
    names = bundle.labels.names
    try:
        to_model = [bundle.labels.index(name) for name in dataset.labels.names]  # dataset class → model class
    except KeyError as exc:
        raise DatasetError(f"{data}: {exc.args[0]} (the model's classes; a --label-map may be missing)") from None
    truth = {str(e.audio_path): to_model[e.label] for e in dataset.examples}
    tracks = [Track(e.audio_path, e.lyrics_path, e.midi_path) for e in dataset.examples]
    engine = engines.create("local", model, jobs=jobs)
    try:
        engine.start()
        rows = [r for r in engine.rows(tracks) if r["status"] == "ok"]
    finally:
        engine.close()

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
            probs = np.eye(len(names))[[r[column] - 1 for r in have]]
            metrics[name] = scores(y, probs, names)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        for name, s in metrics.items():
            plot_confusion(s["confusion"], names, f"{name} ({bundle.ref})", out / f"confusion-{name}.png")
    return metrics


def _names_known(names, labels) -> bool:
    try:
        [labels.index(name) for name in names]
        return True
    except KeyError:
        return False
