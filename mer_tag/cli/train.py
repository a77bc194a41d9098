"""`mer-tag train` and `mer-tag eval`: make a model from a labelled dataset, and score one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mer_tag._process import MAX_JOBS
from mer_tag.cli._errors import check_folder, stderr_console, usage_error


def train(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            metavar="FOLDER|FILE",
            help="Songs with a mood each: a folder laid out like the MIREX mood dataset (Audio/, clusters.txt, …), "
            "one laid out like the 4Q emotion dataset (Audio/, metadata.csv), a CSV file with the columns path and "
            "label (and, if you have them, lyrics_path, midi_path, artist), or a folder with one sub-folder per "
            "mood.",
        ),
    ],
    quadrant_data: Annotated[
        Path | None,
        typer.Option(
            "--quadrant-data",
            metavar="FOLDER|FILE",
            help="Songs labelled with their valence–arousal quadrant (Q1–Q4), such as the 4Q emotion dataset: adds "
            "valence, arousal and the quadrant to every scanned track. Needs a preset whose sound goes through "
            "musicnn or its student (default does).",
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            metavar="NAME|FILE",
            help="A recipe: default, mirex-baseline, wijaya2021-cnn, wijaya2021-crnn, or your own "
            ".toml file (docs/training.md).",
        ),
    ] = "default",
    label_map: Annotated[
        str | None,
        typer.Option(
            "--label-map",
            metavar="NAME|MAP",
            help="Learn other labels than the dataset's, without editing it: 'valence' or 'arousal' (from the 4Q "
            "quadrants), or your own 'Q1=Positive,Q4=Positive,…'. Overrides the preset's \\[labels] map.",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="FOLDER",
            help="Where the run goes: the model (model/), its scores, plots and a model card.",
        ),
    ] = Path("runs/default"),
    cache: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="Where to keep the sound features computed from each song, so a second run skips that work.",
        ),
    ] = Path(".cache/features"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS, help="CPU cores to use.")] = 2,
    seed: Annotated[
        int,
        typer.Option(
            min=0,
            help="Starting point of the random choices (which songs test, the training "
            "order): the same seed gives the same model.",
        ),
    ] = 0,
    limit: Annotated[int, typer.Option(min=0, help="Use only this many songs, for a quick try; 0 = all.")] = 0,
    epochs: Annotated[
        int,
        typer.Option(
            min=0, help="Passes over the songs for every part of the model, for a quick try; 0 = the preset's."
        ),
    ] = 0,
    precision: Annotated[
        str,
        typer.Option(
            metavar="auto|fp32|bf16",
            help="How finely the parts that turn sound and words into numbers calculate while the model learns: "
            "the full 32-bit 'fp32', or the 16-bit 'bf16', which gives a model that learns from exactly what a "
            "bf16 scan feeds it (`scan` uses bf16 where the processor does it natively); 'auto' is bf16 there, "
            "else fp32.",
        ),
    ] = "fp32",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """Teach a new model from songs whose moods you know, and write it to a folder `scan --model` reads.

    It learns from the sound, the lyrics and the MIDI of each song, then how much to trust each.
    See docs/training.md for the datasets it reads and where to get the MIREX mood dataset.

    Examples:

      mer-tag train --data ~/datasets/mirex-mood        # → runs/default/model

      mer-tag train --data ~/datasets/mirex-mood \\
          --quadrant-data ~/datasets/4q-emotion         # the shipped model

      mer-tag train --data ~/datasets/mirex-mood --preset mirex-baseline -o base

      mer-tag train --data ~/datasets/4q-emotion --preset wijaya2021-crnn \\
          --label-map valence -o valence

      mer-tag scan ~/Music --model runs/default/model   # use what you trained
    """
    from mer_tag.models.precision import check as check_precision
    from mer_tag.train.run import train as run_train

    for given in (data, quadrant_data):
        if given is not None and not given.exists():
            raise usage_error(f"no such file or folder: {given}")
    try:
        check_precision(precision)
    except ValueError as exc:
        raise usage_error(exc) from None
    check_folder("--out", out)
    check_folder("--cache", cache)
    console = stderr_console()
    run_train(  # a bad dataset or preset is a MerTagError: one line, exit 2 (mer_tag.cli.main)
        data,
        preset=preset,
        label_map=label_map,
        quadrant_data=quadrant_data,
        out=out,
        cache=cache,
        jobs=jobs,
        seed=seed,
        limit=limit,
        epochs=epochs,
        progress=not quiet,
        log=lambda msg: console.print(msg, highlight=False),
        precision=precision,
    )


def evaluate(
    data: Annotated[
        Path, typer.Option("--data", metavar="FOLDER|FILE", help="Songs with a mood each, in any layout `train` reads.")
    ],
    model: Annotated[
        str,
        typer.Option(metavar="NAME|FOLDER", help="'default' (the one shipped) or a folder written by `mer-tag train`."),
    ] = "default",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FOLDER",
            help="Folder for the scores (metrics.json), a report and pictures of which moods get mixed up.",
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option("--jobs", "-j", min=0, max=MAX_JOBS, help="Processes reading audio beside the model (0 = none)."),
    ] = 2,
    label_map: Annotated[
        str | None,
        typer.Option(
            "--label-map",
            metavar="NAME|MAP",
            help="Relabel the songs first, as the model was trained (e.g. valence); by default the model's own "
            "map is used when the dataset's labels are not the model's.",
        ),
    ] = None,
    include_training_songs: Annotated[
        bool,
        typer.Option(
            "--include-training-songs",
            help="Also score the songs the model learned from (its card lists them). Left out by default: a "
            "score on them says how well it remembers, not how it does on new music.",
        ),
    ] = False,
):
    """Score a model on songs whose moods you know: how often it is right, for sound, lyrics, MIDI and all
    together, and which moods it mixes up.

    It listens to each song as `scan` does and compares its mood with the one the dataset gives. Songs the
    model learned from are left out, and it says how many before it starts; when they are all it learned
    from, it says so and scores nothing (the shipped model learned every song of the MIREX-like and 4Q
    sets: its card's held-out scores are in docs/model-card.md).

    Examples:

      mer-tag eval --data ~/datasets/my-songs        # the shipped model

      mer-tag eval --data ~/datasets/my-songs --model runs/default/model \\
          -o runs/default/eval
    """
    from mer_tag.evaluate import evaluate as run_eval

    if not data.exists():
        raise usage_error(f"no such file or folder: {data}")
    from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory

    let_idle_threads_sleep()  # as `scan`: this process runs the models beside the decode workers
    reuse_freed_memory()
    console = stderr_console()
    metrics = run_eval(
        data,
        model=model,
        out=out,
        jobs=jobs,
        label_map=label_map,
        include_training_songs=include_training_songs,
        log=lambda line: console.print(line, highlight=False, markup=False),
    )
    from mer_tag.train.evaluate import report_table

    typer.echo(report_table({name: {"all": s} for name, s in metrics.items()}))
