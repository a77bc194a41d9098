"""Where prediction runs: peers behind one small interface.

    engine = engines.create("local" | "ray", EngineSettings(model, jobs=…, timeline=…, precision=…, chunk_hop=…))
    engine.starting             # what start() does first ('loading the model…'), for the screen
    engine.start(stage, tracks) # its workers (local decode processes; a Ray cluster), the model loading;
                                # stage(text), if given, hears what it is doing meanwhile ('starting Ray…');
                                # tracks, if given, are the next rows() call's: an engine may begin them now
    rows = engine.rows(tracks)  # an iterator: one row (sinks.columns) per track, in the order they finish
    engine.close()              # workers stopped, the process as start() found it; safe to call twice

`local` (local.py): decode processes on this machine, the model in this process. `ray` (ray.py): decode
tasks and model actors on a Ray cluster, where the driver (this process) never imports torch; on the one-node
cluster a scan starts for itself, the model in the driver. Both prepare
tracks with mer_tag.prepare and predict with engines.predictor, so their rows are the same. `scan` knows
this interface and nothing of an engine's parts; nothing here imports ray, torch or the decoders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from mer_tag.engines.settings import EngineSettings
from mer_tag.models.precision import check as check_precision

if TYPE_CHECKING:
    from mer_tag.bundle import Bundle
    from mer_tag.engines.ray import RayOptions

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str
    card: Bundle  # the model's card (bundle.read_card), read once when the engine is made
    parquet_parts: bool  # Parquet results as a folder of part files (sinks.PartWriter) rather than one file

    @property
    def starting(self) -> str: ...  # what `start` does first, for the screen before it says more

    def start(self, stage: Callable[[str], None] | None = None, tracks: list | None = None) -> None: ...

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


def create(engine: str, settings: EngineSettings, ray: RayOptions | None = None) -> Engine:
    """An engine for `settings.model`, not started; `ray`: how the Ray engine uses its cluster (its address
    among them). Unknown names and a precision that is none fail here, before any work."""
    check_precision(settings.precision)  # imports nothing: before torch may start (OMP_WAIT_POLICY)
    if check(engine) == "local":
        if ray is not None:
            raise ValueError("Ray options are for the ray engine")
        from mer_tag.engines.local import LocalEngine

        return LocalEngine(settings)
    from mer_tag.engines.ray import RayEngine

    return RayEngine(settings, ray)
