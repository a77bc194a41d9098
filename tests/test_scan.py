"""The main job end to end, on a generated library with a tiny random-weight model."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media import tone, write_audio, write_lyrics, write_midi
from mer_tag.cli import main
from mer_tag.engines.predictor import PROB_DECIMALS
from mer_tag.scan import scan
from mer_tag.sinks import read_results


@pytest.fixture()
def library(tmp_path) -> Path:
    """Good tracks in several containers with their lyrics and MIDI, and a shelf of broken files."""
    lib = tmp_path / "Music"
    write_audio(lib / "rock" / "Song.flac", tone(6, 220))
    write_lyrics(lib / "rock" / "Song.txt", "We ride tonight\nfire in the sky\n", encoding="utf-16")
    write_midi(lib / "rock" / "Song.mid")
    write_audio(lib / "rock" / "Other.mp3", tone(4, 330))
    write_lyrics(lib / "rock" / "Other.lrc", "[ar:Someone]\n[00:01.00]la la la\n")
    write_audio(lib / "jazz" / "Café 🎷.ogg", tone(3, 440))
    write_audio(lib / "jazz" / "Tune.m4a", tone(3, 550))
    write_audio(lib / "jazz" / "Tune.wav", tone(12, 660))  # long: three 5-second chunks (chunk 5 s)
    write_midi(lib / "jazz" / "Tune.mid")
    broken = lib / "broken"
    broken.mkdir()
    (broken / "empty.mp3").write_bytes(b"")
    (broken / "random.mp3").write_bytes(np.random.default_rng(0).bytes(50_000))
    (broken / "notes.mp3").write_text("this is a text file, renamed")
    write_audio(broken / "short.wav", tone(0.4))
    write_audio(broken / "silence.wav", np.zeros(22050 * 3, dtype=np.float32))
    good = write_audio(broken / "cut.flac", tone(5))
    good.write_bytes(good.read_bytes()[:300])  # header only: truncated
    write_audio(broken / "BadSidecar.wav", tone(3))
    (broken / "BadSidecar.txt").write_bytes(b"\x00\x01\x02\xff\xfe\x00" * 200)
    write_audio(broken / "BadMidi.wav", tone(3))
    (broken / "BadMidi.mid").write_bytes(b"MThd garbage")
    (lib / ".hidden.mp3").write_bytes(b"")
    (lib / "rock" / "._Song.flac").write_bytes(b"\x00\x05\x16\x07")
    return lib


def rows_by_name(out: Path) -> dict:
    frame = read_results(out)
    return {Path(r["path"]).name: r for r in frame.iter_rows(named=True)}


def test_every_audio_file_gets_exactly_one_row(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    summary = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    rows = rows_by_name(out)
    assert sorted(rows) == sorted(
        [
            "Song.flac",
            "Other.mp3",
            "Café 🎷.ogg",
            "Tune.m4a",
            "Tune.wav",
            "empty.mp3",
            "random.mp3",
            "notes.mp3",
            "short.wav",
            "silence.wav",
            "cut.flac",
            "BadSidecar.wav",
            "BadMidi.wav",
        ]
    )
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + 13
    assert (summary.ok, summary.failed, summary.skipped) == (7, 6, 0)


def test_broken_files_are_errors_with_a_one_line_reason(library, tiny_model, tmp_path):
    out = tmp_path / "moods.jsonl"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    rows = rows_by_name(out)
    for name in ("empty.mp3", "random.mp3", "notes.mp3", "short.wav", "silence.wav", "cut.flac"):
        assert rows[name]["status"] == "error", name
        assert rows[name]["error"] and "\n" not in rows[name]["error"], name
        assert rows[name]["cluster"] is None
    assert "empty" in rows["empty.mp3"]["error"]
    assert "short" in rows["short.wav"]["error"]
    assert "silent" in rows["silence.wav"]["error"]


def test_ok_rows_carry_a_distribution_and_the_modalities_found(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    rows = rows_by_name(out)
    song = rows["Song.flac"]
    probs = [song[f"prob_cluster_{k}"] for k in range(1, 6)]
    assert sum(probs) == pytest.approx(1.0, abs=5 * 0.5 * 10**-PROB_DECIMALS)  # each rounded by up to half a step
    assert song["confidence"] == max(probs)
    assert song["cluster"] == int(np.argmax(probs)) + 1 and song["cluster_name"]
    assert song["lyrics_source"] == "sidecar" and song["lyrics_path"].endswith("Song.txt")
    assert song["midi_path"].endswith("Song.mid") and song["midi_cluster"] in range(1, 6)
    assert song["duration_s"] == pytest.approx(6.0, abs=0.1)
    assert rows["Other.mp3"]["lyrics_source"] == "sidecar"
    assert rows["Café 🎷.ogg"]["lyrics_source"] == "none" and rows["Café 🎷.ogg"]["lyrics_cluster"] is None
    assert rows["Tune.wav"]["midi_path"].endswith("Tune.mid")
    assert rows["Tune.m4a"]["midi_path"].endswith("Tune.mid")  # one stem, two containers: both get the MIDI


def test_bad_sidecars_are_noted_and_the_track_still_scored(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    rows = rows_by_name(out)
    assert rows["BadSidecar.wav"]["status"] == "ok" and rows["BadSidecar.wav"]["lyrics_source"] == "none"
    assert "BadSidecar.txt" in rows["BadSidecar.wav"]["notes"]
    assert rows["BadMidi.wav"]["status"] == "ok" and rows["BadMidi.wav"]["midi_path"] is None
    assert "BadMidi.mid" in rows["BadMidi.wav"]["notes"]


def test_rerun_skips_what_is_done_and_redoes_what_changed(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    first = rows_by_name(out)
    again = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert again.skipped == 13 and again.ok == 0 and again.failed == 0  # unchanged failures are not retried
    assert again.still_failing == 6
    changed = library / "jazz" / "Tune.m4a"
    os.utime(changed, (time.time() + 5, time.time() + 5))
    third = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert third.ok == 1 and third.skipped == 12
    rows = rows_by_name(out)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + 13  # no duplicate rows
    assert rows["Tune.m4a"]["mtime"] != first["Tune.m4a"]["mtime"]
    forced = scan([library], out=out, model=tiny_model, jobs=0, progress=False, force=True)
    assert forced.ok == 7 and forced.skipped == 0
    assert (tmp_path / "moods.csv.bak").exists()  # the earlier results are kept aside, not lost


def test_a_new_model_redoes_what_another_model_scored(library, tiny_model, tmp_path):
    import shutil

    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    newer = shutil.copytree(tiny_model, tmp_path / "tiny-newer")
    card = json.loads((newer / "card.json").read_text())
    card["version"] = "0.0.2"
    (newer / "card.json").write_text(json.dumps(card))
    again = scan([library], out=out, model=newer, jobs=0, progress=False)
    assert again.skipped == 0 and again.ok == 7  # no file mixes two models' answers
    assert set(read_results(out)["model"].to_list()) == {"tiny@0.0.2"}
    assert scan([library], out=out, model=newer, jobs=0, progress=False).skipped == 13  # its failures too


def test_a_model_that_will_not_load_leaves_the_results_as_they_were(library, tiny_model, tmp_path):
    import shutil

    from mer_tag.bundle import BundleError
    from tiny_model import edit_card

    out = tmp_path / "moods.csv"
    scan([library / "rock"], out=out, model=tiny_model, jobs=2, progress=False)
    before = out.read_bytes()
    broken = shutil.copytree(tiny_model, tmp_path / "broken")
    edit_card(
        broken,
        lambda card: (
            card["models"]["audio"].update(gru_hidden=16),  # weights no longer fit
            card.update(version="0.0.2"),
        ),
    )  # another model: every track to redo
    for force in (False, True):
        with pytest.raises(BundleError, match="do not fit"):
            scan([library / "rock"], out=out, model=broken, jobs=2, progress=False, force=force)
        assert out.read_bytes() == before and not (tmp_path / "moods.csv.bak").exists()


def test_force_keeps_a_killed_runs_journal_aside(library, tiny_model, tmp_path):
    from mer_tag.sinks import journal_path

    out = tmp_path / "moods.parquet"
    journal = journal_path(out)
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False)
    rows = read_results(out)
    out.unlink()  # as if the run was killed before its Parquet file was written: only the journal is left
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dicts()), encoding="utf-8")
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, force=True)
    backup = journal.with_name(journal.name + ".bak")
    assert backup.read_text(encoding="utf-8").count("\n") == rows.height  # the journal's rows were not lost
    assert read_results(out).height == rows.height


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_force_after_an_interrupted_force_keeps_the_backup_of_the_results_before(library, tiny_model, tmp_path, fmt):
    import shutil

    out = tmp_path / f"moods.{fmt}"
    backup = out.with_name(out.name + ".bak")

    def backed_up() -> int:
        return read_results(shutil.copy(backup, tmp_path / f"copy.{fmt}")).height

    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    before = read_results(out)

    def interrupted(row):
        raise KeyboardInterrupt  # after the first row, as Ctrl-C or a kill would leave it

    with pytest.raises(KeyboardInterrupt):
        scan([library], out=out, model=tiny_model, jobs=0, progress=False, force=True, on_row=interrupted)
    assert backed_up() == before.height and out.with_name(out.name + ".forcing").exists()
    scan([library], out=out, model=tiny_model, jobs=0, progress=False, force=True)
    assert backed_up() == before.height  # not the interrupted run's one row
    assert read_results(out).height == before.height and not out.with_name(out.name + ".forcing").exists()
    scan([library], out=out, model=tiny_model, jobs=0, progress=False, force=True)  # a whole run: backed up now
    assert backed_up() == before.height


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_probability_is_written_with_the_same_four_decimals_in_every_format(library, tiny_model, tmp_path, fmt):
    out = tmp_path / f"moods.{fmt}"
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True)
    frame = read_results(out)
    probability_columns = [
        c for c in frame.columns if c.startswith(("prob_", "valence", "arousal")) or c.endswith("confidence")
    ]
    assert {"confidence", "runner_up_confidence", "prob_cluster_5"} <= set(probability_columns)
    values = [v for c in probability_columns for v in frame[c].to_list() if v is not None]
    values += [stretch["confidence"] for t in frame["timeline"].to_list() for stretch in json.loads(t)]
    assert len(values) > 20 and all(round(v, PROB_DECIMALS) == v for v in values)


def test_the_valence_arousal_columns_are_rounded_as_the_cluster_ones():
    from mer_tag.engines.predictor import quadrant_columns

    columns = quadrant_columns(np.array([0.123456789, 0.2, 0.3, 0.376543211]))
    numbers = [v for k, v in columns.items() if k.startswith("prob_") or k in ("valence", "arousal")]
    assert len(numbers) == 6 and all(round(v, PROB_DECIMALS) == v for v in numbers)
    assert columns["prob_quadrant_1"] == 0.1235 and columns["valence"] == 0.5


def test_timeline_lists_every_chunk(library, tiny_model, tmp_path):
    out = tmp_path / "moods.parquet"
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True)
    rows = rows_by_name(out)
    timeline = json.loads(rows["Tune.wav"]["timeline"])
    assert [c["start_s"] for c in timeline] == [0.0, 5.0, 10.0]
    assert timeline[-1]["end_s"] == pytest.approx(12.0, abs=0.05)
    assert all(1 <= c["cluster"] <= 5 and 0 < c["confidence"] <= 1 for c in timeline)


def test_timeline_over_rows_already_done_says_they_have_none_and_how_to_get_it(library, tiny_model, tmp_path, capsys):
    out = tmp_path / "moods.parquet"
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False)
    again = scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True)
    assert (again.ok, again.skipped) == (0, 3)
    assert again.unmet == [
        "3 tracks already done have no timeline: --timeline adds one to the tracks a scan does, not to rows "
        "already written; --force redoes every track (the earlier results are kept as moods.parquet.bak)"
    ]
    assert (
        main(["scan", str(library / "jazz"), "-o", str(out), "--model", str(tiny_model), "-j", "0", "--timeline"]) == 0
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "note: 3 tracks already done have no timeline" in err and "--force redoes every track" in err
    forced = scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True, force=True)
    assert forced.ok == 3 and forced.unmet == []
    assert scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True).unmet == []
    hop = scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True, chunk_hop=2.5)
    assert hop.unmet == [  # Tune.wav has three 5-s stretches; the 3-s songs one, which fits any step
        "1 track already done has a timeline in steps other than 2.5 s; --force redoes every track (the earlier "
        "results are kept as moods.parquet.bak)"
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_rerun_without_timeline_keeps_the_timelines_written(library, tiny_model, tmp_path, fmt):
    out = tmp_path / f"moods.{fmt}"
    scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False, timeline=True)
    write_audio(library / "jazz" / "New.flac", tone(4, 770))  # one to do, so the file is rewritten
    again = scan([library / "jazz"], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.skipped) == (1, 3)
    rows = rows_by_name(out)
    assert [c["start_s"] for c in json.loads(rows["Tune.wav"]["timeline"])] == [0.0, 5.0, 10.0]
    assert rows["New.flac"]["timeline"] is None


def test_resumed_csv_keeps_text_that_looks_like_a_number(tmp_path, tiny_model):
    from media import write_tags

    lib = tmp_path / "lib"
    write_tags(write_audio(lib / "a.flac", tone(4, 220)), title="007", artist="0.10", album="1e3")
    write_tags(write_audio(lib / "b.flac", tone(4, 330)), title="01", artist="2.50", album="x")
    out = tmp_path / "moods.csv"
    scan([lib], out=out, model=tiny_model, jobs=0, progress=False)
    write_audio(lib / "c.flac", tone(4, 440))  # one to do: the earlier rows are written again
    scan([lib], out=out, model=tiny_model, jobs=0, progress=False)
    assert "/a.flac,ok,,,{},".format(os.path.getsize(lib / "a.flac")) in out.read_text(encoding="utf-8")
    rows = rows_by_name(out)
    assert (rows["a.flac"]["title"], rows["a.flac"]["artist"], rows["a.flac"]["album"]) == ("007", "0.10", "1e3")
    assert (rows["b.flac"]["title"], rows["b.flac"]["artist"]) == ("01", "2.50")


def test_results_that_cannot_say_which_file_a_row_is_are_redone(tmp_path, tiny_model):
    lib = tmp_path / "lib"
    write_audio(lib / "a.flac", tone(4, 220))
    out = tmp_path / "old.csv"
    out.write_text(f"path,status,cluster\n{lib / 'a.flac'},ok,2\n", encoding="utf-8")  # no size, no mtime
    summary = scan([lib], out=out, model=tiny_model, jobs=0, progress=False)
    assert (summary.ok, summary.skipped) == (1, 0)
    assert len(read_results(out)) == 1


def test_lyrics_dir_over_rows_already_done_says_they_were_scanned_without_it(tmp_path, tiny_model):
    write_audio(tmp_path / "Music" / "Artist" / "Song.flac", tone(3, 220))
    write_lyrics(tmp_path / "Lyrics" / "Artist" / "Song.txt", "We ride tonight\n")
    out = tmp_path / "moods.csv"
    scan([tmp_path / "Music"], out=out, model=tiny_model, jobs=0, progress=False)
    again = scan(
        [tmp_path / "Music"], out=out, model=tiny_model, jobs=0, progress=False, lyrics_dir=tmp_path / "Lyrics"
    )
    assert len(again.unmet) == 1
    assert again.unmet[0].startswith("1 track already done was scanned without the lyrics --lyrics-dir finds; --force")


def test_worker_processes_give_the_same_rows(library, tiny_model, tmp_path):
    inline, pooled = tmp_path / "a.csv", tmp_path / "b.csv"
    scan([library / "rock"], out=inline, model=tiny_model, jobs=0, progress=False)
    scan([library / "rock"], out=pooled, model=tiny_model, jobs=2, progress=False)
    a, b = rows_by_name(inline), rows_by_name(pooled)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name]["cluster"] == b[name]["cluster"]
        # as written: rounded, so two sums that differ in the last bit may land one step apart
        assert a[name]["prob_cluster_1"] == pytest.approx(b[name]["prob_cluster_1"], abs=1.01 * 10**-PROB_DECIMALS)


def test_cli_exit_codes_and_stdout(library, tiny_model, tmp_path, capsys):
    assert main(["scan", str(library / "rock"), "--model", str(tiny_model), "-o", "-", "-j", "0", "-q"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(Path(r["path"]).name for r in lines) == ["Other.mp3", "Song.flac"]
    assert (
        main(
            [
                "scan",
                str(library / "broken"),
                "--model",
                str(tiny_model),
                "-o",
                str(tmp_path / "x.csv"),
                "-j",
                "0",
                "-q",
            ]
        )
        == 1
    )
    assert main(["scan", str(tmp_path / "nowhere"), "--model", str(tiny_model)]) == 2
    assert main(["scan", str(library), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "y.csv")]) == 2
    assert main(["scan", str(library), "-o", str(tmp_path / "moods.xlsx")]) == 2


def test_a_resumed_scan_with_nothing_to_do_starts_no_workers_and_no_torch(library, tiny_model, tmp_path):
    """Rerunning `scan` on an unchanged library answers from the card and the earlier rows alone."""
    out = tmp_path / "moods.csv"
    scan([library / "rock"], out=out, model=tiny_model, jobs=0, progress=False)
    before = read_results(out)
    assert before.height >= 2 and (before["status"] == "ok").all()
    code = (
        "import sys; import mer_tag.workers; from mer_tag.scan import scan\n"
        "def no_workers(*args, **kwargs): sys.exit('decode workers started')\n"
        "mer_tag.workers.start_pool = no_workers\n"
        f"s = scan([{str(library / 'rock')!r}], out={str(out)!r}, model={str(tiny_model)!r}, jobs=2, progress=False)\n"
        "print(s.skipped, s.ok, s.failed, 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(before.height), "0", "0", "False"]
    assert read_results(out).equals(before)


def test_a_killed_scan_keeps_its_rows_and_resumes_without_duplicates(tmp_path, tiny_model):
    lib = tmp_path / "lib"
    for i in range(40):
        write_audio(lib / f"t{i:02d}.wav", tone(3, 200 + 10 * i))
    out = tmp_path / "moods.csv"
    code = (
        "import sys; from mer_tag.cli import main; "
        f"sys.exit(main(['scan', {str(lib)!r}, '--model', {str(tiny_model)!r}, '-o', {str(out)!r}, '-j', '0', '-q']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = read_results(out)
    assert 3 <= partial.height < 40
    summary = scan([lib], out=out, model=tiny_model, jobs=0, progress=False)
    assert summary.skipped == partial.height and summary.ok == 40 - partial.height
    assert len(out.read_text().splitlines()) == 1 + 40
    assert read_results(out)["path"].n_unique() == 40


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_scan_lets_idle_openmp_threads_sleep_unless_told_otherwise(library, tiny_model, tmp_path, monkeypatch, preset):
    """Spinning OpenMP threads in the model process steal the cores the decode workers need (docs/performance.md).
    The command sets it; `scan` as a library call leaves its caller's process as it found it."""
    for name in ("OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)  # restored after the test, whatever the command sets
    if preset is not None:
        monkeypatch.setenv("OMP_WAIT_POLICY", preset)
    scan([library / "rock"], out=tmp_path / "lib.csv", model=tiny_model, jobs=0, progress=False)
    assert os.environ.get("OMP_WAIT_POLICY") == preset and "MALLOC_MMAP_THRESHOLD_" not in os.environ
    assert (
        main(
            ["scan", str(library / "rock"), "--model", str(tiny_model), "-o", str(tmp_path / "m.csv"), "-j", "0", "-q"]
        )
        == 0
    )
    assert os.environ["OMP_WAIT_POLICY"] == (preset or "PASSIVE")


def test_a_library_scan_leaves_torch_threads_as_it_found_them(library, tiny_model, tmp_path):
    import torch

    torch.set_num_threads(3)
    scan([library / "rock"], out=tmp_path / "m.csv", model=tiny_model, jobs=2, progress=False)
    assert torch.get_num_threads() == 3


def test_torch_starts_after_the_openmp_wait_policy_is_set(library, tiny_model, tmp_path):
    """OpenMP reads OMP_WAIT_POLICY once, when torch loads: anything in `mer-tag scan` that imports torch
    before setting it (checking --precision did, once) leaves the model threads spinning."""
    code = (
        "import importlib.abc, os, sys\n"
        "os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "seen = []\n"
        "class Probe(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' and not seen:\n"
        "            seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.meta_path.insert(0, Probe())\n"
        "from mer_tag.cli import main\n"
        f"main(['scan', {str(library / 'rock')!r}, '-o', {str(tmp_path / 'm.csv')!r}, '--model', {str(tiny_model)!r},\n"
        "      '-j', '0', '-q', '--precision', 'auto'])\n"
        "print('policy when torch loaded:', seen[0])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "policy when torch loaded: PASSIVE" in out.stdout


def test_a_scan_into_a_new_csv_never_imports_polars(library, tiny_model, tmp_path):
    """polars (0.1 CPU-s of imports) reads and rewrites earlier results; a first scan into a new CSV has none."""
    code = (
        "import sys; from mer_tag.scan import scan\n"
        f"s = scan([{str(library / 'rock')!r}], out={str(tmp_path / 'new.csv')!r}, model={str(tiny_model)!r}, "
        "jobs=0, progress=False)\n"
        "print(s.ok, 'polars' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[0]) >= 2 and proc.stdout.split()[1] == "False"
    assert read_results(tmp_path / "new.csv").height == int(proc.stdout.split()[0])
