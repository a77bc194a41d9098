"""`mer-tag eval`: run any model over a labelled dataset through the same engine `scan` uses, and score it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from mer_tag.errors import MerTagError
from mer_tag.sinks.paths import path_text


class EvalError(MerTagError):
    """An evaluation that would not mean what it seems to (the model learned these very songs)."""


def evaluate(
    data: str | Path,
    model: str | Path = "default",
    out: str | Path | None = None,
    jobs: int = 2,
    label_map: str | None = None,
    include_training_songs: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Per-branch (on songs that have the modality) and fused scores of `model` on the songs of `data` it
    did not learn from (`include_training_songs`: on every song). Without `label_map`, data whose labels the
    model does not know is relabelled with the map the model was trained with (its card's `[labels] map`).
    Quadrant-labelled data (the 4Q emotion layout) scores the model's valence–arousal head, when it has one
    and its classes are not the quadrants themselves. `log` hears, before any scoring, which songs the
    model learned from and what is scored instead, and which songs could not be scored."""
    from mer_tag import bundle as bundle_io
    from mer_tag.train.datasets import DatasetError, load_dataset, relabel
    from mer_tag.train.evaluate import scores

    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise EvalError(f"{out} is a file: --out takes a folder for the scores, e.g. {Path(out).with_suffix('')}-eval")
    bundle = bundle_io.read_card(model)
    dataset = load_dataset(data, label_map)
    trained_map = bundle.card.get("preset", {}).get("labels", {}).get("map")
    if not label_map and trained_map and not _names_known(dataset.labels.names, bundle.labels):
        dataset = relabel(dataset, trained_map)  # e.g. a valence model on quadrant-labelled songs
    if _scores_quadrants(bundle, dataset.labels.names):
        _check_quadrant_head(dataset, bundle)  # a model that cannot be scored here: said before anything else
        dataset = _unseen(dataset, bundle, "quadrant", include_training_songs, log)
        return _evaluate_quadrants(dataset, model, out, jobs, bundle, log)
    dataset = _unseen(dataset, bundle, "cluster", include_training_songs, log)
    names = bundle.labels.names
    try:
        to_model = [bundle.labels.index(name) for name in dataset.labels.names]  # dataset class → model class
    except KeyError as exc:
        raise DatasetError(f"{data}: {exc.args[0]} (the model's classes; a --label-map may be missing)") from None
    truth = {path_text(e.audio_path): to_model[e.label] for e in dataset.examples}  # as rows spell paths
    rows = _scan_rows(dataset, model, jobs, log)
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


def _unseen(dataset, bundle, head: str, include: bool, log: Callable[[str], None]):
    """The dataset less the songs the model's `head` ("cluster" or "quadrant") learned from, as its card
    records them; said before anything is scored. Every song when `include` (said too). An EvalError when
    every song is one it learned from: that score says how well it remembers, not how it does on new music."""
    from mer_tag.bundle import seen_songs

    card = bundle.card
    seen = seen_songs(card.get("quadrant") if head == "quadrant" else card)
    songs = len(dataset.examples)
    if seen is None:
        log(
            f"note: model {bundle.ref}'s card does not record which songs it learned from, so this cannot tell "
            f"whether these {songs} songs are new to it (a score on songs it learned from runs high)"
        )
        return dataset
    is_learned = [_fingerprint(e.audio_path) in seen for e in dataset.examples]
    learned = [e for e, known in zip(dataset.examples, is_learned) if known]
    if not learned:
        log(f"none of these {songs} songs were used to train model {bundle.ref}")
        return dataset
    if include:
        log(
            f"note: {len(learned)} of these {songs} songs were used to train model {bundle.ref}; scoring them "
            "too, as asked (--include-training-songs): a score on songs it learned from runs high"
        )
        return dataset
    new = [e for e, known in zip(dataset.examples, is_learned) if not known]
    if not new:
        raise EvalError(
            f"model {bundle.ref} was trained on all {songs} of these songs, so a score here says how well it "
            f"remembers them, not how it does on new music{_held_out_score(card, head)}; "
            "--include-training-songs scores them anyway"
        )
    log(
        f"{len(learned)} of these {songs} songs were used to train model {bundle.ref}: scoring the other "
        f"{len(new)} only (--include-training-songs scores all {songs})"
    )
    return replace(dataset, examples=new)


