"""`mer-tag scan` as a person meets it: bad input refused at once, what it is doing from the first second,
failures that do not cost a model load on every rerun, and lines a log can be grepped in."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import tone, write_audio
from mer_tag.cli import main
from mer_tag.progress import ScanFeedback
from mer_tag.scan import scan
from mer_tag.sinks import read_results

ROOT = Path(__file__).parents[1]


@pytest.fixture()
def library(tmp_path) -> Path:
    """Two good tracks and one broken file with a long name."""
    lib = tmp_path / "Music"
    write_audio(lib / "a.wav", tone(3, 220))
    write_audio(lib / "b.wav", tone(3, 330))
    deep = lib / ("A Very Long Artist Name That Goes On " * 3).strip() / ("An Album Title Just As Long " * 3).strip()
    deep.mkdir(parents=True)
    (deep / ("broken track with a long name " * 3 + ".mp3")).write_bytes(np.random.default_rng(0).bytes(2000))
    return lib


def run_main(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`mer-tag ARGS` in its own process with stderr on a pipe; prints whether torch was ever imported."""
    code = (
        f"import sys; from mer_tag.cli import main; code = main({list(args)!r}); "
        "print('torch imported:', 'torch' in sys.modules); sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def bad_output(kind: str, tmp_path: Path) -> str:
    if kind == "an unrelated csv":
        (tmp_path / "mine.csv").write_text("name,score\nalice,3\n")
        return "mine.csv"
    if kind == "a header of another table":
        (tmp_path / "mine.csv").write_text("name,score\n")
        return "mine.csv"
    if kind == "text that is not json lines":
        (tmp_path / "notes.jsonl").write_text("my notes\nmore notes\n")
        return "notes.jsonl"
    if kind == "a file as a folder":
        (tmp_path / "moods.csv").write_text("mine\n")
        return "moods.csv/out.csv"
    if kind == "a folder as the file":
        (tmp_path / "taken.csv").mkdir()
        return "taken.csv"
    return "/proc/x/out.csv"  # cannot be created


BAD_OUTPUTS = [
    "an unrelated csv",
    "a header of another table",
    "text that is not json lines",
    "a file as a folder",
    "a folder as the file",
    "cannot be created",
]


@pytest.mark.parametrize("kind", BAD_OUTPUTS)
def test_an_output_that_cannot_take_the_rows_is_one_line_before_anything_loads(kind, library, tiny_model, tmp_path):
    out = bad_output(kind, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    run = run_main("scan", str(library), "--model", str(tiny_model), "-o", out, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr, run.stderr
    assert out in lines[0]
    assert "torch imported: False" in run.stdout  # refused before the model (or any worker) started
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing touched


def test_negative_jobs_is_a_usage_error(library, tiny_model, tmp_path):
    run = run_main("scan", str(library), "--model", str(tiny_model), "-o", "m.csv", "--jobs", "-1", cwd=tmp_path)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "--jobs" in run.stderr
    assert not (tmp_path / "m.csv").exists()


def test_unchanged_failures_are_not_retried_unless_asked(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    first = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (first.ok, first.failed, first.still_failing) == (2, 1, 0)
    again = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.failed, again.skipped, again.still_failing, again.failing) == (0, 0, 3, 1, 1)
    retried = scan([library], out=out, model=tiny_model, jobs=0, progress=False, retry_failed=True)
    assert (retried.ok, retried.failed, retried.skipped) == (0, 1, 2)
    forced = scan([library], out=out, model=tiny_model, jobs=0, progress=False, force=True)
    assert (forced.ok, forced.failed, forced.skipped) == (2, 1, 0)
    assert len(read_results(out)) == 3


def test_a_changed_failure_is_tried_again(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    broken = next(library.rglob("*.mp3"))
    write_audio(broken.with_suffix(".wav"), tone(3, 440))
    broken.write_bytes(broken.with_suffix(".wav").read_bytes())  # fixed: now a real (WAV) file
    broken.with_suffix(".wav").unlink()
    again = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.still_failing) == (1, 0) and again.failed in (0, 1)


def test_a_rerun_with_only_unchanged_failures_loads_no_model_and_exits_1(library, tiny_model, tmp_path):
    args = ("scan", str(library), "--model", str(tiny_model), "-o", "moods.csv", "-j", "0")
    first = run_main(*args, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    again = run_main(*args, cwd=tmp_path)
    assert again.returncode == 1, again.stderr  # documented: 1 while any scanned track is failing
    assert "torch imported: False" in again.stdout
    assert "1 still failing" in again.stderr and "--retry-failed" in again.stderr
    assert "3 tracks: 0 to do, 3 already done (1 of them failing" in again.stderr
    ok_only = run_main("scan", str(library / "a.wav"), "--model", str(tiny_model), "-o", "moods.csv", cwd=tmp_path)
    assert ok_only.returncode == 0  # the failing track is not part of this scan


def test_a_failure_line_on_a_pipe_holds_its_whole_path(library, tiny_model, tmp_path):
    run = run_main("scan", str(library), "--model", str(tiny_model), "-o", "moods.csv", "-j", "0", cwd=tmp_path)
    broken = str(next(library.rglob("*.mp3")))
    assert len(broken) > 200
    failed = [line for line in run.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and broken in failed[0] and "corrupt" in failed[0], run.stderr


def test_rows_on_the_same_terminal_never_share_a_line_with_progress(library, tiny_model, tmp_path):
    """`-o -` in a terminal: the JSON rows and what scan says on stderr land on the same screen."""
    import pty
    import select

    master, slave = pty.openpty()
    code = f"from mer_tag.cli import main; main(['scan', {str(library)!r}, '--model', {str(tiny_model)!r}, '-o', '-'])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        try:
            chunk = os.read(master, 65536) if ready else b""
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=60)
    os.close(master)
    text = output.decode("utf-8", "replace")
    rows = [line for line in text.replace("\r\n", "\n").split("\n") if '"path"' in line]
    assert len(rows) == 3
    for line in rows:
        assert line.startswith('{"path"') and line.rstrip().endswith("}"), repr(line)  # nothing drawn over it
        json.loads(line)
    assert "3 tracks: 3 to do" in text and "loading the model" in text


def test_the_rate_ignores_the_first_burst_and_the_clock_is_the_scans(monkeypatch):
    """Rows come in bursts: 16 at once when the model is up, then one a second. The rate is one a second
    (not 16 in a few microseconds), the ETA follows from it, and elapsed time counts from the scan's start."""
    now = [100.0]
    monkeypatch.setattr("mer_tag.progress.time.monotonic", lambda: now[0])
    feedback = ScanFeedback(enabled=False, started=90.0)
    feedback.start_bar(40)
    for _ in range(16):
        feedback.advance()
        now[0] += 0.0001
    assert feedback.rate() is None  # one burst says nothing yet
    for _ in range(4):
        now[0] += 1.0
        feedback.advance()
    assert feedback.rate() == pytest.approx(1.0, rel=0.01)
    assert feedback.done == 20 and now[0] - feedback.started == pytest.approx(14.0, abs=0.01)


def test_on_a_pipe_scan_says_what_it_will_do_in_one_line(library, tiny_model, tmp_path):
    run = run_main("scan", str(library), "--model", str(tiny_model), "-o", "moods.csv", "-j", "0", cwd=tmp_path)
    lines = run.stderr.strip().splitlines()
    assert lines[0] == "3 tracks: 3 to do"
    assert lines[-1].startswith("2 ok, 1 failed, 0 skipped") and "━" not in run.stderr


def test_a_new_folder_for_the_results_is_made_only_by_a_scan_that_runs(library, tiny_model, tmp_path):
    out = tmp_path / "new" / "deeper" / "moods.csv"
    assert main(["scan", str(library), "--model", str(tmp_path / "no-model"), "-o", str(out)]) == 2
    assert not (tmp_path / "new").exists()  # refused: nothing left behind
    assert main(["scan", str(library / "a.wav"), "--model", str(tiny_model), "-o", str(out), "-j", "0", "-q"]) == 0
    assert len(read_results(out)) == 1


def test_an_empty_folder_or_a_file_that_is_not_audio_is_one_error_line_and_exit_2(tmp_path, tiny_model):
    (tmp_path / "empty").mkdir()
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not audio")
    for given, said in (
        ("empty", "no audio files in empty (mer-tag reads "),
        ("cover.jpg", "not an audio file: cover.jpg"),
    ):
        run = run_main("scan", given, "--model", str(tiny_model), "-j", "0", cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        err = run.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: " + said), err
        assert ".flac" in err[0] and ".mp3" in err[0]  # what it would have scanned
        assert "torch imported: False" in run.stdout
        assert not (tmp_path / "moods.csv").exists()


def test_one_empty_folder_among_others_is_a_warning_and_the_rest_is_scanned(library, tiny_model, tmp_path, capsys):
    (tmp_path / "Empty").mkdir()
    out = tmp_path / "moods.csv"
    summary = scan([library, tmp_path / "Empty"], out=out, model=tiny_model, jobs=0, progress=False)
    assert summary.ok == 2 and summary.empty == [str(tmp_path / "Empty")]
    main(["scan", str(library), str(tmp_path / "Empty"), "-o", str(out), "--model", str(tiny_model), "-j", "0"])
    assert f"warning: no audio files in {tmp_path / 'Empty'}" in capsys.readouterr().err


def test_a_link_to_a_folder_also_given_is_not_called_empty(library, tiny_model, tmp_path):
    (tmp_path / "link").symlink_to(library)
    summary = scan([library, tmp_path / "link"], out=tmp_path / "m.csv", model=tiny_model, jobs=0, progress=False)
    assert summary.ok == 2 and summary.empty == []  # its tracks are the folder's, each scanned once


@pytest.mark.parametrize("given", ["somefolder/", "existing_folder"])
def test_a_folder_as_the_output_asks_for_a_results_file_in_it(given, library, tiny_model, tmp_path):
    (tmp_path / "existing_folder").mkdir()
    run = run_main("scan", str(library), "--model", str(tiny_model), "-o", given, cwd=tmp_path)
    assert run.returncode == 2
    folder = given.rstrip("/")
    assert run.stderr.strip() == f"error: {given} is a folder: give a results file, e.g. {folder}/moods.csv"
    assert not (tmp_path / "somefolder").exists() and not any((tmp_path / "existing_folder").iterdir())


def test_a_stage_said_again_is_not_printed_again(monkeypatch):
    """The bar's first words are the engine's first step, which the engine then says itself: once on screen."""
    feedback = ScanFeedback(enabled=True, started=0.0)
    printed: list[str] = []
    feedback.live = False
    monkeypatch.setattr(type(feedback.console), "is_terminal", property(lambda self: True))
    monkeypatch.setattr(feedback.console, "print", lambda text, **_: printed.append(text))
    feedback.start_bar(3, "starting a local Ray cluster (2 CPUs)…")
    feedback.stage("starting a local Ray cluster (2 CPUs)…")
    feedback.stage("loading the model on the cluster…")
    assert printed == ["starting a local Ray cluster (2 CPUs)…", "loading the model on the cluster…"]


def test_each_engine_says_first_what_its_start_does_first(tiny_model):
    from mer_tag import engines
    from mer_tag.engines.ray import RayOptions

    settings = engines.EngineSettings(tiny_model, jobs=2)
    assert engines.create("local", settings).starting == "loading the model…"
    if importlib.util.find_spec("ray") is not None:
        starting = engines.create("ray", settings, ray=RayOptions(address="10.0.0.5:6379")).starting
        assert starting == "connecting to the Ray cluster at 10.0.0.5:6379…"


def test_a_stage_from_before_the_bar_said_again_is_shown(monkeypatch):
    """Only a repeat of what is on screen now is dropped: the bar's own words count as shown."""
    feedback = ScanFeedback(enabled=True, started=0.0)
    if not feedback.live:
        feedback.live = True
    feedback.stage("finding tracks…")
    feedback.start_bar(3, "loading the model…")
    feedback.stage("finding tracks…")
    assert feedback.progress.tasks[0].description == "finding tracks…"
    feedback.stop()
