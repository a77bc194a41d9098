"""The local engine's settings for speed (docs/performance.md): encoder precision, decode pool, threads, malloc."""

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from media import tone, write_audio, write_lyrics
from mer_tag._process import KEEP_FREED_BYTES, reuse_freed_memory
from mer_tag.cli import main
from mer_tag.engines.local import model_threads
from mer_tag.engines.predictor import resolve_precision
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.workers import start_pool as start_decode_pool


@pytest.fixture()
def sung(tmp_path) -> Path:
    lib = tmp_path / "Music"
    write_audio(lib / "a.flac", tone(8, 220))
    write_lyrics(lib / "a.txt", "I walk alone down the empty street\nthe rain keeps falling on my feet\n" * 6)
    write_audio(lib / "b.mp3", tone(5, 330))
    write_lyrics(lib / "b.txt", "dance all night, we shine so bright, everybody sing along\n" * 4)
    return lib


def test_precision_names():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16")


def test_bf16_encoders_give_the_fp32_moods(sung, tmp_path):
    """The shipped model with MiniLM and the student in bf16 (forced, so this runs on any CPU) against fp32."""
    rows = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.csv"
        scan([sung], out=out, jobs=0, progress=False, precision=precision)
        rows[precision] = {Path(r["path"]).name: r for r in read_results(out).iter_rows(named=True)}
    assert rows["fp32"].keys() == rows["bf16"].keys() == {"a.flac", "b.mp3"}
    for name, fp32 in rows["fp32"].items():
        bf16 = rows["bf16"][name]
        assert fp32["status"] == bf16["status"] == "ok" and fp32["lyrics_cluster"] is not None
        assert (fp32["cluster"], fp32["audio_cluster"], fp32["lyrics_cluster"]) == (
            bf16["cluster"],
            bf16["audio_cluster"],
            bf16["lyrics_cluster"],
        )
        for k in range(1, 6):
            assert bf16[f"prob_cluster_{k}"] == pytest.approx(fp32[f"prob_cluster_{k}"], abs=0.02)


def test_cli_refuses_an_unknown_precision(sung, tmp_path, capsys):
    assert main(["scan", str(sung), "-o", str(tmp_path / "m.csv"), "--precision", "fp16"]) == 2
    assert "unknown precision" in capsys.readouterr().err


def test_decode_pool_starts_its_workers_before_any_track():
    before = len(multiprocessing.active_children())
    pool = start_decode_pool(2)
    try:
        deadline = time.time() + 60
        while len(multiprocessing.active_children()) < before + 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(multiprocessing.active_children()) == before + 2
    finally:
        pool.shutdown()


def test_a_scan_with_nothing_to_do_leaves_no_workers_behind(sung, tiny_model, tmp_path):
    out = tmp_path / "m.csv"
    scan([sung], out=out, model=tiny_model, jobs=2, progress=False)
    summary = scan([sung], out=out, model=tiny_model, jobs=2, progress=False)  # everything already done
    assert summary.skipped == 2 and summary.ok == 0
    assert multiprocessing.active_children() == []


def test_model_threads_leave_the_cores_to_the_decode_workers():
    assert model_threads(0) == model_threads(1) == model_threads(2) == 1
    assert model_threads(8) == 4


@pytest.mark.parametrize("preset", [None, "268435456"])
def test_freed_memory_is_kept_unless_the_user_chose(monkeypatch, preset):
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        if preset is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, preset)
    reuse_freed_memory()
    if os.uname().sysname == "Linux":
        expected = preset or str(KEEP_FREED_BYTES)
        assert os.environ["MALLOC_MMAP_THRESHOLD_"] == os.environ["MALLOC_TRIM_THRESHOLD_"] == expected


def test_a_scan_without_lyrics_never_builds_the_lyrics_encoder(tiny_model, tmp_path, monkeypatch):
    """MiniLM and its tokenizer load when the first track with lyrics arrives, so a library without lyrics
    never pays for them (docs/performance.md, issue #18)."""
    from mer_tag.models import lyrics

    built = []
    monkeypatch.setattr(lyrics, "load_encoder", lambda: built.append("encoder"))
    monkeypatch.setattr(lyrics, "load_tokenizer", lambda: built.append("tokenizer"))
    lib = tmp_path / "Music"
    write_audio(lib / "a.flac", tone(8, 220))
    write_audio(lib / "b.mp3", tone(5, 330))
    out = tmp_path / "m.csv"
    summary = scan([lib], out=out, model=tiny_model, jobs=0, progress=False)
    assert summary.ok == 2 and built == []
    assert read_results(out)["lyrics_source"].to_list() == ["none", "none"]


