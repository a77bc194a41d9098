"""`mer-tag train` and `mer-tag eval`: make a model from a labelled dataset, and score one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def train(
    data: Annotated[Path, typer.Option("--data", help="Dataset: MIREX-like folder (Audio/, clusters.txt, …), 4Q folder (Audio/, metadata.csv), a CSV 'path,label[,lyrics_path,midi_path,artist]', or one folder per label.")],
    preset: Annotated[str, typer.Option(help="Preset name in presets/ (default, mirex-baseline, wijaya2021-cnn, wijaya2021-crnn) or a .toml path.")] = "default",
    label_map: Annotated[Optional[str], typer.Option("--label-map", help="Relabel the dataset: a named map (valence, arousal: from 4Q quadrants) or 'Q1=Positive,Q4=Positive,…'. Overrides the preset's [labels] map.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: model/, metrics, plots, model card.")] = Path("runs/default"),
    cache: Annotated[Optional[Path], typer.Option(help="Feature cache folder (keyed by file and settings).")] = Path(".cache/features"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes and torch threads.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for the split and the training.")] = 0,
    limit: Annotated[int, typer.Option(help="Use only this many songs (smoke runs); 0 = all.")] = 0,
    epochs: Annotated[int, typer.Option(help="Override every branch's epoch count (smoke runs); 0 = preset's.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """Train the audio, lyrics and MIDI branches and their fusion; write a self-describing model.

    Examples:

      mer-tag train --data ../shared/datasets/mirex-mood                       # the default preset

      mer-tag train --data ../shared/datasets/mirex-mood --preset mirex-baseline -o runs/baseline

      mer-tag train --data ../shared/datasets/4q-emotion --preset wijaya2021-crnn --label-map valence -o runs/valence

      mer-tag scan ~/Music --model runs/default/model                         # use what you trained
    """
    from rich.console import Console

    from mer_tag.train.datasets import DatasetError
    from mer_tag.train.run import TrainError
    from mer_tag.train.run import train as run_train

    console = Console(stderr=True)
    try:
        run_train(data, preset=preset, out=out, cache=cache, jobs=jobs, seed=seed, limit=limit, epochs=epochs,
                  progress=not quiet, log=lambda msg: console.print(msg, highlight=False), label_map=label_map)
    except (DatasetError, TrainError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)


def evaluate(
    data: Annotated[Path, typer.Option("--data", help="A labelled dataset, in any layout `train` reads.")],
    model: Annotated[str, typer.Option(help="Model: 'default' or a model folder.")] = "default",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for metrics.json, report and confusion PNGs.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Decoding worker processes.")] = 2,
    label_map: Annotated[Optional[str], typer.Option("--label-map", help="Relabel the dataset first, as the model was trained (e.g. valence).")] = None,
):
    """Score a model on a labelled dataset: per-branch and fused accuracy, macro-F1, confusion matrices.

    Example:

      mer-tag eval --data ../shared/datasets/mirex-mood --model runs/baseline/model -o runs/baseline/eval
    """
    from rich.console import Console

    from mer_tag.bundle import BundleError
    from mer_tag.evaluate import evaluate as run_eval
    from mer_tag.train.datasets import DatasetError

    console = Console(stderr=True)
    try:
        metrics = run_eval(data, model=model, out=out, jobs=jobs, label_map=label_map)
    except (DatasetError, BundleError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    from mer_tag.train.evaluate import report_table

    typer.echo(report_table({name: {"all": s} for name, s in metrics.items()}))
