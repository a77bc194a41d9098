"""`mer-tag scan --engine ray`: the same scan on a Ray cluster (issue #8; docs/scale.md).

The walk and the resume decision stay in `mer_tag.scan`; this module turns the tracks still to do into
rows with Ray Data:

    from_items(tracks)                       the track list, in blocks of a few tracks
      .map(_prepare_row)                     stateless CPU tasks: predict.prepare (decode, features,
                                             lyrics, MIDI), retried by Ray if their worker dies
      .map_batches(_Predictor)               an actor pool; each actor loads the model once and runs
                                             predict.Engine.rows on batches across tracks (all branches,
                                             then fusion), on a GPU where the cluster has them
      .iter_rows()                           rows stream back to this process, into the same sinks

so the rows are the local engine's (same code, same columns); only chunk batching differs, which moves
probabilities by float rounding at most. A worker killed mid-run loses no track: Ray re-runs its task
(prepare tasks up to `max_retries` times; a model actor is restarted and its batch re-sent). A killed
driver loses nothing written: rerunning the scan resumes like the local engine.

Parquet results from this engine are a folder dataset, `out.parquet/part-NNNNNN.parquet` (PartWriter,
below): rows are journaled one by one beside it (`out.parquet.partial.jsonl`, as for single-file Parquet)
and rolled into a new part every `part_rows` rows, so a million-track scan never rewrites what it wrote.

Nothing at import time needs ray; `import ray` happens inside functions.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INSTALL_HINT = "the Ray engine needs ray: pip install 'mer-tag[ray]' (or: pip install 'ray[data]')"


@dataclass
class RayOptions:
    """How the scan uses the cluster. Every field has a default that suits the cluster it finds."""

    address: str | None = None  # HOST:PORT of a running cluster; None: RAY_ADDRESS, else a local one
    num_cpus: int | None = None  # CPUs of a local cluster started here (scan: --jobs; None: all cores)
    decode_cpus: float = 1.0  # CPUs reserved by each prepare (decode + features) task
    model_actors: int | None = None  # model actors (None: one per GPU; CPU-only: 1 up to CPUs // 8)
    model_cpus: float | None = None  # CPUs reserved per model actor (None: 1 with a GPU or >= 8 CPUs, else 0)
    model_gpus: float | None = None  # GPUs per model actor (None: 1 where the cluster has GPUs)
    tracks_per_block: int | None = None  # tracks per prepare task (None: ~4 tasks per CPU, 1..32)
    batch_tracks: int = 8  # tracks per model call (their chunks share forward passes)
    max_retries: int = 4  # re-runs of a prepare task whose worker died
    precision: str = "auto"  # of the frozen encoders on each model actor's CPU (predict.resolve_precision)


def available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ the pipeline


def predict_tracks(tracks, bundle, model, timeline: bool = False, options: RayOptions | None = None):
    """Yield one row per track (dicts with predict.columns keys), in the order they finish."""
    tracks = list(tracks)
    if not tracks:
        return
    options = options or RayOptions()
    try:
        import ray
        import ray.data
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    started_here = _connect(ray, options)
    try:
        yield from _run(ray, tracks, bundle, model, timeline, options)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray, options: RayOptions) -> bool:
    """Join the cluster (or start a local one). True when this call started Ray and must shut it down."""
    if ray.is_initialized():
        return False
    kwargs = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **kwargs)
    else:  # a throwaway local cluster for this scan
        ray.init(num_cpus=options.num_cpus, include_dashboard=False, **kwargs)
    return True


def _quiet_data_context(ray) -> None:
    ctx = ray.data.DataContext.get_current()
    for name, value in (("enable_progress_bars", False), ("print_on_execution_start", False),
                        ("enable_operator_progress_bars", False)):
        if hasattr(ctx, name):
            setattr(ctx, name, value)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # "progress bars disabled" and the like


def plan(cluster: dict, n_tracks: int, options: RayOptions) -> dict:
    """Resources and sizes for a cluster's resources (ray.cluster_resources()); pure, for tests/docs."""
    cpus = float(cluster.get("CPU", 1))
    gpus = float(cluster.get("GPU", 0))
    model_gpus = options.model_gpus if options.model_gpus is not None else (1.0 if gpus >= 1 else 0.0)
    if options.model_actors is not None:
        actors = (options.model_actors, options.model_actors)
    elif model_gpus > 0:
        n = max(1, int(gpus // model_gpus))
        actors = (n, n)
    else:
        actors = (1, max(1, int(cpus // 8)))
    # A GPU actor keeps one CPU to feed its GPU. On a CPU cluster of a few cores a reserved core would
    # idle a decode slot (or, on one core, leave none), so the actor shares the decode tasks' cores as
    # the local engine's main process does; from 8 CPUs on, each actor reserves a core of its own.
    if options.model_cpus is not None:
        model_cpus = options.model_cpus
    else:
        model_cpus = 1.0 if model_gpus > 0 or cpus >= 8 else 0.0
    # Torch threads per actor: its own cores, or, sharing the decode cores, as many as the local engine's
    # model process uses (one per core): with musicnn as the front-end (default@0.1.0) one thread left a core idle.
    model_threads = max(1, int(model_cpus)) if model_cpus else max(1, int(cpus) // actors[1])
    per_block = options.tracks_per_block or max(1, min(32, -(-n_tracks // max(1, int(4 * cpus)))))
    return {"cpus": cpus, "gpus": gpus, "actors": actors, "model_cpus": model_cpus, "model_gpus": model_gpus,
            "model_threads": model_threads, "tracks_per_block": per_block,
            "blocks": max(1, -(-n_tracks // per_block))}


def _run(ray, tracks, bundle, model, timeline: bool, options: RayOptions):
    _quiet_data_context(ray)
    p = plan(ray.cluster_resources(), len(tracks), options)
    log.info("ray engine: %s", p)
    items = [{"path": str(t.path), "lyrics_path": "" if t.lyrics_path is None else str(t.lyrics_path),
              "midi_path": "" if t.midi_path is None else str(t.midi_path)} for t in tracks]
    try:
        ds = ray.data.from_items(items, override_num_blocks=p["blocks"])
    except TypeError:  # Ray < 2.10
        ds = ray.data.from_items(items, parallelism=p["blocks"])
    prepare_args = dict(fn_kwargs={"audio_config": bundle.audio_config, "midi_config": bundle.midi_config},
                        num_cpus=options.decode_cpus)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")  # Ray >= 2.60: still honoured
        try:
            ds = ds.map(_prepare_row, max_retries=options.max_retries, **prepare_args)
        except TypeError:  # a Ray without per-task remote args: its default, 3 retries of a dead worker's task
            ds = ds.map(_prepare_row, **prepare_args)
    # The model goes to the object store once; this process holds the reference for the whole run, so a
    # restarted actor can fetch it again. Ray Data restarts a killed actor and re-sends its batch
    # (max_restarts=-1, max_task_retries=-1 are its defaults for actor pools).
    files = ray.put(model_files(model))
    ds = ds.map_batches(
        _Predictor, batch_size=options.batch_tracks, batch_format="numpy",
        fn_constructor_kwargs={"files": [files], "audio_config": bundle.audio_config,
                               "timeline": timeline, "threads": p["model_threads"],
                               "precision": options.precision},
        compute=ray.data.ActorPoolStrategy(min_size=p["actors"][0], max_size=p["actors"][1]),
        num_cpus=p["model_cpus"], num_gpus=p["model_gpus"] or None,
    )
    for record in ds.iter_rows():
        yield json.loads(record["row"])
    del files


def model_files(model) -> dict[str, bytes]:
    """The bundle folder's card and weights, shipped to each actor: the workers need no copy of the model
    and load it exactly as the driver did (bundle.load: safetensors and JSON, nothing unpickled)."""
    from mer_tag import bundle as bundle_io

    folder = bundle_io.resolve(model)
    names = [bundle_io.CARD_FILE] + sorted(p.name for p in folder.glob("*.safetensors"))
    return {name: (folder / name).read_bytes() for name in names}


def _prepare_row(row: dict, audio_config, midi_config) -> dict:
    """Ray task body: one track → its Prepared, pickled (numpy arrays and all, as the local engine's
    worker processes send it)."""
    from mer_tag.library import Track
    from mer_tag.predict import init_decode_worker, prepare

    init_decode_worker()  # one BLAS thread, and no torch: decode tasks only featurise
    track = Track(Path(row["path"]), Path(row["lyrics_path"]) if row["lyrics_path"] else None,
                  Path(row["midi_path"]) if row["midi_path"] else None)
    item = prepare(track, audio_config, midi_config)
    return {"path": row["path"], "prepared": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}


class _Predictor:
    """Ray actor body: the model loaded once, then Engine.rows on each batch of prepared tracks."""

    def __init__(self, files: list, audio_config, timeline: bool, threads: int = 1, precision: str = "auto"):
        import tempfile

        from mer_tag.predict import Engine, let_idle_threads_sleep

        let_idle_threads_sleep()  # before torch starts (decode tasks never import it in this worker)
        import ray
        import torch

        from mer_tag import bundle as bundle_io

        torch.set_num_threads(min(threads, os.cpu_count() or 1))  # never more than this node has
        with tempfile.TemporaryDirectory(prefix="mer-tag-model-") as tmp:
            for name, data in ray.get(files[0]).items():  # [ref]: a nested ref is not resolved for us
                Path(tmp, name).write_bytes(data)
            bundle = bundle_io.load(tmp)
        bundle.audio_config = audio_config  # the driver's, with any --chunk-hop applied
        self.engine = Engine(bundle, timeline, precision)
        if torch.cuda.is_available():
            _to_device(self.engine, torch.device("cuda"))

    def __call__(self, batch: dict) -> dict:
        items = [pickle.loads(blob) for blob in batch["prepared"]]
        rows = self.engine.rows(items)
        return {"path": np.array([r["path"] for r in rows], dtype=object),
                "row": np.array([json.dumps(r, ensure_ascii=False) for r in rows], dtype=object)}


# ------------------------------------------------------------------ GPU actors


def _to_device(engine, device) -> None:
    """Run the engine's models on `device`: inputs go there, outputs come back to the CPU, so
    predict.Engine (which builds CPU tensors) runs unchanged."""
    engine.bundle.models = {name: _OnDevice(module, device) for name, module in engine.bundle.models.items()}
    if engine.frontend is not None:
        engine.frontend = _OnDevice(engine.frontend, device)


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

    def __getattr__(self, name):
        return getattr(self.module, name)


# ------------------------------------------------------------------ the folder sink


INT_COLUMNS = {"size", "cluster", "audio_cluster", "lyrics_cluster", "midi_cluster"}
FLOAT_COLUMNS = {"mtime", "duration_s", "confidence"}


def schema(columns: list[str]) -> dict:
    """Fixed column types, so every part file of a dataset has the same schema (a part whose rows are
    all errors must not make `cluster` a null column)."""
    import polars as pl

    return {c: pl.Int64 if c in INT_COLUMNS else pl.Float64 if c in FLOAT_COLUMNS or c.startswith("prob_")
            else pl.String for c in columns}


class PartWriter:
    """Results as a Parquet folder dataset: `out.parquet/part-NNNNNN.parquet`.

    Rows are appended to the journal beside the folder (`out.parquet.partial.jsonl`, flushed per row,
    read by sinks.read_results like a single file's journal) and every `part_rows` rows, or
    `part_seconds`, become a new part file (temp file, then rename); a scan never rewrites the parts
    it did not touch. On opening, rows that are about to be redone (`redo`) and rows a killed run left in
    the journal are taken out of the parts that hold them, and the journal becomes a part: the folder
    never holds two rows for one path, and it always holds at least one part (an empty one at first),
    so it reads as a dataset at every moment. A single-file Parquet result from the local engine
    becomes the folder's first part.
    """

    def __init__(self, path: str | Path, columns: list[str], redo: set[str] | None = None,
                 part_rows: int = 1000, part_seconds: float = 60.0):
        from mer_tag.sinks import journal_path

        self.path = str(path)
        self.folder = Path(path)
        self.columns = columns
        self.schema = schema(columns)
        self.part_rows, self.part_seconds = part_rows, part_seconds
        self.journal = journal_path(self.folder)
        self.buffer: list[dict] = []
        self.stream = None
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._adopt_single_file()
        if not self.folder.is_dir():
            self._create_folder()
        self.seq = max([self._seq(p) for p in self._parts()] + [0])
        left = self._read_journal()
        drop = set(redo or ()) | {r["path"] for r in left}
        if drop:
            self._drop(drop)
        left = [r for r in left if r["path"] not in set(redo or ())]
        if left:
            self._write_part(left)
        self.journal.unlink(missing_ok=True)
        self.stream = self.journal.open("a", encoding="utf-8")
        self.last_part = time.monotonic()

    # -- writing

    def write(self, row: dict) -> None:
        row = {c: row.get(c) for c in self.columns}
        self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.stream.flush()
        self.buffer.append(row)
        if len(self.buffer) >= self.part_rows or time.monotonic() - self.last_part >= self.part_seconds:
            self.roll()

    def roll(self) -> None:
        """Journal → a new part file, then an empty journal (a kill in between: the next open dedups)."""
        if self.buffer:
            self._write_part(self.buffer)
            self.buffer = []
            self.stream.close()
            self.stream = self.journal.open("w", encoding="utf-8")
        self.last_part = time.monotonic()

    def close(self) -> None:
        if self.stream is None:
            return
        self.roll()
        self.stream.close()
        self.stream = None
        self.journal.unlink(missing_ok=True)

    # -- the folder

    def _parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    @staticmethod
    def _seq(part: Path) -> int:
        try:
            return int(part.stem.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def _frame(self, rows):
        import polars as pl

        if isinstance(rows, pl.DataFrame):
            for c in self.columns:
                if c not in rows.columns:
                    rows = rows.with_columns(pl.lit(None).alias(c))
            return rows.select([pl.col(c).cast(t, strict=False) for c, t in self.schema.items()])
        return pl.DataFrame([{c: r.get(c) for c in self.columns} for r in rows], schema=self.schema)

    def _save(self, frame, target: Path) -> None:
        tmp = target.parent.parent / f".{target.parent.name}.{target.name}.tmp"  # beside the folder: not read as a part
        frame.write_parquet(tmp)
        os.replace(tmp, target)

    def _write_part(self, rows) -> None:
        self.seq += 1
        self._save(self._frame(rows), self.folder / f"part-{self.seq:06d}.parquet")

    def _create_folder(self) -> None:
        import shutil

        tmp = self.folder.with_name(f".{self.folder.name}.new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self._frame([]).write_parquet(tmp / "part-000000.parquet")  # an empty dataset still reads
        os.replace(tmp, self.folder)

    def _adopt_single_file(self) -> None:
        import polars as pl

        if not self.folder.is_file():
            return
        rows = pl.read_parquet(self.folder)
        old = self.folder.with_name(f".{self.folder.name}.single")
        os.replace(self.folder, old)
        self._create_folder()
        self.seq = 0
        if rows.height:
            self._write_part(rows)
        old.unlink()

    def _read_journal(self) -> list[dict]:
        from mer_tag.sinks import _complete_lines

        if not self.journal.exists():
            return []
        rows = []
        for line in _complete_lines(self.journal.read_bytes()).splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # torn by a kill: that track is redone
        latest = {r["path"]: r for r in rows if isinstance(r, dict) and r.get("path")}
        return list(latest.values())

    def _drop(self, paths: set[str]) -> None:
        """Take rows for `paths` out of every part holding one (only those parts are rewritten)."""
        import polars as pl

        for part in self._parts():
            held = pl.read_parquet(part, columns=["path"])["path"]
            if not held.is_in(list(paths)).any():
                continue
            rest = pl.read_parquet(part).filter(~pl.col("path").is_in(list(paths)))
            self._save(self._frame(rest), part)  # an emptied part stays, empty: cheap and still readable
