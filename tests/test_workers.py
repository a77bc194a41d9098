"""Decode workers that die: a scan replaces them and goes on; workers never outlive the process that started
them. Real processes, really killed (SIGKILL), as the OOM killer or a crashing decoder would."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media import tone, write_audio
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.workers import CRASH_ON_ENV, RETRY_NAME, WORKER_NAME, crash_reason, start_pool

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads process trees from /proc")
ROOT = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, theirs, ...), from /proc."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += children - found
            found |= children
    return {p for p in found if alive(p)}


def named(pids: set[int], name: str) -> set[int]:
    """Those of `pids` whose process name (/proc/PID/comm) is `name`."""
    found = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                found.add(pid)
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture()
def long_library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    for i in range(40):
        write_audio(lib / f"t{i:02d}.wav", tone(30, 200 + 10 * i))
    return lib


def scan_process(lib: Path, out: Path, model: Path, *extra: str, env=None, new_session=False) -> subprocess.Popen:
    code = (
        "import sys; from mer_tag.cli import main; "
        f"sys.exit(main(['scan', {str(lib)!r}, '--model', {str(model)!r}, '-o', {str(out)!r}, '-j', '2', *{extra!r}]))"
    )
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        start_new_session=new_session,  # its own process group, as a terminal gives a command
    )


def test_a_file_that_kills_its_decoder_every_time_is_one_error_row_and_the_scan_goes_on(tmp_path, tiny_model):
    lib = tmp_path / "lib"
    for i in range(6):
        write_audio(lib / f"ok{i}.wav", tone(4, 300 + 20 * i))
    write_audio(lib / "crash.wav", tone(4))
    out = tmp_path / "moods.csv"
    proc = scan_process(lib, out, tiny_model, "-q", env={CRASH_ON_ENV: "crash.wav"})
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # a failed track, as for any other failure
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    rows = {Path(r["path"]).name: r for r in read_results(out).iter_rows(named=True)}
    assert sorted(rows) == sorted([f"ok{i}.wav" for i in range(6)] + ["crash.wav"])
    assert rows["crash.wav"]["status"] == "error"
    assert rows["crash.wav"]["error"] == crash_reason(-signal.SIGKILL)
    assert all(rows[f"ok{i}.wav"]["status"] == "ok" for i in range(6))


def test_decode_workers_killed_during_a_scan_are_replaced_and_every_track_gets_its_row(
    long_library, tiny_model, tmp_path
):
    out = tmp_path / "moods.csv"
    proc = scan_process(long_library, out, tiny_model, "-q")
    killed: set[int] = set()
    for _ in range(2):  # two decode workers, one after the other, each while it decodes
        assert wait_until(lambda: out.exists() and named(descendants(proc.pid), WORKER_NAME) - killed, 120)
        victim = min(named(descendants(proc.pid), WORKER_NAME) - killed)
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)
        time.sleep(0.5)
    _, stderr = proc.communicate(timeout=600)
    rows = read_results(out)
    assert (rows["status"] == "ok").all(), rows.filter(rows["status"] != "ok")["error"].to_list()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert rows.height == 40 and rows["path"].n_unique() == 40
    assert len(killed) == 2


def test_no_worker_outlives_a_scan_killed_with_sigkill(long_library, tiny_model, tmp_path):
    proc = scan_process(long_library, tmp_path / "moods.csv", tiny_model, "-q")
    assert wait_until(lambda: len(descendants(proc.pid)) >= 3, 120)  # two workers and the resource tracker
    time.sleep(1.0)  # decoding
    workers = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: not any(alive(p) for p in workers), 5), [p for p in workers if alive(p)]


def test_the_pools_of_train_and_eval_end_with_their_process(tmp_path):
    """train, eval and crossval prepare through workers.start_pool (eval through the local engine's pool)."""
    code = (
        "import sys, time; from mer_tag.workers import start_pool\n"
        "pool = start_pool(2); [f.result() for f in [pool.submit(int) for _ in range(4)]]\n"
        "print('ready', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    workers = descendants(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: not any(alive(p) for p in workers), 5), [p for p in workers if alive(p)]


def test_a_library_scan_with_a_crashing_file_reports_it_in_the_summary(tmp_path, tiny_model, monkeypatch):
    lib = tmp_path / "lib"
    write_audio(lib / "a.wav", tone(3))
    write_audio(lib / "crash.wav", tone(3, 500))
    monkeypatch.setenv(CRASH_ON_ENV, "crash.wav")  # the spawned workers inherit it
    summary = scan([lib], out=tmp_path / "m.csv", model=tiny_model, jobs=1, progress=False)
    assert (summary.ok, summary.failed) == (1, 1)
    assert summary.failures[0][1].startswith("the decoder crashed twice on this file")
    again = scan([lib], out=tmp_path / "m.csv", model=tiny_model, jobs=1, progress=False)
    assert (again.skipped, again.ok, again.failed) == (2, 0, 0)  # unchanged: not crashed twice more each run


def test_ctrl_c_stops_a_scan_without_a_traceback_from_any_worker(tiny_model, tmp_path):
    """Ctrl-C goes to the whole process group: the workers leave it to the scan, which stops them. One track
    for two workers, so one waits idle (where a KeyboardInterrupt used to print a traceback of its own)."""
    write_audio(tmp_path / "lib" / "a.wav", tone(20))
    proc = scan_process(tmp_path / "lib", tmp_path / "moods.csv", tiny_model, new_session=True)
    assert wait_until(lambda: len(named(descendants(proc.pid), WORKER_NAME)) == 2, 120)
    workers = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert wait_until(lambda: not any(alive(p) for p in workers), 5)


def test_decode_workers_carry_a_name_ps_shows():
    pool = start_pool(2)
    try:
        [f.result() for f in [pool.submit(int) for _ in range(4)]]
        # One worker may have run all four while the other still imports its stack (a loaded machine): wait.
        assert wait_until(lambda: len(named(descendants(os.getpid()), WORKER_NAME)) == 2, 20)
    finally:
        pool.shutdown()
    code = f"import time; from mer_tag.workers import name_process; name_process({RETRY_NAME!r}); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert wait_until(lambda: named({proc.pid}, RETRY_NAME), 20)
    finally:
        proc.kill()
        proc.wait()


def test_crash_reasons_name_the_signal_or_the_exit_status():
    assert crash_reason(-signal.SIGSEGV).endswith("killed by SIGSEGV")
    assert "SIGKILL (out of memory" in crash_reason(-signal.SIGKILL)
    assert crash_reason(3).endswith("ended with exit status 3")


def test_workers_do_not_run_the_main_script_of_the_process_that_spawns_them(tmp_path):
    """Spawn would run the parent's main script again in each worker (for `mer-tag`, its entry point: the whole
    command line imported again); the pool's and a lone retry's processes skip it."""
    write_audio(tmp_path / "a.wav", tone(2))
    script = tmp_path / "main.py"
    script.write_text(
        "import os\n"
        "with open(os.environ['MARKS'], 'a') as marks:  # the top level: whatever process runs this script\n"
        "    marks.write(f'{os.getpid()}\\n')\n"
        "if __name__ == '__main__':\n"
        "    from pathlib import Path\n"
        "    from mer_tag.features import AudioConfig, MidiConfig\n"
        "    from mer_tag.library import Track\n"
        "    from mer_tag.workers import prepare_alone, start_pool\n"
        "    pool = start_pool(2)\n"
        "    pids = {f.result() for f in [pool.submit(os.getpid) for _ in range(6)]}\n"
        "    pool.shutdown()\n"
        "    item = prepare_alone(Track(Path(os.environ['TRACK'])), AudioConfig(), MidiConfig())\n"
        "    print(len(pids) >= 1, item.error)\n"
    )
    marks = tmp_path / "marks.txt"
    env = {**os.environ, "MARKS": str(marks), "TRACK": str(tmp_path / "a.wav")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "None"]  # the workers ran tasks, the lone process prepared the track
    assert len(marks.read_text().split()) == 1  # only the parent ran the script


def test_sigterm_ends_a_scan_as_ctrl_c_does_with_its_parquet_rows_folded_in(long_library, tiny_model, tmp_path):
    """`kill PID` (a service manager's stop): the scan closes its results as after Ctrl-C, not where it stood."""
    from mer_tag.sinks import journal_path

    out = tmp_path / "moods.parquet"
    code = (
        "import sys; from mer_tag.cli import run; "
        f"sys.argv = ['mer-tag', 'scan', {str(long_library)!r}, '--model', {str(tiny_model)!r}, '-o', {str(out)!r}, "
        "'-j', '2']; run()"
    )
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, env=environment)
    assert wait_until(lambda: journal_path(out).exists() and journal_path(out).stat().st_size > 0, 120)
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: what was finished is kept" in stderr, stderr
    assert "Traceback" not in stderr and not journal_path(out).exists()  # folded into the Parquet file
    assert 0 < read_results(out).height < 40


def test_a_worker_killed_while_it_sends_its_result_does_not_hang_the_pool(tiny_model, tmp_path):
    """CPython's executor waits for the rest of a half-sent result for ever; the pool must notice the dead
    worker, break, and go on: the other tracks get their rows, the torn one an error."""
    lib = tmp_path / "lib"
    for i in range(3):
        write_audio(lib / f"ok{i}.wav", tone(3, 300 + 40 * i))
    write_audio(lib / "torn.wav", tone(3, 500))
    code = (
        "import torn; import mer_tag.prepare as p; p.prepare = torn.prepare_tearing\n"
        "from mer_tag.bundle import read_card; from mer_tag.library import walk\n"
        "from mer_tag.workers import DecodePool\n"
        f"card = read_card({str(tiny_model)!r}); tracks = list(walk([{str(lib)!r}]))\n"
        "pool = DecodePool(2); done = {}\n"
        "for batch in pool.prepared(tracks, card.audio_config, card.midi_config, 4):\n"
        "    done.update((i.track.path.name, i.error) for i in batch)\n"
        "pool.close(); print(sorted(done.items()))\n"
    )
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert run.returncode == 0, run.stderr
    done = dict(ast.literal_eval(run.stdout.strip()))
    assert sorted(done) == ["ok0.wav", "ok1.wav", "ok2.wav", "torn.wav"]
    assert all(done[f"ok{i}.wav"] is None for i in range(3)) and "killed by SIGKILL" in done["torn.wav"]
