"""Where the prediction loop runs: `local` (this machine's worker processes, mer_tag.predict) or `ray`.

`scan` owns the walk, the resume decision and the writer; an engine only turns the tracks still to do
into rows. Nothing here imports ray: `--engine ray` imports it when the scan starts, and the default
path never does.
"""

from __future__ import annotations

from pathlib import Path

ENGINES = ("local", "ray")


def check(engine: str) -> str:
    """The engine name, or ValueError; for 'ray', RuntimeError when ray is not installed."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            from mer_tag.engines.ray_engine import INSTALL_HINT

            raise RuntimeError(INSTALL_HINT)
    return engine


def predict_rows(engine: str, tracks, bundle, model, jobs: int = 2, timeline: bool = False,
                 address: str | None = None, options=None, precision: str = "auto", pool=None):
    """One row per track from the chosen engine (an iterator; rows come in the order tracks finish).
    `pool`: the local engine's decode workers, when the caller started them early."""
    if check(engine) == "local":
        from mer_tag.predict import predict_tracks

        return predict_tracks(tracks, bundle, jobs=jobs, timeline=timeline, precision=precision, pool=pool)
    from mer_tag.engines.ray_engine import RayOptions, predict_tracks

    options = options or RayOptions()
    if address is not None:
        options.address = address
    options.precision = precision
    if options.num_cpus is None:
        options.num_cpus = max(1, jobs)  # used only when no cluster is given: a local one of `jobs` CPUs
    return predict_tracks(tracks, bundle, model, timeline=timeline, options=options)


def is_folder_dataset(out: str | Path, engine: str) -> bool:
    """Whether the results are a folder of Parquet part files (`out.parquet/part-*.parquet`).

    The Ray engine writes Parquet that way; any engine keeps writing a folder that already is one.
    """
    if str(out) == "-" or Path(out).suffix.lower() != ".parquet":
        return False
    return Path(out).is_dir() or engine == "ray"


def open_writer(out: str | Path, columns: list[str], keep, redo: set[str], engine: str = "local"):
    """The sink for a scan: the shared RowWriter, or a PartWriter for a Parquet folder dataset."""
    if is_folder_dataset(out, engine):
        from mer_tag.engines.ray_engine import PartWriter  # imports no ray

        return PartWriter(out, columns, redo=redo)
    from mer_tag.sinks import RowWriter

    return RowWriter(out, columns, keep=keep)
