"""`mer-tag scan --engine ray`: the same scan on a Ray cluster (issue #8; docs/scale.md).

The walk, the resume decision and the writer stay in `mer_tag.scan`; this engine turns the tracks still
to do into rows with Ray tasks and actors:

    start()     model actors created (one per GPU, or a few on CPUs): each loads the model once, from
                the card and safetensors the driver sends it as bytes
    rows()      the tracks in blocks; one prepare task per block (prepare.prepare: decode, checks,
                features, tags, lyrics, MIDI), a bounded number in flight; each decoded block goes to
                the least busy actor, which runs Predictor.rows on it (its tracks' chunks and lyrics
                share forward passes, then each branch and the fusion), on a GPU where there is one;
                rows come back to the driver as the calls finish, into the sink

so the rows are the local engine's (same code, same columns); only chunk batching differs, which moves
probabilities by float rounding at most. On a cluster it joins, the driver plans and writes: it reads the
card, never imports torch nor loads the weights; only the actors do. On the one-node cluster a scan starts
for itself, the driver is a process on that node anyway, so it holds the model itself (`model_here`), loaded
while the cluster starts, and the cluster only prepares: an actor would be one more process to start, with
torch and the model, on the cores the decoding needs (docs/performance.md).

A worker killed mid-run loses no track: Ray re-runs a prepare task whose worker died (up to `max_retries`
times) and restarts a killed actor, re-sending its call. A killed driver loses nothing written: rerunning the
scan resumes like the local engine. Parquet results from this engine are a part folder (sinks.PartWriter).

Plain tasks and actors rather than Ray Data: on a 2-CPU cluster, Ray Data's executor and its helper
actors cost about 4 CPU-seconds of a 48-track scan that needs 11 (docs/scale.md).

Nothing at import time needs ray; `import ray` happens inside functions.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mer_tag.engines import ray_cluster
from mer_tag.engines.local import model_threads as local_model_threads
from mer_tag.errors import first_line

if TYPE_CHECKING:
    from mer_tag.engines.settings import EngineSettings

log = logging.getLogger(__name__)

INSTALL_HINT = "the Ray engine needs ray: pip install 'mer-tag[ray]' (or: pip install ray)"
CALLS_PER_ACTOR = 2  # one running, one queued: an actor never waits on the driver between calls
IN_FLIGHT_PER_SLOT = 8  # tracks submitted and not yet scored, per decode slot (+2), as the local engine
MODEL = "<model>"  # stands for the model's name in an actor's message (the actor sees only a temp folder)
ALONE_RETRIES = 1  # more tries of a track alone, after its block's task died on each of `max_retries` + 1
# Ray sends a task argument under 100 KiB inside the task (max_direct_call_object_size), up to 10 MiB of them
# (task_rpc_inlined_bytes_limit; both Ray's defaults, src/ray/common/ray_config_def.h): the model's files
# (2.6 MB for default@0.4.0) go to an actor in such pieces.
INLINE_PIECE_BYTES = 96 * 1024


@dataclass
class RayOptions:
    """How the scan uses the cluster. Every field has a default that suits the cluster it finds."""

    address: str | None = None  # HOST:PORT of a running cluster; None: RAY_ADDRESS, else a local one
    num_cpus: int | None = None  # CPUs of a local cluster started here (scan: --jobs; None: all cores)
    decode_cpus: float = 1.0  # CPUs reserved by each prepare (decode + features) task
    model_actors: int | None = None  # model actors (None: one per GPU; CPU-only: one per 8 CPUs, at least 1)
    model_cpus: float | None = None  # CPUs reserved per model actor (None: 1 with a GPU or >= 8 CPUs, else 0)
    model_gpus: float | None = None  # GPUs per model actor (None: 1 where the cluster has GPUs)
    # Tracks per prepare task. None: 1; from 32 CPUs on CPUs // 16, at most 4 and tracks // decode slots.
    tracks_per_block: int | None = None
    batch_tracks: int = 8  # tracks per model call (their chunks share forward passes)
    max_retries: int = 4  # re-runs of a prepare task whose worker died
    # The model in this process (the driver) rather than in actors. None: when this scan starts its own local
    # cluster, whose CPUs are this machine's; actors wherever a cluster is joined.
    model_here: bool | None = None


class RayEngine:
    """Prepare tasks and model actors on a Ray cluster: the one at `options.address` (else RAY_ADDRESS, else the
    one this process already joined), or a local one of `settings.jobs` CPUs started by `start` and stopped by
    `close`."""

    name = "ray"
    parquet_parts = True  # a million-track scan must never rewrite what it wrote

    def __init__(self, settings: EngineSettings, options: RayOptions | None = None):
        self.settings = settings
        self.card, self.audio_config, self.midi_config = settings.read()  # the driver: no torch, no weights
        self.options = dataclasses.replace(options or RayOptions())
        if self.options.num_cpus is None:  # used only when no cluster is given: a local one of `jobs` CPUs
            self.options.num_cpus = max(1, settings.jobs)
        self.ray: Any = None  # the ray module, once started
        self.actors: list = []
        self.predictor: Any = None  # the model, when this process runs it (`RayOptions.model_here`)
        self._threads_before: int | None = None  # torch's thread count before this engine set its own
        self._pending: list = []  # refs of tasks and calls not finished, cancelled by `close`
        self._started_here = False
        self._node: Any = None  # the local cluster this engine started itself (ray_cluster), stopped by `close`

    @property
    def starting(self) -> str:
        """What `start` does first, for the screen: join or start a cluster, unless this process joined one."""
        ray = sys.modules.get("ray")
        if ray and ray.is_initialized():
            return "loading the model on the cluster…"
        return ray_cluster.joining(self.options.address, self.options.num_cpus)

    def start(self, stage=None, tracks=None) -> None:
        """Join the cluster (or start a local one) and load the model: in actors, which load it while tracks
        decode, or in this process while its own cluster starts (`RayOptions.model_here`). `stage(text)` hears
        each step as it begins: a local cluster takes seconds to start. (`tracks`: the cluster decodes nothing
        before `rows`, whose prepare tasks are planned from the cluster's size.)"""
        if self.ray is not None:
            return
        say = stage or (lambda text: None)
        say(self.starting)
        try:
            import ray
        except ImportError:
            raise RuntimeError(INSTALL_HINT) from None
        joining = ray.is_initialized() or ray_cluster.address(self.options.address) is not None
        here = self.options.model_here
        if here is None:  # actor options asked for actors
            actor_options = (self.options.model_actors, self.options.model_cpus, self.options.model_gpus)
            here = not joining and actor_options == (None, None, None)
        # The model's thread starts only once everything this start adds to the environment is there: adding a
        # variable may move the environment's array while that thread's C code reads it (getenv takes no lock).
        # `local_cluster` writes what starting our own cluster adds; where there is none to start (a cluster
        # joined, or a Ray whose private modules differ: ray.init's own start), the model loads after connecting.
        local = None if joining else ray_cluster.local_cluster(self.options.num_cpus)
        loading = None
        if here and local is not None:
            ray_cluster.write_environment()
            loading = _Loading(self.settings, self.audio_config)  # on cores the cluster's start leaves idle
        try:
            self._started_here, self._node = ray_cluster.connect(
                ray, self.options.address, self.options.num_cpus, local
            )
        except Exception:
            if loading is not None:
                loading.join()  # no thread of ours left importing torch behind the error
            raise
        self.ray = ray
        if here and loading is None:
            loading = _Loading(self.settings, self.audio_config)
        if loading is not None:
            say("loading the model…")
            try:
                self.predictor = loading.result()
                self._threads_before = self.predictor.torch.get_num_threads()  # `rows` sets its own, `close` this
            except BaseException:  # a model that cannot load: its error, the cluster stopped
                self.close()
                raise
            return
        say("loading the model on the cluster…")
        p = plan(ray.cluster_resources(), 0, self.options)
        # The model's files go to each actor inside its creation task, where Ray keeps them for its restarts: in
        # pieces under Ray's inline limit, since a larger argument goes to the object store, and Ray then prints
        # an error about restarts on the scan's screen (core_worker.cc "constructor arguments in the object store").
        pieces = inline_pieces(model_files(self.settings.model))
        actor = ray.remote(_ModelActor).options(
            num_cpus=p["model_cpus"], num_gpus=p["model_gpus"] or None, max_restarts=-1, max_task_retries=-1
        )
        self.actors = [
            actor.remote(
                self.audio_config, self.settings.timeline, p["model_threads"], self.settings.precision, *pieces
            )
            for _ in range(p["actors"][1])
        ]

    def rows(self, tracks):
        """Yield one row per track (sinks.columns keys), in the order they finish."""
        from mer_tag.bundle import BundleError
        from mer_tag.prepare import failed

        tracks = list(tracks)
        if not tracks:
            return
        self.start()
        ray = self.ray
        p = plan(ray.cluster_resources(), len(tracks), self.options, here=self.predictor is not None)
        log.info("ray engine: %s", p)
        size = p["tracks_per_block"]
        blocks = collections.deque(tracks[i : i + size] for i in range(0, len(tracks), size))
        # Each prepare task returns its track count apart from its tracks: the driver learns from the small one
        # whether the task's worker died, while the tracks go from the task's node to an actor's unfetched.
        task = ray.remote(_prepare_block)
        prepare = task.options(num_cpus=self.options.decode_cpus, max_retries=self.options.max_retries, num_returns=2)
        alone = task.options(num_cpus=self.options.decode_cpus, max_retries=ALONE_RETRIES, num_returns=2)
        max_in_flight = p["in_flight"]
        # count ref → (tracks ref, the tracks, alone?); [(tracks ref, n)]; call ref → (actor, n)
        decoding, decoded, calls = {}, [], {}
        busy = dict.fromkeys(range(len(self.actors)), 0)
        in_flight, threads = 0, _threads(p["model_threads"])

        def submit():
            nonlocal in_flight
            while in_flight < max_in_flight and blocks:
                block = blocks.popleft()
                count, items = prepare.remote(block, self.audio_config, self.midi_config)
                decoding[count] = (items, block, False)
                in_flight += len(block)

        def crashed(block: list, was_alone: bool, exc: Exception) -> None:
            """A prepare task whose worker died on every try: each of its tracks again, alone; a track that
            kills its worker alone too (or that was its block's only track) becomes an error row, and the scan
            goes on."""
            if not was_alone and len(block) > 1:
                for track in block:
                    count, items = alone.remote([track], self.audio_config, self.midi_config)
                    decoding[count] = (items, [track], True)
                return
            log.warning("ray engine: %s killed its decode worker: %s", block[0].path, first_line(exc))
            tries = ALONE_RETRIES + 1 if was_alone else self.options.max_retries + 1
            reason = f"the decoder crashed on this file: its Ray worker died on each of {tries} tries alone"
            decoded.append((ray.put([failed(block[0], reason)]), 1))

        def batch() -> tuple[list, int]:
            """The decoded blocks of the next model call, up to `batch_tracks` tracks (and at least one block)."""
            refs: list = []
            n = 0
            while decoded and (not refs or n + decoded[0][1] <= self.options.batch_tracks):
                ref, count = decoded.pop(0)
                refs.append(ref)
                n += count
            return refs, n

        def dispatch():
            while decoded:
                actor = min(busy, key=busy.get)
                if busy[actor] >= CALLS_PER_ACTOR:
                    return
                refs, n = batch()
                calls[self.actors[actor].rows.remote(*refs)] = (actor, n)
                busy[actor] += 1

        submit()
        problem = ray.get([a.problem.remote() for a in self.actors])  # the model loads while tracks decode
        if any(problem):
            raise BundleError(next(filter(None, problem)).replace(MODEL, str(self.settings.model)))
        if self.predictor is not None:
            self.predictor.torch.set_num_threads(threads)  # an earlier call's last batch took all cores
        while decoding or decoded or calls:
            self._pending = [*decoding, *calls]
            # Wait for one task or call, unless decoded tracks wait to be scored here; then take in every other
            # that has finished too, so that a model call gets all the tracks that are ready (up to batch_tracks).
            done = [] if self.predictor is not None and decoded else self._wait(self._pending, 1, None)
            rest = [ref for ref in self._pending if ref not in done]
            done += self._wait(rest, len(rest), 0) if rest else []
            for ref in done:
                if ref in decoding:
                    items, block, was_alone = decoding.pop(ref)
                    try:
                        ray.get(ref)  # an int, or the error of a task whose worker died on every try
                    except ray.exceptions.RayError as exc:
                        crashed(block, was_alone, exc)
                    else:
                        decoded.append((items, len(block)))
                else:
                    actor, n = calls.pop(ref)
                    busy[actor] -= 1
                    in_flight -= n
                    self._pending = [*decoding, *calls]  # what `close` cancels, should the scan stop here
                    yield from ray.get(ref)
            submit()
            if self.predictor is None:
                dispatch()
            elif decoded:
                # The last tracks have all cores, once no decoding is left to share them with.
                wanted = _threads(p["cpus"] if not blocks and not decoding else p["model_threads"])
                if wanted != threads:
                    self.predictor.torch.set_num_threads(threads := wanted)
                refs, n = batch()
                rows = self.predictor.rows([item for block in ray.get(refs) for item in block])
                in_flight -= n
                submit()  # before the rows go to the writer
                self._pending = [*decoding, *calls]
                yield from rows
        self._pending = []

    def _wait(self, refs: list, n: int, timeout: float | None) -> list:
        """The refs of `refs` that are done: `n` of them, or those done within `timeout` seconds."""
        return self.ray.wait(refs, num_returns=n, timeout=timeout, fetch_local=False)[0]

    def close(self) -> None:
        """Cancel what is left (a scan stopped early), remove the actors, and leave a cluster started here."""
        if self.ray is None:
            return
        ray = self.ray
        for ref in self._pending:
            try:
                ray.cancel(ref, force=False)
            except Exception:  # already finished, or an actor call Ray will not cancel: it ends with its actor
                pass
        for actor in self.actors:
            ray.kill(actor)
        if self._threads_before is not None:
            self.predictor.torch.set_num_threads(self._threads_before)
            self._threads_before = None
        self.predictor = None
        if self._started_here:
            ray.shutdown()
        if self._node is not None:
            self._node.kill_all_processes(check_alive=False, allow_graceful=True)
        self.ray, self.actors, self._pending, self._started_here = None, [], [], False
        self._node = None


# ------------------------------------------------------------------ planning


def plan(cluster: dict, n_tracks: int, options: RayOptions, here: bool = False) -> dict:
    """Resources and sizes for a cluster's resources (ray.cluster_resources()); pure, for tests/docs.
    `actors` is (fewest, most) useful; the engine starts the most. `here`: the model runs in the driver
    (`RayOptions.model_here`), not in actors."""
    cpus = float(cluster.get("CPU", 1))
    gpus = float(cluster.get("GPU", 0))
    model_gpus = options.model_gpus if options.model_gpus is not None else (1.0 if gpus >= 1 else 0.0)
    if here:
        actors = (0, 0)
    elif options.model_actors is not None:
        actors = (options.model_actors, options.model_actors)
    elif model_gpus > 0:
        n = max(1, int(gpus // model_gpus))
        actors = (n, n)
    else:
        actors = (1, max(1, int(cpus // 8)))
    # A GPU actor keeps one CPU to feed its GPU. On a CPU cluster of a few cores a reserved core would
    # idle a decode slot (or, on one core, leave none), so the actor shares the decode tasks' cores as
    # the local engine's main process does; from 8 CPUs on, each actor reserves a core of its own.
    if here:
        model_cpus = 0.0  # the driver shares the decode tasks' cores, as the local engine's main process
    elif options.model_cpus is not None:
        model_cpus = options.model_cpus
    else:
        model_cpus = 1.0 if model_gpus > 0 or cpus >= 8 else 0.0
    # Torch threads per actor: its own cores, or, sharing the decode cores, one per core the cluster has per
    # actor (with musicnn as the front-end, default@0.1.0, one thread left a core idle; docs/scale.md). In the
    # driver, the local engine's share beside its decode workers.
    if here:
        model_threads = local_model_threads(int(cpus))
    else:
        model_threads = max(1, int(model_cpus)) if model_cpus else max(1, int(cpus) // actors[1])
    slots = max(1, int((cpus - model_cpus * actors[1]) / options.decode_cpus))
    # Tracks per prepare task: one, so that the first rows wait for one track's decoding and the last tasks end
    # together; from 32 CPUs on a few, as each task makes a round trip through the driver; never more than the
    # tracks give every decode slot. The tracks in flight hold at least two tasks per slot: with blocks larger
    # than that budget, a 2-CPU cluster ran one task at a time (docs/performance.md).
    per_block = options.tracks_per_block or max(1, min(IN_FLIGHT_PER_SLOT // 2, int(cpus) // 16, n_tracks // slots))
    return {
        "cpus": cpus,
        "gpus": gpus,
        "actors": actors,
        "model_cpus": model_cpus,
        "model_gpus": model_gpus,
        "model_threads": model_threads,
        "decode_slots": slots,
        "tracks_per_block": per_block,
        "blocks": max(1, -(-n_tracks // per_block)),
        "in_flight": max(IN_FLIGHT_PER_SLOT, 2 * per_block) * slots + 2,
    }


# ------------------------------------------------------------------ the workers


def inline_pieces(files: dict[str, bytes], size: int = INLINE_PIECE_BYTES) -> list:
    """`files` as (name, bytes) pieces of at most `size` bytes each, in order: each a task argument of its own."""
    return [(name, data[i : i + size]) for name, data in files.items() for i in range(0, max(1, len(data)), size)]


def joined_pieces(pieces) -> dict[str, bytes]:
    """`inline_pieces` put back together."""
    parts: dict[str, list[bytes]] = {}
    for name, data in pieces:
        parts.setdefault(name, []).append(data)
    return {name: b"".join(datas) for name, datas in parts.items()}


def model_files(model) -> dict[str, bytes]:
    """The bundle folder's card and weights, shipped to each actor: the workers need no copy of the model
    and load it exactly as the local engine does (bundle.load: safetensors and JSON, nothing unpickled)."""
    from mer_tag import bundle as bundle_io

    folder = bundle_io.resolve(model)
    names = [bundle_io.CARD_FILE] + sorted(p.name for p in folder.glob("*.safetensors"))
    return {name: (folder / name).read_bytes() for name in names}


def _prepare_block(tracks: list, audio_config, midi_config) -> tuple[int, list]:
    """Ray task body: a block of tracks → (how many, their Prepared); numpy arrays travel out of band, uncopied."""
    from mer_tag.prepare import prepare
    from mer_tag.workers import crash_if_asked

    _init_decode_process()
    items = []
    for track in tracks:
        crash_if_asked(track)
        items.append(prepare(track, audio_config, midi_config))
    return len(items), items


_DECODE_PROCESS_READY = False


def _init_decode_process() -> None:
    """Once per Ray worker process: set up as the local engine's decode workers are (one BLAS thread,
    freed memory kept, no torch)."""
    global _DECODE_PROCESS_READY
    if not _DECODE_PROCESS_READY:
        from mer_tag.prepare import init_worker

        init_worker()
        _DECODE_PROCESS_READY = True


def _threads(n: float) -> int:
    """`n` torch threads, but never more than this machine has: a driver may hold the model beside a large cluster."""
    return max(1, min(int(n), os.cpu_count() or 1))


def _predictor(bundle, audio_config, timeline: bool, precision: str):
    """A Predictor for a loaded bundle, with the driver's feature settings (any --chunk-hop applied), on the GPU
    where this process has one."""
    import torch

    from mer_tag.engines.predictor import Predictor

    bundle.audio_config = audio_config
    predictor = Predictor(bundle, timeline, precision)
    if torch.cuda.is_available():
        _to_device(predictor, torch.device("cuda"))
    return predictor


class _Loading(threading.Thread):
    """The model loading in this process, in a thread of its own, while the main thread starts the cluster (whose
    first seconds leave cores idle): torch's import alone is 1.1-1.6 CPU-s."""

    def __init__(self, settings: EngineSettings, audio_config):
        super().__init__(name="mer-tag model loading", daemon=True)
        self.settings, self.audio_config = settings, audio_config
        self.predictor: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            from mer_tag import bundle as bundle_io

            bundle = bundle_io.load(self.settings.model)
            self.predictor = _predictor(bundle, self.audio_config, self.settings.timeline, self.settings.precision)
        except BaseException as exc:  # raised again in the thread that asks for the model
            self.error = exc

    def result(self):
        """The Predictor, once loaded; or what stopped it loading (a BundleError for a model that cannot load)."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.predictor


class _ModelActor:
    """Ray actor body: the model loaded once, then Predictor.rows on each call's prepared tracks."""

    def __init__(self, audio_config, timeline: bool, threads: int, precision: str, *pieces):
        import tempfile

        from mer_tag._process import let_idle_threads_sleep

        let_idle_threads_sleep()  # this actor's own process, before torch starts there
        import torch

        from mer_tag import bundle as bundle_io

        torch.set_num_threads(_threads(threads))  # never more than this node has
        self.predictor: Any = None
        self._problem: str | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="mer-tag-model-") as tmp:
                for name, data in joined_pieces(pieces).items():
                    Path(tmp, name).write_bytes(data)
                bundle = bundle_io.load(tmp)
        except bundle_io.BundleError as exc:
            self._problem = str(exc).replace(tmp, MODEL)  # the driver says it, with the model's own name
            return
        self.predictor = _predictor(bundle, audio_config, timeline, precision)

    def problem(self) -> str | None:
        """None once the model is loaded; else why it cannot be."""
        return self._problem

    def rows(self, *blocks: list) -> list[dict]:
        return self.predictor.rows([item for block in blocks for item in block])


# ------------------------------------------------------------------ GPU actors


def _to_device(predictor, device) -> None:
    """Run the engine's models on `device`: inputs go there, outputs come back to the CPU, so
    the Predictor (which builds CPU tensors) runs unchanged."""
    predictor.bundle.models = {name: _OnDevice(module, device) for name, module in predictor.bundle.models.items()}
    if predictor.frontend is not None:
        predictor.frontend = _OnDevice(predictor.frontend, device)


def _move(value, device):
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value


class _OnDevice:
    def __init__(self, module, device):
        self.module, self.device = module.to(device), device

    def __call__(self, *args, **kwargs):
        return _move(self.module(*_move(args, self.device), **_move(kwargs, self.device)), "cpu")

    def encode(self, *args, **kwargs):
        return _move(self.module.encode(*_move(args, self.device), **_move(kwargs, self.device)), "cpu")

    def embed_songs(self, *args, **kwargs):
        return _move(self.module.embed_songs(*_move(args, self.device), **_move(kwargs, self.device)), "cpu")

    def __getattr__(self, name):
        return getattr(self.module, name)
