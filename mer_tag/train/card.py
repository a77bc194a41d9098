"""What a training run says about its model: the card (card.json's provenance and scores, saved in the
bundle) and the reports beside it in the run's folder (metrics.json, plots, problems.txt, the per-class
report, model-card.md)."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from pathlib import Path

from mer_tag import _fs

CARD_SCORES = ("n", "accuracy", "macro_f1", "top2_accuracy", "valence_accuracy", "arousal_accuracy", "coverage")


def make_card(config, dataset, examples, split, metrics, histories, problems, started, data, encoder_precision) -> dict:
    """The run's provenance and scores, as the bundle's card.json keeps them. `encoder_precision`: what the
    frozen encoders (the audio front-end, MiniLM) ran in when the heads' inputs were made."""
    import torch

    from mer_tag import __version__
    from mer_tag.bundle import seen_record

    refit_all = bool(config.get("final", {}).get("refit_all", False))
    learned = range(len(examples)) if refit_all else split["train"] + split["val"]  # the test is never learned
    return {
        "version": __version__,
        "preset": config,
        "encoder_precision": encoder_precision,
        "data": {
            "root": str(Path(data)),
            "layout": dataset.layout,
            "songs": len(examples),
            "with_lyrics_file": sum(e.lyrics_path is not None for e in examples),
            "with_midi_file": sum(e.midi_path is not None for e in examples),
            "split_sizes": {k: len(v) for k, v in split.items()},
            "problems": len(problems),
            "seen": seen_record(examples[i].audio_path for i in learned),  # what `mer-tag eval` leaves out
        },
        "metrics": card_metrics(metrics),
        "best_epochs": {b: h.best_epoch for b, h in histories.items()},
        "refit_all": refit_all,  # weights from all songs, metrics from the split
        "command": "mer-tag " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if "train" in sys.argv else None,
        "trained_seconds": round(time.time() - started, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def card_metrics(metrics: dict) -> dict:
    """The scores a card keeps (not the per-class reports or confusion matrices), per model and set."""
    return {
        m: {s: {k: v for k, v in d.items() if k in CARD_SCORES} for s, d in per.items()} for m, per in metrics.items()
    }


def write_reports(out: Path, bundle, metrics, histories, names, problems) -> None:
    """metrics.json, confusion and learning-curve plots, problems.txt, the per-class report and model-card.md."""
    from mer_tag.labels import QUADRANTS
    from mer_tag.train.evaluate import classification_text, plot_confusion, plot_curves

    _fs.write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    made = set()
    for model_name, per_set in metrics.items():
        classes = QUADRANTS.names if model_name == "quadrant" else names
        for set_name, s in per_set.items():
            if s.get("n"):
                plot = out / f"confusion-{model_name}-{set_name}.png"
                made.add(plot)
                plot_confusion(s["confusion"], classes, f"{model_name} ({set_name})", plot)
    for name, history in histories.items():
        if history.epochs:
            made.add(out / f"curves-{name}.png")
            plot_curves(history.epochs, name, out / f"curves-{name}.png")
    for plot in [*out.glob("confusion-*.png"), *out.glob("curves-*.png")]:
        if plot not in made:
            plot.unlink()  # an earlier run's into the same folder: it would describe another model
    _fs.write_text(out / "problems.txt", "".join(f"{path}\t{reason}\n" for path, reason in problems))
    _fs.write_text(out / "classification-report.txt", classification_text(metrics))
    _fs.write_text(out / "model-card.md", model_card_markdown(bundle, metrics, problems))


def model_card_markdown(bundle, metrics, problems) -> str:
    """model-card.md: data, metrics, accuracy against coverage, the valence–arousal head, hyper-parameters."""
    from mer_tag.train.evaluate import report_table

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
        )
        + f" The frozen encoders ran in {card['encoder_precision']} (`--precision`).",
        "",
        "## Reproduce",
        "",
        f"`{card['command'] or 'mer-tag train --preset ' + card['preset']['name']}`",
        "",
        f"Skipped or degraded inputs: {len(problems)} (see problems.txt).",
        "",
    ]
    return "\n".join(lines)


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
    inputs = quadrant["settings"].get("inputs", ["embedding"])
    reads = (
        "the audio front-end's song-mean embedding"
        if list(inputs) == ["embedding"]
        else "the song's " + ", ".join(INPUT_WORDS.get(name, name) for name in inputs)
    )
    return [
        "## Valence–arousal",
        "",
        f"A standardised logistic regression on {reads}, trained on "
        f"{quadrant['data']['songs']} songs from `{quadrant['data']['root']}` (split "
        f"{quadrant['data']['split_sizes']}, artist-grouped). Test ({test.get('n', 0)} songs): quadrant "
        f"macro-F1 {test.get('macro_f1', float('nan')):.3f}, accuracy {test.get('accuracy', float('nan')):.3f}; "
        f"valence right {test.get('valence_accuracy', float('nan')):.3f}, arousal right "
        f"{test.get('arousal_accuracy', float('nan')):.3f}.",
        "",
        *_valence_section(card),
    ]


INPUT_WORDS = {
    "embedding": "mean embedding",
    "tags": "musicnn tag prior (50 tags over its windows)",
    "key": "key and mode features",
    "dissonance": "sensory dissonance",
    "tonic": "chroma turned to its key",
}


def _valence_section(card: dict) -> list[str]:
    valence = card.get("valence")
    if not valence:
        return []
    test = valence["metrics"]["test"]
    return [
        f"Where a track has lyrics its valence hears the words too: a lyrics valence learned from "
        f"{valence['data']['with_lyrics']} five-cluster songs with lyrics (Cheerful and Humorous positive, Wistful "
        f"and Aggressive negative) and fused with the audio's (weights {valence['fusion']}). On the test split's "
        f"{test.get('n', 0)} songs with a side ({test.get('n_lyrics', 0)} with lyrics), AUC of the side: audio "
        f"{test.get('audio_auc', float('nan')):.3f}, lyrics alone {test.get('lyrics_auc', float('nan')):.3f}, "
        f"the `valence` column {test.get('fused_auc', float('nan')):.3f}.",
        "",
    ]
