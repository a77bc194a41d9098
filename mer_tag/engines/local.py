"""The local engine: decode processes → batches across tracks → the model in this process → rows.

Worker processes (spawned, mer_tag.prepare) do everything that needs no model: decode, resample, chunk,
features, tags, lyrics and MIDI. This process holds the model once and runs it on whatever tracks are
ready, so chunks from many tracks share a forward pass. At most `IN_FLIGHT_PER_JOB * jobs + 2` tracks are
in flight: memory stays flat however large the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mer_tag.engines.settings import EngineSettings

# Tracks submitted and not yet scored, per decode worker (+2). The queue is topped up before each model
# call, so workers keep decoding while the models run; 100 four-minute tracks took 21.9-22.9 s with 8,
# 23.2-23.9 s with 2, at the same peak RSS: a finished track waiting to be scored holds only its features
# (about 1 MB for 4 minutes), so memory stays flat.
IN_FLIGHT_PER_JOB = 8


def model_threads(jobs: int) -> int:
    """Torch threads beside `jobs` decode workers. The models take about 0.14 CPU-s a 4-minute track and
    decoding 0.34, so one thread keeps up with two workers: on 2 cores, 100 four-minute tracks took
    21.7 s with one thread and 22.4 s with two (main-process CPU 9.9 against 11.5 s). Above two workers
    this keeps the same ratio (not measured: CI has 2 cores)."""
    return max(1, jobs // 2)


class LocalEngine:
    """`jobs` decode processes (0: decode in this process) and the model in this process."""

    name = "local"
    parquet_parts = False
    starting = "loading the model…"  # what `start` does first, for the screen

    def __init__(self, settings: EngineSettings):
        self.settings, self.jobs = settings, settings.jobs
        self.card, self.audio_config, self.midi_config = settings.read()  # no torch, no weights
        self.pool: Any = None  # a workers.DecodePool while started with jobs > 0
        self.bundle: Any = None
        self.predictor: Any = None
        self._threads_before: int | None = None  # torch's thread count before this engine set its own
        self._ahead: tuple[Any, Any] | None = None  # (tracks, their batches) handed to the workers by `start`

    def start(self, stage=None, tracks=None) -> None:
        """Spawn the decode workers and hand them `tracks` (the ones the next `rows` call will be given, where
        the caller knows them), then load the model: the workers decode while this process imports torch
        (1.1-1.6 CPU-s), where before they sat idle until the first `rows` call. A model that cannot load
        fails here, before any result is written. Torch runs on `model_threads(jobs)` threads until `close`.
        (`stage`: nothing to say beyond the scan's own 'loading the model…'.)"""
        from mer_tag.workers import DecodePool

        if self.bundle is not None:
            return
        if self.jobs > 0:
            self.pool = DecodePool(self.jobs)
            if tracks is not None:
                self._ahead = (tracks, self._decoded(tracks))
        import torch

        from mer_tag import bundle as bundle_io

        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(model_threads(self.jobs))
        self.bundle = bundle_io.load(self.settings.model)
        self.bundle.audio_config = self.audio_config  # with any chunk hop applied

    def rows(self, tracks):
        """Yield one row per track, in the order tracks finish. A decode worker that dies costs only the track
        that killed it, as an error row (mer_tag.workers)."""
        from mer_tag.prepare import prepare

        self.start()
        if self.pool is None:
            for track in tracks:
                yield from self._predictor().rows([prepare(track, self.audio_config, self.midi_config)])
            return
        import torch

        torch.set_num_threads(model_threads(self.jobs))  # an earlier call's last batch took the workers' cores
        batches = self._handed_over(tracks)
        predictor = self._predictor()  # the encoders load while the first tracks already decode
        for ready in batches:
            if not self.pool.in_flight:
                predictor.torch.set_num_threads(max(1, self.jobs))  # the last batch: the workers' cores are free
            yield from predictor.rows(ready)

    def _decoded(self, tracks):
        return self.pool.prepared(tracks, self.audio_config, self.midi_config, IN_FLIGHT_PER_JOB * self.jobs + 2)

    def _handed_over(self, tracks):
        """The batches of `tracks`: those `start` already handed the workers when they are the same tracks,
        else a fresh hand-over (after restarting the workers, if `start` gave them other tracks)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] is tracks:
            return ahead[1]
        if ahead is not None:  # other tracks are queued: drop them with the workers holding them
            from mer_tag.workers import DecodePool

            self.pool.close()
            self.pool = DecodePool(self.jobs)
        return self._decoded(tracks)

    def _predictor(self):
        if self.predictor is None:
            from mer_tag.engines.predictor import Predictor

            self.predictor = Predictor(self.bundle, self.settings.timeline, self.settings.precision)
        return self.predictor

    def close(self) -> None:
        """Stop the workers (a scan stopped early cancels what they had left) and give torch back its threads."""
        self.bundle = self.predictor = self._ahead = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None
