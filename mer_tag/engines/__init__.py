"""Where prediction runs: peers behind one small interface.

    engine = engines.create("local" | "ray", model, jobs=…, timeline=…, precision=…, chunk_hop=…, address=…)
    engine.start()              # its workers (local decode processes; a Ray connection), no model yet
    rows = engine.rows(tracks)  # an iterator: one row (sinks.columns) per track, in the order they finish
    engine.close()              # workers stopped, the process as start() found it; safe to call twice

`local` (local.py): decode processes on this machine, the model in this process. `ray` (ray.py): decode
tasks and model actors on a Ray cluster; the driver (this process) never imports torch. Both prepare
tracks with mer_tag.prepare and predict with engines.predictor, so their rows are the same. `scan` knows
this interface and nothing of an engine's parts; nothing here imports ray, torch or the decoders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mer_tag.bundle import Bundle

ENGINES = ("local", "ray")
PRECISIONS = ("auto", "fp32", "bf16")  # of the frozen encoders (MiniLM, the musicnn student); heads stay fp32


class Engine(Protocol):
    name: str
    card: Bundle  # the model's card (bundle.read_card), read once when the engine is made
    parquet_parts: bool  # Parquet results as a folder of part files (sinks.PartWriter) rather than one file

    def start(self) -> None: ...

    def rows(self, tracks: list) -> Iterator[dict]: ...

    def close(self) -> None: ...


def check(engine: str) -> str:
    """The engine name, or ValueError; for 'ray', RuntimeError when ray is not installed."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            from mer_tag.engines.ray import INSTALL_HINT

            raise RuntimeError(INSTALL_HINT)
    return engine


def check_precision(precision: str) -> str:
    """The name, or ValueError. Imports nothing: checked before torch may start (OMP_WAIT_POLICY)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def create(
    engine: str,
    model: str | Path,
    jobs: int = 2,
    timeline: bool = False,
    precision: str = "auto",
    chunk_hop: float | None = None,
    address: str | None = None,
    options=None,
) -> Engine:
    """An engine for `model` (a shipped name or a bundle folder), not started. `jobs`: the local engine's
    decode processes, or the CPUs of the local Ray cluster started when no `address` is given; `options`:
    the Ray engine's RayOptions."""
    check_precision(precision)
    if check(engine) == "local":
        if address is not None:
            raise ValueError("an address is for the ray engine")
        from mer_tag.engines.local import LocalEngine

        return LocalEngine(model, jobs=jobs, timeline=timeline, precision=precision, chunk_hop=chunk_hop)
    from mer_tag.engines.ray import RayEngine

    return RayEngine(
        model, jobs=jobs, timeline=timeline, precision=precision, chunk_hop=chunk_hop, address=address, options=options
    )


def feature_configs(card, chunk_hop: float | None = None):
    """(audio, midi) feature settings from the model's card (`bundle.read_card`: no weights, no torch), with
    `chunk_hop` (seconds between chunk starts) applied: what every engine prepares tracks with."""
    import dataclasses

    audio = card.audio_config
    if chunk_hop:
        audio = dataclasses.replace(audio, chunk_hop_seconds=float(chunk_hop))
    return audio, card.midi_config
