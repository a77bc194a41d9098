"""Scores and pictures: accuracy, macro-F1, a classification report, a confusion matrix, learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def scores(y_true, probs: np.ndarray, names: tuple[str, ...]) -> dict:
    """Metrics for one model on one set: accuracy, macro-F1, per-class report, confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix

    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return {"n": 0}
    y_pred = probs.argmax(1)
    labels = list(range(len(names)))
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": macro_f1(y_true, y_pred, len(names)),
        "top2_accuracy": float((top2 == y_true[:, None]).any(1).mean()),
        "coverage": accuracy_by_coverage(y_true, probs),
        "report": classification_report(
            y_true, y_pred, labels=labels, target_names=list(names), output_dict=True, zero_division=0
        ),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


COVERAGES = (0.1, 0.25, 0.5, 0.75, 1.0)  # shares of songs, most confident first


def accuracy_by_coverage(y_true, probs: np.ndarray, coverages=COVERAGES) -> list[dict]:
    """How often the most confident answers are right: for each share of the songs (those whose top
    probability is highest), their accuracy, and the lowest top probability among them (the
    `--min-confidence` that keeps about that share)."""
    y_true = np.asarray(y_true)
    confidence = probs.max(1)
    order = np.argsort(-confidence, kind="stable")
    right = probs.argmax(1)[order] == y_true[order]
    points = []
    for share in coverages:
        n = max(1, int(round(share * len(y_true))))
        points.append(
            {
                "percent": int(round(share * 100)),
                "n": n,
                "accuracy": float(right[:n].mean()),
                "min_confidence": float(confidence[order][n - 1]),
            }
        )
    return points


def coverage_scores(points: list[dict]) -> dict[str, float]:
    """Accuracy-against-coverage points as report scores: the accuracy of each most confident share, and the
    lowest confidence in it (the `--min-confidence` that keeps about that share)."""
    scores = {}
    for point in points:
        scores[f"accuracy_of_top_{point['percent']}pct"] = point["accuracy"]
        scores[f"min_confidence_of_top_{point['percent']}pct"] = point["min_confidence"]
    return scores


def coverage_table(points_by_name: dict[str, list[dict]]) -> str:
    """Markdown: accuracy of the most confident X % of songs, one row per model."""
    percents = [p["percent"] for p in next(iter(points_by_name.values()))]
    lines = [
        "| model | " + " | ".join(f"top {p} %" for p in percents) + " |",
        "|---|" + "---:|" * len(percents),
    ]
    for name, points in points_by_name.items():
        cells = [f"{p['accuracy']:.2f} (≥ {p['min_confidence']:.2f})" for p in points]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_confusion(confusion: list[list[int]], names: tuple[str, ...], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    fig.tight_layout()
    _save_figure(fig, path)


def plot_curves(epochs: list[dict], title: str, path: Path) -> None:
    """Loss and accuracy per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [e["epoch"] for e in epochs]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax in (("loss", loss_ax), ("acc", acc_ax)):
        ax.plot(x, [e[f"train_{key}"] for e in epochs], label="train")
        if epochs and f"val_{key}" in epochs[0]:
            ax.plot(x, [e[f"val_{key}"] for e in epochs], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(f"{title}: {'loss' if key == 'loss' else 'accuracy'}")
        ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    """A plot written whole (mer_tag._fs): a reader never finds half a PNG."""
    import matplotlib.pyplot as plt

    from mer_tag import _fs

    with _fs.atomic_file(path, suffix=Path(path).suffix) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def report_table(metrics: dict) -> str:
    """Markdown: one row per model and set, accuracy and macro-F1."""
    lines = ["| model | set | n | accuracy | macro-F1 |", "|---|---|---|---|---|"]
    for model_name, per_set in metrics.items():
        for set_name, s in per_set.items():
            if s.get("n"):
                lines.append(f"| {model_name} | {set_name} | {s['n']} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} |")
    return "\n".join(lines)


def classification_text(metrics: dict) -> str:
    """Per-class precision, recall, F1 and support for every model and set, as plain text tables."""
    blocks = []
    for model_name, per_set in metrics.items():
        for set_name, s in per_set.items():
            if not s.get("n"):
                continue
            lines = [f"{model_name} / {set_name} (n={s['n']})", f"{'':>22} precision    recall  f1-score   support"]
            for label, row in s["report"].items():
                if isinstance(row, dict):
                    lines.append(
                        f"{label:>22} {row['precision']:9.3f} {row['recall']:9.3f} {row['f1-score']:9.3f} "
                        f"{int(row['support']):9d}"
                    )
            lines.append(f"{'accuracy':>22} {s['accuracy']:29.3f}")
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
