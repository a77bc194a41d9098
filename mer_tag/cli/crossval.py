"""`mer-tag crossval`: artist-grouped cross-validation of a preset (one branch, or the whole recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mer_tag._process import MAX_JOBS


def crossval(
    data: Annotated[Path, typer.Option("--data", metavar="FOLDER|FILE", help="Dataset, in any layout `train` reads.")],
    branch: Annotated[
        list[str],
        typer.Option(
            "--branch",
            "-b",
            metavar="NAME",
            help="audio, lyrics, midi, fused (every branch and the fusion: the whole recipe), or quadrant (the "
            "valence–arousal head, on quadrant-labelled songs such as the 4Q emotion dataset); repeatable.",
        ),
    ],
    preset: Annotated[str, typer.Option(metavar="NAME|FILE", help="Preset name or a .toml path.")] = "default",
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Replace one preset value (audio.epochs=10); a dict VALUE replaces a section. Repeatable.",
        ),
    ] = None,
    label_map: Annotated[
        str | None,
        typer.Option(
            "--label-map",
            metavar="NAME|MAP",
            help="Relabel the dataset: a named map (valence, arousal) or 'Q1=Positive,Q4=Positive,…'.",
        ),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Artist-grouped folds per seed.")] = 5,
    seeds: Annotated[int, typer.Option(min=1, help="Repeat with this many split seeds (0, 1, …).")] = 1,
    cache: Annotated[
        Path | None, typer.Option(metavar="FOLDER", help="Feature cache folder (shared with `train`).")
    ] = Path(".cache/features"),
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, max=MAX_JOBS, help="Decoding worker processes and torch threads.")
    ] = 2,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the scores (every fold's) here (.json).")
    ] = None,
    probs: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="With --branch fused: save every fold's probabilities here (.npz)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="A stratified subset of this many songs (smoke runs); 0 = all.")
    ] = 0,
    precision: Annotated[
        str,
        typer.Option(
            metavar="auto|fp32|bf16",
            help="What the frozen encoders (the sound front-end, the lyrics encoder) calculate in, as `train "
            "--precision`: fp32, bf16, or auto (bf16 where the processor does it natively).",
        ),
    ] = "fp32",
    ungrouped: Annotated[
        bool,
        typer.Option(
            "--ungrouped",
            help="Folds ignore artists, as published random CVs did: only to measure how much that inflates a "
            "score, never to choose settings.",
        ),
    ] = False,
):
    """Score a preset by artist-grouped k-fold CV over its split's train + val songs (its test artists never
    heard): macro-F1 and accuracy per fold, mean and spread.

    `fused` cross-validates the whole recipe as `mer-tag train` runs it; see docs/training.md.

    Examples:

      mer-tag crossval --data ~/datasets/mirex-mood -b fused --probs cv.npz

      mer-tag crossval --data ~/datasets/mirex-mood -b midi --set midi.epochs=80

      mer-tag crossval --data ~/datasets/4q-emotion -b audio --label-map valence

      mer-tag crossval --data ~/datasets/4q-emotion -b quadrant --seeds 2
    """
    from mer_tag.cli._errors import check_folder, usage_error
    from mer_tag.models.precision import check as check_precision

    try:
        check_precision(precision)
    except ValueError as exc:
        raise usage_error(exc) from None
    _check_outputs(json_out, probs, branch)
    check_folder("--cache", cache)
    import torch

    from mer_tag.train.crossval import crossval as run_crossval
    from mer_tag.train.crossval import write_report

    torch.set_num_threads(max(1, jobs))  # the command's process: the library leaves threads alone
    report = run_crossval(  # a MerTagError is one line, exit 2 (mer_tag.cli.main)
        data,
        preset=preset,
        branches=tuple(branch),
        overrides=tuple(set_ or ()),
        folds=folds,
        seeds=seeds,
        cache=cache,
        jobs=jobs,
        ungrouped=ungrouped,
        limit=limit,
        probs=probs,
        label_map=label_map,
        log=lambda line: typer.echo(line),
        precision=precision,
    )
    if json_out:
        write_report(report, json_out)


def _check_outputs(json_out: Path | None, probs: Path | None, branches: list[str]) -> None:
    """The files a run will write, checked before it starts (a run takes minutes to hours): not a folder, and
    --probs only where there are fused probabilities to save."""
    from mer_tag.cli._errors import usage_error

    if probs is not None and "fused" not in branches:
        raise usage_error("--probs saves the fused answer's probabilities: it needs --branch fused")
    for option, path, example in (("--json", json_out, "crossval.json"), ("--probs", probs, "cv.npz")):
        if path is not None and path.is_dir():
            raise usage_error(f"{option} {path} is a folder: give a file, e.g. {path / example}")
