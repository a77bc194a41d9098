"""`scan --engine ray` (issue #8) on a real two-node Ray cluster on 127.0.0.1, against the local engine.

One module-scoped cluster (a head and a second node, each its own raylet; ray.cluster_utils.Cluster, so
every process is a child of this one and its shutdown stops exactly them). Tests that need ray skip
when it is not installed; the sink and default-path tests run everywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media import tone, write_audio, write_lyrics, write_midi
from mer_tag.engines import EngineSettings
from mer_tag.engines.predictor import PROB_DECIMALS
from mer_tag.engines.ray import RayOptions, plan
from mer_tag.scan import scan
from mer_tag.sinks import PartWriter, columns, read_results
from mer_tag.sinks.columns import column_type
from tiny_model import make_tiny_bundle

# Ray binds its node to the "remotely reachable" address unless told it is a single-machine cluster:
# this keeps the GCS, raylets and workers on 127.0.0.1. Read when ray is imported, so set it first.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# Rows hold probabilities rounded to PROB_DECIMALS: sums taken in another order may differ in the last bit and
# round one step apart, never more.
FLOAT_TOL = 1.01 * 10**-PROB_DECIMALS
COLUMNS = columns(5, False)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Good tracks (lyrics, MIDI, several containers, multi-chunk) and broken ones."""
    lib = tmp_path_factory.mktemp("ray") / "Music"
    write_audio(lib / "rock" / "Song.flac", tone(6, 220))
    write_lyrics(lib / "rock" / "Song.txt", "We ride tonight\nfire in the sky\n")
    write_midi(lib / "rock" / "Song.mid")
    write_audio(lib / "rock" / "Other.mp3", tone(4, 330))
    write_lyrics(lib / "rock" / "Other.lrc", "[00:01.00]la la la\n")
    write_audio(lib / "jazz" / "Café 🎷.ogg", tone(3, 440))
    write_audio(lib / "jazz" / "Tune.m4a", tone(3, 550))
    write_audio(lib / "jazz" / "Tune.wav", tone(12, 660))
    write_midi(lib / "jazz" / "Tune.mid")
    for i in range(7):
        write_audio(lib / "more" / f"t{i}.wav", tone(8, 200 + 40 * i, seed=i))
    (lib / "broken").mkdir()
    (lib / "broken" / "empty.mp3").write_bytes(b"")
    (lib / "broken" / "notes.mp3").write_text("a text file, renamed")
    write_audio(lib / "broken" / "silence.wav", np.zeros(22050 * 3, dtype=np.float32))
    return lib


@pytest.fixture(scope="module")
def local_rows(library, tiny_model, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("local") / "moods.jsonl"
    summary = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (summary.ok, summary.failed) == (12, 3)
    return by_path(read_results(out))


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node on 127.0.0.1, one CPU each; always shut down."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1)
        ray.init(address=nodes.address, log_to_driver=False)
        nodes.wait_for_nodes()
        assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())
        assert len(ray.nodes()) == 2
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


def by_path(frame) -> dict:
    return {r["path"]: r for r in frame.iter_rows(named=True)}


