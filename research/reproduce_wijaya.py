"""Wijaya et al. (ASTESJ 2021) on our data: CNN vs CRNN × task × excerpt length, artist-grouped CV.

Every cell is one `mer-tag crossval --branch audio` over the same grouped folds of a task; the finished cells
are kept as JSON in `--out` and not run again, so the table can be built a piece at a time. Then it prints
the table of docs/reproductions.md (macro-F1 and accuracy, mean ± spread over folds) and the paired
differences, fold by fold on the same folds: CRNN − CNN, and whole clip − excerpt.

    python research/reproduce_wijaya.py                         # every cell (hours on two busy cores)
    python research/reproduce_wijaya.py --cells cnn:valence:30,cnn:valence:10
    python research/reproduce_wijaya.py --table-only            # the table from the cells already run
"""

import argparse
import json
from pathlib import Path

import numpy as np

TASKS = {  # task → (dataset, label map)
    "valence": ("../shared/datasets/4q-emotion", "valence"),
    "quadrants": ("../shared/datasets/4q-emotion", None),
    "clusters": ("../shared/datasets/mirex-mood", None),
}
HOPS = {30: 2592, 15: 1296, 10: 864}  # samples: 256 frames (the paper's image width) over each excerpt length
MODELS = ("cnn", "crnn", "default")  # `default`: the shipped recipe's audio branch (student + head), whole clips


def cell_overrides(model: str, seconds: int) -> list[str]:
    """The preset as it ships, cut into excerpts of `seconds` (each still a 128 x 256 image)."""
    if model == "default" or seconds == 30:
        return []
    return [
        f"audio.features.chunk_seconds={float(seconds)}",
        f"audio.features.chunk_hop_seconds={float(seconds)}",
        f"audio.features.hop_length={HOPS[seconds]}",
    ]


def all_cells() -> list[str]:
    return [f"default:{t}:30" for t in TASKS] + [
        f"{m}:{t}:{s}" for m in ("cnn", "crnn") for t in TASKS for s in (30, 10, 15)
    ]


def run_cell(cell: str, out: Path, folds: int, jobs: int) -> None:
    from mer_tag.train.crossval import crossval, write_report

    model, task, seconds = cell.split(":")
    target = out / f"{model}-{task}-{seconds}.json"
    if target.exists():
        return
    data, label_map = TASKS[task]
    preset = "default" if model == "default" else f"wijaya2021-{model}"
    report = crossval(
        data,
        preset=preset,
        branches=("audio",),
        folds=folds,
        jobs=jobs,
        label_map=label_map,
        overrides=cell_overrides(model, int(seconds)),
        log=print,
    )
    write_report(report, target)


def load(out: Path, model: str, task: str, seconds: int) -> dict | None:
    path = out / f"{model}-{task}-{seconds}.json"
    return json.loads(path.read_text())["branches"]["audio"] if path.exists() else None


def spread(values) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(out: Path) -> str:
    """Markdown: per task and excerpt length, macro-F1 and accuracy of each model (song answers for whole
    clips, each excerpt alone for excerpts), then the paired differences."""
    lines = [
        "| task | songs | input | CNN macro-F1 | CNN accuracy | CRNN macro-F1 | CRNN accuracy | default audio "
        "macro-F1 | default audio accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    diffs = []
    for task in TASKS:
        for seconds in (30, 15, 10):
            cells = {m: load(out, m, task, seconds) for m in MODELS if m != "default" or seconds == 30}
            prefix = "" if seconds == 30 else "excerpt_"
            row = [
                task,
                str(next((c["songs"] for c in cells.values() if c), "")),
                "whole 30-s clip" if seconds == 30 else f"{seconds}-s excerpts, each alone",
            ]
            for model in MODELS:
                cell = cells.get(model)
                row += (
                    [spread(cell[f"fold_{prefix}macro_f1"]), spread(cell[f"fold_{prefix}accuracy"])]
                    if cell
                    else ["—", "—"]
                )
            lines.append("| " + " | ".join(row) + " |")
            if cells.get("cnn") and cells.get("crnn"):
                diffs.append(difference_row(task, "CRNN − CNN", row[2], cells["crnn"], cells["cnn"], prefix, prefix))
            for model in ("cnn", "crnn"):
                whole = load(out, model, task, 30)
                if seconds != 30 and whole and cells.get(model):
                    diffs.append(
                        difference_row(
                            task,
                            f"{model.upper()}: whole clip − {seconds}-s excerpt",
                            "",
                            whole,
                            cells[model],
                            "",
                            prefix,
                        )
                    )
    return "\n".join(
        lines
        + [
            "",
            "| task | difference, fold by fold on the same folds | input | macro-F1 | accuracy |",
            "|---|---|---|---|---|",
        ]
        + diffs
    )


def difference_row(task, what, setting, a, b, prefix_a, prefix_b) -> str:
    cells = [spread(np.subtract(a[f"fold_{prefix_a}{m}"], b[f"fold_{prefix_b}{m}"])) for m in ("macro_f1", "accuracy")]
    return f"| {task} | {what} | {setting} | {cells[0]} | {cells[1]} |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", help="comma-separated MODEL:TASK:SECONDS (default: all of them)")
    parser.add_argument("--out", default=".cache/wijaya", help="one JSON report per cell")
    parser.add_argument("--folds", type=int, default=3, help="artist-grouped folds (seed 0)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        import torch

        torch.set_num_threads(args.jobs)
        for cell in args.cells.split(",") if args.cells else all_cells():
            run_cell(cell, out, args.folds, args.jobs)
    print(table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