def _fingerprint(path) -> str | None:
    from mer_tag.bundle import song_fingerprint

    try:
        return song_fingerprint(path)
    except OSError:  # unreadable: not one the card can know; the scan names the problem
        return None


def _held_out_score(card: dict, head: str) -> str:
    """The clause naming the card's held-out score (test artists it never saw), or "" where it has none."""
    section = card.get("quadrant", {}) if head == "quadrant" else card
    metrics = section.get("metrics", {})
    test = metrics.get("test") if head == "quadrant" else metrics.get("fusion", {}).get("test")
    if not test or not test.get("n"):
        return ""
    refit = " measured before the refit on every song," if card.get("refit_all") else ""
    name = "quadrant" if head == "quadrant" else "fused"
    return (
        f" (its card's held-out score,{refit} on {test['n']} songs by artists it never saw: {name} macro-F1 "
        f"{test['macro_f1']:.3f})"
    )


def _save(out: Path, metrics: dict, names, model_ref: str) -> None:
    """metrics.json and a confusion matrix per model part in `out`."""
    from mer_tag.train.evaluate import plot_confusion

    out.mkdir(parents=True, exist_ok=True)
    from mer_tag import _fs

    _fs.write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    for name, s in metrics.items():
        if s.get("n"):
            plot_confusion(s["confusion"], names, f"{name} ({model_ref})", out / f"confusion-{name}.png")


def _scan_rows(dataset, model, jobs: int, log: Callable[[str], None]) -> list[dict]:
    """The ok rows a scan of the dataset's songs gives, with `model`. The songs it could not score are said
    (how many, and the first reasons), since the scores leave them out; none scored is an EvalError."""
    from mer_tag import engines
    from mer_tag.library import Track
    from mer_tag.sinks.paths import path_of

    tracks = [Track(e.audio_path, e.lyrics_path, e.midi_path) for e in dataset.examples]
    engine = engines.create("local", engines.EngineSettings(model, jobs=jobs))
    try:
        engine.start(tracks=tracks)
        rows = list(engine.rows(tracks))
    finally:
        engine.close()
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    examples = "; ".join(f"{Path(path_of(r['path'])).name}: {r['error']}" for r in failed[:3])
    if not ok:
        raise EvalError(f"none of these {len(rows)} songs could be scored, e.g. {examples}")
    if failed:
        log(f"{len(failed)} of these {len(rows)} songs could not be scored: the scores leave them out, e.g. {examples}")
    return ok


def _scores_quadrants(bundle, dataset_names) -> bool:
    from mer_tag.labels import QUADRANTS

    return tuple(dataset_names) == QUADRANTS.names and bundle.labels.names != QUADRANTS.names


def _evaluate_quadrants(dataset, model, out, jobs: int, bundle, log: Callable[[str], None]) -> dict:
    """The valence–arousal head's scores on quadrant-labelled songs (quadrant, valence, arousal)."""
    from mer_tag.labels import QUADRANTS
    from mer_tag.train.quadrant import quadrant_scores

    truth = {path_text(e.audio_path): e.label for e in dataset.examples}
    rows = _scan_rows(dataset, model, jobs, log)
    y = np.array([truth[r["path"]] for r in rows], dtype=int)
    probs = np.array([[r[f"prob_quadrant_{k + 1}"] for k in range(len(QUADRANTS))] for r in rows]).reshape(-1, 4)
    metrics = {"quadrant": quadrant_scores(y, probs)}
    if out:
        _save(Path(out), metrics, QUADRANTS.names, bundle.ref)
    return metrics


def _check_quadrant_head(dataset, bundle) -> None:
    from mer_tag.train.datasets import DatasetError

    if "quadrant" not in bundle.card.get("models", {}):
        raise DatasetError(
            f"{dataset.root}: songs labelled with quadrants, and model {bundle.ref} has no valence–arousal head "
            "(train one with --quadrant-data)"
        )


def _names_known(names, labels) -> bool:
    try:
        [labels.index(name) for name in names]
        return True
    except KeyError:
        return False