def test_the_lyrics_encoder_loaded_on_first_use_gives_the_eager_rows(sung, tmp_path):
    """A batch without lyrics, then one with: the encoder loads mid-scan and the rows are the ones of a
    predictor that loaded it up front, to the bit."""
    from mer_tag import bundle as bundle_io
    from mer_tag.engines.predictor import Predictor
    from mer_tag.library import Track
    from mer_tag.prepare import prepare

    write_audio(sung / "c.flac", tone(6, 440))  # no lyrics
    model = bundle_io.load("default")
    tracks = [
        Track(sung / "c.flac"),
        Track(sung / "a.flac", lyrics_path=sung / "a.txt"),
        Track(sung / "b.mp3", lyrics_path=sung / "b.txt"),
    ]
    items = [prepare(track, model.audio_config, model.midi_config) for track in tracks]
    assert [it.lyrics is not None for it in items] == [False, True, True]

    lazy = Predictor(model, precision="fp32")
    assert lazy.tokenizer is None and model.models["lyrics"].encoder is None
    lazy_rows = lazy.rows(items[:1])
    assert lazy.tokenizer is None and model.models["lyrics"].encoder is None  # still not needed
    lazy_rows += lazy.rows(items[1:])
    eager = Predictor(bundle_io.load("default"), precision="fp32")
    eager._lyrics_encoder()
    eager_rows = eager.rows(items[:1]) + eager.rows(items[1:])
    assert [r["lyrics_cluster"] is not None for r in lazy_rows] == [False, True, True]
    assert lazy_rows == eager_rows


def test_each_call_of_rows_starts_on_the_model_threads_beside_the_workers(sung, tiny_model, monkeypatch):
    """The last batch of a call runs on every core (the workers are done); the next call (beets' next import
    task) starts again on the threads that leave the workers theirs."""
    import torch

    from mer_tag import engines
    from mer_tag.engines.local import model_threads
    from mer_tag.library import walk

    set_threads, asked = torch.set_num_threads, []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (asked.append(n), set_threads(n)))
    engine = engines.create("local", engines.EngineSettings(tiny_model, jobs=2))
    tracks = list(walk([sung]))
    try:
        engine.start()
        list(engine.rows(tracks[:1]))
        assert asked[-1] == 2  # the first call's last batch: on both cores
        asked.clear()
        list(engine.rows(tracks[1:]))
        assert asked[0] == model_threads(2) == 1  # the second call starts beside the workers again
    finally:
        engine.close()


def test_start_hands_the_tracks_to_the_workers_before_the_model_loads(sung, tiny_model, monkeypatch):
    """Given the tracks, `start` submits them before importing torch's model, so the workers decode while it
    loads (docs/performance.md, #27): the bundle loads with tracks already out, and `rows` gives each once."""
    from mer_tag import bundle as bundle_io
    from mer_tag import engines
    from mer_tag.library import walk

    engine = engines.create("local", engines.EngineSettings(tiny_model, jobs=2))
    out_when_loading, load = [], bundle_io.load

    def loading(model):
        out_when_loading.append(engine.pool.in_flight)
        return load(model)

    monkeypatch.setattr(bundle_io, "load", loading)
    tracks = list(walk([sung]))
    try:
        engine.start(tracks=tracks)
        assert out_when_loading == [2]
        rows = list(engine.rows(tracks))
    finally:
        engine.close()
    assert sorted(Path(r["path"]).name for r in rows) == ["a.flac", "b.mp3"]
    assert {r["status"] for r in rows} == {"ok"}


def test_rows_of_other_tracks_than_start_was_given_drop_those(sung, tiny_model, tmp_path):
    from mer_tag import engines
    from mer_tag.library import walk

    other = tmp_path / "Other"
    write_audio(other / "c.flac", tone(6, 440))
    engine = engines.create("local", engines.EngineSettings(tiny_model, jobs=2))
    try:
        engine.start(tracks=list(walk([sung])))
        rows = list(engine.rows(list(walk([other]))))
    finally:
        engine.close()
    assert [Path(r["path"]).name for r in rows] == ["c.flac"]
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    "command", [["scan", "."], ["train", "--data", "."], ["eval", "--data", "."], ["crossval", "--data", "."]]
)
def test_a_typo_in_jobs_starts_no_process_but_says_so(command, capsys):
    """`-j 10000` (a slip of the finger) is a one-line error before anything starts, in every command."""
    assert main([*command, "-j", "10000"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "less than or equal to 256" in err
    assert multiprocessing.active_children() == []


def test_engine_settings_refuse_a_number_of_workers_no_machine_has():
    from mer_tag.engines import EngineSettings

    assert EngineSettings(jobs=0).jobs == 0 and EngineSettings(jobs=256).jobs == 256
    for jobs in (-1, 257, 10000):
        with pytest.raises(ValueError, match=f"jobs {jobs}: use 0 to 256 decode processes"):
            EngineSettings(jobs=jobs)


def test_a_ray_address_no_cluster_can_be_at_or_answers_at_is_one_line_at_once():
    """Before ray.init, which retries for minutes printing its own lines, or ends in a traceback."""
    import socket

    from mer_tag.engines.ray_cluster import RayClusterError, check_reachable

    with pytest.raises(RayClusterError, match=r"--address not a host: give HOST:PORT"):
        check_reachable("not a host")
    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RayClusterError, match=rf"no Ray cluster answers at 127.0.0.1:{port} \(connection refused\)"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    check_reachable("auto")  # Ray's own words pass through to ray.init