def assert_same_rows(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for path, row in want.items():
        other = got[path]
        for column in COLUMNS:
            if column_type(column) == "float":  # probabilities, valence, arousal: summed in another order
                assert (
                    other[column] == pytest.approx(row[column], abs=FLOAT_TOL, nan_ok=False)
                    if row[column] is not None
                    else other[column] is None
                ), (path, column)
            else:
                assert other[column] == row[column], (path, column)


# ------------------------------------------------------------------ on the cluster


class _Stop(Exception):
    pass


def test_ray_scan_equals_local_and_resumes_from_its_part_files(cluster, library, tiny_model, local_rows, tmp_path):
    out = tmp_path / "moods.parquet"
    seen = []

    def stop_after_four(row):
        seen.append(row["path"])
        if len(seen) == 4:
            raise _Stop  # the driver interrupted mid-scan

    with pytest.raises(_Stop):
        scan([library], out=out, model=tiny_model, progress=False, engine="ray", on_row=stop_after_four)
    assert out.is_dir() and sorted(read_results(out)["path"]) == sorted(seen)

    # The rerun: the CLI, joining the cluster by address, in another process.
    code = "import sys; from mer_tag.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "scan",
            str(library),
            "--model",
            str(tiny_model),
            "-o",
            str(out),
            "--engine",
            "ray",
            "--address",
            cluster.address,
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # 1: some tracks failed (the broken ones)
    done_ok = sum(local_rows[p]["status"] == "ok" for p in seen)
    failed_seen = len(seen) - done_ok  # unchanged failures are skipped too (not retried without --retry-failed)
    assert f"{12 - done_ok} ok, {3 - failed_seen} failed, {len(seen)} skipped" in proc.stderr
    assert (f"{failed_seen} still failing" in proc.stderr) == (failed_seen > 0)

    parts = sorted(p.name for p in out.glob("*"))
    assert parts and all(name.startswith("part-") and name.endswith(".parquet") for name in parts)
    assert not Path(str(out) + ".partial.jsonl").exists()
    frame = read_results(out)
    assert frame.columns == COLUMNS and frame.height == 15
    import polars as pl

    assert pl.read_parquet(out)["path"].n_unique() == pl.read_parquet(out).height == 15  # no duplicates on disk
    assert_same_rows(by_path(frame), local_rows)


def test_the_driver_never_imports_torch_nor_loads_the_weights(cluster, library, tiny_model, tmp_path):
    code = (
        "import sys; from mer_tag.scan import scan; "
        f"s = scan([{str(library / 'rock')!r}], out={str(tmp_path / 'm.parquet')!r}, model={str(tiny_model)!r}, "
        f"progress=False, engine='ray', address={cluster.address!r}); "
        # no network module (the precision names, checked before any work, are not one)
        "nets = [m for m in sys.modules if m.startswith('mer_tag.models.') and m != 'mer_tag.models.precision']; "
        "print(s.ok, s.failed, 'torch' in sys.modules, bool(nets))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-4:] == ["2", "0", "False", "False"]


def test_a_model_that_will_not_load_on_the_actors_is_a_usage_error_and_touches_nothing(
    cluster, library, tiny_model, tmp_path
):
    import shutil

    from mer_tag.bundle import BundleError
    from tiny_model import edit_card

    out = tmp_path / "moods.parquet"
    scan([library / "rock"], out=out, model=tiny_model, progress=False, engine="ray")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = shutil.copytree(tiny_model, tmp_path / "broken")
    edit_card(broken, lambda card: card["models"]["audio"].update(gru_hidden=16))  # weights no longer fit
    with pytest.raises(BundleError, match="do not fit"):
        scan([library / "rock"], out=out, model=broken, progress=False, engine="ray", force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "moods.parquet"]


def test_a_model_that_will_not_load_in_the_driver_fails_its_start_and_leaves_the_engine_closed(
    cluster, tiny_model, tmp_path
):
    import shutil

    from mer_tag.bundle import BundleError
    from mer_tag.engines.ray import RayEngine
    from tiny_model import edit_card

    broken = shutil.copytree(tiny_model, tmp_path / "broken")
    edit_card(broken, lambda card: card["models"]["audio"].update(gru_hidden=16))  # weights no longer fit
    engine = RayEngine(EngineSettings(broken), RayOptions(model_here=True))
    with pytest.raises(BundleError, match="do not fit"):
        engine.start()
    assert engine.ray is None and engine.predictor is None  # closed: a second start would start again
    engine.close()


def _killers(kills: Path, real_prepare, real_actor):
    """A prepare task body and a model actor class that SIGKILL their own worker process once, mid-task:
    the decode worker on Tune.wav, the actor on the call holding Song.flac (a marker file says it happened)."""

    def kill_once(name: str) -> None:
        try:
            (kills / name).touch(exist_ok=False)
        except FileExistsError:
            return  # the retry: let it through
        os.kill(os.getpid(), signal.SIGKILL)

    def prepare(tracks, *args):
        if any(t.path.name == "Tune.wav" for t in tracks):
            kill_once("prepare")
        return real_prepare(tracks, *args)

    class ModelActor(real_actor):
        def rows(self, *blocks):
            if any(item.track.path.name == "Song.flac" for block in blocks for item in block):
                kill_once("actor")
            return super().rows(*blocks)

    return prepare, ModelActor


def test_killed_workers_lose_no_track(cluster, library, tiny_model, local_rows, tmp_path, monkeypatch):
    """SIGKILL a decode worker mid-task and the model actor mid-batch: every track still comes, once."""
    import ray.cloudpickle

    from mer_tag.engines import ray as ray_engine
    from mer_tag.library import walk

    kills = tmp_path / "kills"
    kills.mkdir()
    prepare, actor = _killers(kills, ray_engine._prepare_block, ray_engine._ModelActor)
    monkeypatch.setattr(ray_engine, "_prepare_block", prepare)
    monkeypatch.setattr(ray_engine, "_ModelActor", actor)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this module
    settings = EngineSettings(tiny_model)
    engine = ray_engine.RayEngine(settings, options=RayOptions(batch_tracks=2, tracks_per_block=1))
    try:
        tracks = list(walk([library]))
        engine.start()
        rows = list(engine.rows(tracks))
    finally:
        engine.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert (kills / "prepare").exists() and (kills / "actor").exists()  # both workers were killed
    assert len(rows) == len(tracks) == 15
    assert_same_rows({r["path"]: r for r in rows}, local_rows)


def test_the_model_held_in_the_driver_gives_the_actors_rows_and_loses_no_track(
    cluster, library, tiny_model, local_rows, monkeypatch, tmp_path
):
    """`model_here` (what a scan that starts its own cluster does): the cluster only prepares, this process
    scores the decoded blocks in batches; a decode worker killed mid-task still costs no track."""
    import ray.cloudpickle

    from mer_tag.engines import ray as ray_engine
    from mer_tag.library import walk

    kills = tmp_path / "kills"
    kills.mkdir()
    prepare, _ = _killers(kills, ray_engine._prepare_block, ray_engine._ModelActor)
    monkeypatch.setattr(ray_engine, "_prepare_block", prepare)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    options = RayOptions(batch_tracks=3, tracks_per_block=1, model_here=True)
    engine = ray_engine.RayEngine(EngineSettings(tiny_model), options=options)
    sizes = []
    try:
        tracks = list(walk([library]))
        engine.start()
        assert engine.actors == [] and engine.predictor is not None
        score = engine.predictor.rows

        def slow_first_call(items):  # the other tracks finish decoding meanwhile
            sizes.append(len(items))
            time.sleep(1.0 if len(sizes) == 1 else 0)
            return score(items)

        engine.predictor.rows = slow_first_call
        rows = list(engine.rows(tracks))
    finally:
        engine.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert (kills / "prepare").exists()  # a decode worker was killed
    assert max(sizes) == 3 and sum(sizes) == 15  # the tracks that are ready share a model call, up to batch_tracks
    assert len(rows) == len(tracks) == 15
    assert_same_rows({r["path"]: r for r in rows}, local_rows)


def _crasher(real_prepare, name: str):
    """A prepare task body whose worker dies (SIGKILL) every time its block holds the file `name`."""

    def prepare(tracks, *args):
        if any(t.path.name == name for t in tracks):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_prepare(tracks, *args)

    return prepare


def test_a_one_track_block_whose_worker_always_dies_is_an_error_row_after_its_own_tries(
    cluster, library, tiny_model, local_rows, monkeypatch, tmp_path
):
    """With one track a block (the default), a file that kills its worker is tried `max_retries` + 1 times, not
    those and then again alone; its error row says how many."""
    import ray.cloudpickle

    from mer_tag.engines import ray as ray_engine
    from mer_tag.library import walk

    tries = tmp_path / "tries"
    tries.mkdir()
    real_prepare = ray_engine._prepare_block

    def prepare(tracks, *args):
        if any(t.path.name == "Tune.wav" for t in tracks):
            (tries / str(len(list(tries.iterdir())))).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_prepare(tracks, *args)

    monkeypatch.setattr(ray_engine, "_prepare_block", prepare)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    options = RayOptions(tracks_per_block=1, max_retries=1)
    engine = ray_engine.RayEngine(EngineSettings(tiny_model), options=options)
    try:
        rows = {Path(r["path"]).name: r for r in engine.rows(list(walk([library / "jazz"])))}
    finally:
        engine.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert len(list(tries.iterdir())) == 2
    assert rows["Tune.wav"]["status"] == "error" and "died on each of 2 tries" in rows["Tune.wav"]["error"]
    assert sorted(r["status"] for r in rows.values()) == ["error", "ok", "ok"]  # Café 🎷.ogg and Tune.m4a


def test_a_file_that_kills_its_worker_every_time_is_one_error_row_not_a_failed_block(
    cluster, library, tiny_model, local_rows, monkeypatch
):
    import ray.cloudpickle

    from mer_tag.engines import ray as ray_engine
    from mer_tag.library import walk

    monkeypatch.setattr(ray_engine, "_prepare_block", _crasher(ray_engine._prepare_block, "Tune.wav"))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    options = RayOptions(batch_tracks=2, tracks_per_block=4, max_retries=1)
    engine = ray_engine.RayEngine(EngineSettings(tiny_model), options=options)
    try:
        tracks = list(walk([library]))
        engine.start()
        rows = {r["path"]: r for r in engine.rows(tracks)}
    finally:
        engine.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert len(rows) == len(tracks) == 15
    crashed = next(path for path in rows if Path(path).name == "Tune.wav")
    assert rows[crashed]["status"] == "error"
    assert rows[crashed]["error"].startswith("the decoder crashed on this file: its Ray worker died")
    assert_same_rows(
        {p: r for p, r in rows.items() if p != crashed}, {p: r for p, r in local_rows.items() if p != crashed}
    )


def _run_without_a_cluster(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh Python with no cluster to join (RAY_ADDRESS empty), which starts its own; it must succeed."""
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_scan_that_starts_its_own_cluster_says_so_and_stops_it(library, tiny_model, local_rows, tmp_path):
    """No cluster running: `scan --engine ray` starts a local one (without the autoscaler's monitor, the log
    monitor and the dashboard's API server, which a one-scan cluster never uses), shows each start-up step as
    it begins, holds the model in its own process (loaded while the cluster starts), gives local's rows, and
    leaves no Ray process behind."""
    pytest.importorskip("ray")
    out = tmp_path / "moods.jsonl"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from mer_tag import progress\n"
        "from mer_tag.scan import scan\n"
        "def processes():\n"
        "    found, todo = [], [os.getpid()]\n"
        "    while todo:\n"
        "        for task in Path(f'/proc/{todo.pop()}/task').glob('*'):\n"
        "            try: kids = (task / 'children').read_text().split()\n"
        "            except OSError: continue\n"
        "            todo += kids; found += kids\n"
        "    lines = []\n"
        "    for pid in found:\n"
        "        try: lines.append(Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\\0', b' ').decode())\n"
        "        except OSError: pass\n"
        "    return lines\n"
        "said, seen = [], []\n"
        "def stage(self, text):\n"
        "    said.append(text)\n"
        "    if text.startswith('loading the model'): seen.extend(processes())\n"
        "progress.ScanFeedback.stage = stage\n"
        f"s = scan([{str(library)!r}], out={str(out)!r}, model={str(tiny_model)!r}, jobs=1, engine='ray',"
        " progress=True)\n"
        "import time; time.sleep(1)\n"
        "print(repr(said)); print(s.ok, s.failed)\n"
        "print(any('raylet' in p for p in seen), any(n in p for p in seen for n in ('monitor.py', 'dashboard.py')),"
        " len(processes()),"
        " 'torch' in sys.modules)\n"
    )
    proc = _run_without_a_cluster(code)
    said, counts, processes = proc.stdout.splitlines()[-3:]
    # The screen says the cluster's start from the first, then what is left of the model's loading here.
    assert eval(said)[1:] == ["starting a local Ray cluster (1 CPU)…"] * 2 + ["loading the model…"]
    assert counts.split() == ["12", "3"]
    # a raylet, no monitors nor API server; nothing left once it returned; the model ran in this process
    assert processes.split() == ["True", "False", "0", "True"]
    assert_same_rows(by_path(read_results(out)), local_rows)


# ------------------------------------------------------------------ everywhere (no ray needed)


def test_default_path_never_imports_ray(library, tmp_path):
    model = make_tiny_bundle(tmp_path / "audio-only", lyrics=False, midi=False)  # no encoder to load: fast
    code = (
        "import sys; from mer_tag.cli import main; "
        f"code = main(['scan', {str(library / 'rock')!r}, '--model', {str(model)!r}, "
        f"'-o', {str(tmp_path / 'm.csv')!r}, '-j', '0', '-q']); "
        "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _row(path: str, cluster: int | None = 1) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(path=path, status="ok" if cluster else "error", size=10, mtime=1.5, model="m@1", lyrics_source="none")
    if cluster:
        row.update(cluster=cluster, cluster_name="x", confidence=0.5, **{f"prob_cluster_{k}": 0.2 for k in range(1, 6)})
    return row


def test_part_writer_survives_a_kill_and_never_duplicates(tmp_path):
    import polars as pl

    out = tmp_path / "moods.parquet"
    writer = PartWriter(out, COLUMNS, redo=set(), part_rows=3)
    assert read_results(out).height == 0  # an empty dataset reads from the start
    for i in range(5):
        writer.write(_row(f"/m/{i}.mp3", cluster=None if i == 4 else 1 + i % 5))
    # killed here: rows 0-2 are a part, 3-4 only in the journal (never closed)
    writer.stream.close()
    assert sorted(read_results(out)["path"]) == [f"/m/{i}.mp3" for i in range(5)]

    writer = PartWriter(out, COLUMNS, redo={"/m/1.mp3", "/m/4.mp3"}, part_rows=3)  # resume: two to redo
    assert sorted(read_results(out)["path"]) == ["/m/0.mp3", "/m/2.mp3", "/m/3.mp3"]
    writer.write(_row("/m/1.mp3", cluster=3))
    writer.write(_row("/m/4.mp3", cluster=2))
    writer.close()
    on_disk = pl.read_parquet(out)
    assert on_disk.height == on_disk["path"].n_unique() == 5
    assert on_disk.schema["cluster"] == pl.Int64 and on_disk.schema["prob_cluster_1"] == pl.Float64
    assert by_path(read_results(out))["/m/4.mp3"]["cluster"] == 2
    assert not Path(str(out) + ".partial.jsonl").exists()


def test_part_writer_adopts_a_single_file_result(tmp_path):
    out = tmp_path / "moods.parquet"
    from mer_tag.sinks import RowWriter

    single = RowWriter(out, COLUMNS)
    single.write(_row("/m/a.mp3"))
    single.write(_row("/m/b.mp3", cluster=None))
    single.close()
    assert out.is_file()
    PartWriter(out, COLUMNS, redo={"/m/b.mp3"}).close()
    assert out.is_dir() and sorted(read_results(out)["path"]) == ["/m/a.mp3"]


def test_plan_fits_the_cluster():
    gpu = plan({"CPU": 32, "GPU": 4}, 1_000_000, RayOptions())
    assert gpu["actors"] == (4, 4) and gpu["model_gpus"] == 1 and gpu["model_cpus"] == 1
    assert gpu["tracks_per_block"] == 2 and gpu["decode_slots"] == 28
    small = plan({"CPU": 2}, 30, RayOptions())
    assert small["actors"] == (1, 1) and small["model_gpus"] == 0 and small["blocks"] == 30
    assert small["model_cpus"] == 0  # one or two cores: the actor must not take a decode slot
    assert small["model_threads"] == 2  # … but its torch threads use both cores, as the local engine's
    here = plan({"CPU": 2}, 30, RayOptions(), here=True)  # the model in the driver, as the local engine's
    assert here["actors"] == (0, 0) and here["model_cpus"] == 0 and here["model_threads"] == 1
    cpus = plan({"CPU": 64}, 1_000_000, RayOptions())
    assert cpus["actors"] == (1, 8) and cpus["model_cpus"] == 1 and cpus["model_threads"] == 1
    big = plan({"CPU": 64}, 10, RayOptions(model_actors=3))
    assert big["actors"] == (3, 3) and big["blocks"] == 10


@pytest.mark.parametrize("cpus", [1, 2, 3, 8, 32, 64, 1000])
@pytest.mark.parametrize("tracks", [1, 40, 300, 1_000_000])
@pytest.mark.parametrize("per_block", [None, 1, 64])
def test_the_tracks_in_flight_keep_every_decode_slot_busy(cpus, tracks, per_block):
    """Blocks of 18 to 32 tracks against a budget of 18 in flight ran one prepare task at a time on 2 CPUs (any
    library of 137 tracks or more): now at least two blocks per decode slot are always in flight."""
    p = plan({"CPU": cpus}, tracks, RayOptions(tracks_per_block=per_block))
    assert p["in_flight"] >= 2 * p["decode_slots"] * p["tracks_per_block"]
    assert p["decode_slots"] >= 1 and p["tracks_per_block"] >= 1
    if per_block is None:
        assert p["blocks"] >= min(tracks, cpus)  # every CPU has a block to prepare


def test_a_process_already_on_a_cluster_hears_of_no_cluster_starting(cluster, tiny_model):
    """`scan()` called where ray.init already ran (a notebook, a service): nothing starts, and the screen says so."""
    from mer_tag import engines

    engine = engines.create("ray", EngineSettings(tiny_model, jobs=1), ray=RayOptions())
    said: list[str] = []
    try:
        assert engine.starting == "loading the model on the cluster…"
        engine.start(stage=said.append)
    finally:
        engine.close()
    assert set(said) == {"loading the model on the cluster…"}


def test_the_model_travels_to_an_actor_in_pieces_ray_sends_inside_the_task():
    from mer_tag.engines.ray import INLINE_PIECE_BYTES, inline_pieces, joined_pieces, model_files

    files = model_files("default")
    assert sum(map(len, files.values())) > 10 * INLINE_PIECE_BYTES  # the weights alone would go to the store
    pieces = inline_pieces(files)
    assert all(len(data) <= INLINE_PIECE_BYTES for _, data in pieces)
    assert joined_pieces(pieces) == files
    assert joined_pieces(inline_pieces({"empty": b"", "a": b"xyz"}, size=2)) == {"empty": b"", "a": b"xyz"}


def test_the_shipped_model_reaches_its_actor_without_ray_printing_an_error(library, tmp_path):
    """default@0.4.0's 2.6 MB of files, in one argument, went to the object store, and Ray printed an error
    about the actor's restarts on every `--engine ray` scan's screen; sent in pieces, nothing is printed. (Actors
    asked for on a cluster the engine starts itself: the scan's own choice there is the model in the driver.)"""
    pytest.importorskip("ray")
    code = (
        "from mer_tag.engines import EngineSettings\n"
        "from mer_tag.engines.ray import RayEngine, RayOptions\n"
        "from mer_tag.library import walk\n"
        "engine = RayEngine(EngineSettings('default', jobs=1), RayOptions(model_here=False))\n"
        "try:\n"
        f"    tracks = list(walk([{str(library / 'rock')!r}]))\n"
        "    engine.start()\n"
        "    rows = list(engine.rows(tracks))\n"
        "    print(len(engine.actors), sorted(r['status'] for r in rows))\n"
        "finally:\n"
        "    engine.close()\n"
    )
    proc = _run_without_a_cluster(code)
    assert proc.stdout.split() == ["1", "['ok',", "'ok']"]
    assert "constructor arguments in the object store" not in proc.stderr
