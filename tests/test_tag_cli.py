"""What a person meets: scan, tag, scan again; untag; the errors a slip of the keyboard gets; the templates."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from media import tone, write_audio
from mer_tag.cli import main
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.tags import presets, read_mood

TRACKS = ("v24.mp3", "b.flac", "c.ogg", "d.opus", "e.m4a", "f.wav")


@pytest.fixture
def music(tmp_path) -> Path:
    lib = tmp_path / "Music"
    for i, name in enumerate(TRACKS):
        write_audio(lib / name, tone(2.0, 220 + 50 * i, seed=i))
    return lib


def state(folder: Path) -> dict:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_rescan_after_tag_and_after_untag_redoes_nothing(music, tiny_model, tmp_path, capsys, fmt):
    out = tmp_path / f"moods.{fmt}"
    before = {name: hashlib.sha256((music / name).read_bytes()).hexdigest() for name in TRACKS}
    assert main(["scan", str(music), "--model", str(tiny_model), "-o", str(out), "-j", "0", "-q"]) == 0
    assert main(["tag", str(out), "--min-confidence", "0"]) == 0  # random weights: every track unsure
    printed = capsys.readouterr().out
    assert f"{out}: {len(TRACKS)} rows given their file's new size and mtime" in printed
    assert all(hashlib.sha256((music / n).read_bytes()).hexdigest() != before[n] for n in TRACKS)

    again = scan([music], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.failed, again.skipped) == (0, 0, len(TRACKS))

    journal = next(tmp_path.glob(f"moods.{fmt}.tags-*.jsonl"))
    assert main(["untag", str(journal)]) == 0
    assert {name: hashlib.sha256((music / name).read_bytes()).hexdigest() for name in TRACKS} == before
    third = scan([music], out=out, model=tiny_model, jobs=0, progress=False)
    assert (third.ok, third.failed, third.skipped) == (0, 0, len(TRACKS))
    assert read_results(out).height == len(TRACKS)


def test_a_rescan_still_redoes_a_track_whose_audio_changed(music, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([music], out=out, model=tiny_model, jobs=0, progress=False)
    write_audio(music / "b.flac", tone(2.5, 999))  # re-encoded after the scan: its row is stale
    assert main(["tag", str(out), "--min-confidence", "0"]) == 0
    again = scan([music], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.skipped) == (1, len(TRACKS) - 1)


def test_scan_with_tag_leaves_nothing_for_the_next_scan(music, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    assert main(["scan", str(music), "--model", str(tiny_model), "-o", str(out), "-j", "0", "-q", "--tag"]) == 0
    again = scan([music], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.skipped) == (0, len(TRACKS))


def test_scan_with_tag_says_how_many_it_left_untagged_and_how_to_tag_them(music, tiny_model, tmp_path, capsys):
    out = tmp_path / "moods.csv"
    assert main(["scan", str(music), "--model", str(tiny_model), "-o", str(out), "-j", "0", "--tag"]) == 0
    unsure = sum(c < 0.5 for c in read_results(out)["confidence"])  # random weights: most or all of them
    assert unsure > 0
    line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("tags: "))
    assert line.startswith(f"tags: {len(TRACKS) - unsure} track")
    assert f", {unsure} below 0.5 confidence left untagged (mer-tag tag {out} --min-confidence 0 tags them)" in line


def test_scan_with_tag_over_an_empty_folder_is_one_line_and_touches_nothing(tiny_model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "moods.csv"
    assert main(["scan", str(tmp_path / "empty"), "--model", str(tiny_model), "-o", str(out), "-j", "0", "--tag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no audio files in ") and len(err.splitlines()) == 1
    assert not out.exists()


# --- usage errors: one line on stderr, exit 2, nothing touched ------------------------------------------------


def _results(folder: Path, music: Path) -> Path:
    results = folder / "moods.csv"
    rows = "".join(
        f"{music / n},ok,,{(music / n).stat().st_size},{(music / n).stat().st_mtime!r},3,Wistful,0.61,default@0.2.0\n"
        for n in TRACKS
    )
    results.write_text("path,status,error,size,mtime,cluster,cluster_name,confidence,model\n" + rows)
    return results


@pytest.mark.parametrize(
    "case, words",
    [
        ("other csv", "is not a mer-tag results file (no path, status, cluster, cluster_name, confidence columns)"),
        ("header only", "holds no tracks, so there is nothing to tag"),
        ("zero bytes", "holds no tracks, so there is nothing to tag"),
        ("a journal", "is a tag journal, not scan results (undo the tagging it records: mer-tag untag"),
        ("results to untag", "is not a tag journal: untag takes the .jsonl journal"),
        ("jsonl results to untag", "is not a tag journal: untag takes the .jsonl journal"),
        ("missing journal", "no journal at"),
        ("unknown template", "unknown template 'nope'"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_touch_nothing(music, tmp_path, capfd, case, words):
    results = _results(tmp_path, music)
    if case == "a journal":  # a real one, from a run over a copy
        copy = tmp_path / "copy"
        shutil.copytree(music, copy)
        assert main(["tag", str(_results(copy, copy)), "--journal", str(tmp_path / "j.jsonl")]) == 0
        capfd.readouterr()
    leftover = music / ".b.flac.abcdefgh.mer-tag.flac"  # a failed command must not clear even this
    shutil.copy(music / "b.flac", leftover)
    before = state(music)
    argv = {
        "other csv": ["tag", str(_write(tmp_path / "other.csv", "a,b\n1,2\n"))],
        "header only": ["tag", str(_write(tmp_path / "empty.csv", "path,status,cluster,cluster_name,confidence\n"))],
        "zero bytes": ["tag", str(_write(tmp_path / "zero.csv", ""))],
        "a journal": ["tag", str(tmp_path / "j.jsonl")],
        "results to untag": ["untag", str(results)],
        "jsonl results to untag": ["untag", str(_as_jsonl(results))],
        "missing journal": ["untag", str(tmp_path / "nowhere.jsonl")],
        "unknown template": ["tag", str(results), "-t", "nope"],
    }[case]
    listing = sorted(p.name for p in tmp_path.iterdir())
    command = [sys.executable, "-m", "mer_tag", *argv]
    run = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    )
    assert run.returncode == 2, run
    assert run.stdout == "" and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error: ") and words in run.stderr, run.stderr
    assert state(music) == before and sorted(p.name for p in tmp_path.iterdir()) == listing


def _as_jsonl(results: Path) -> Path:
    """The same rows as sinks.RowWriter writes them to a .jsonl results file."""
    import json

    jsonl = results.with_suffix(".jsonl")
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in read_results(results).to_dicts()))
    return jsonl


def test_tag_leaves_tracks_below_half_confidence_untagged_by_default(music, tmp_path, capsys):
    results = _results(tmp_path, music)  # every track at 0.61
    text = results.read_text().splitlines()
    text[1] = text[1].replace(",0.61,", ",0.49,")
    results.write_text("\n".join(text) + "\n")
    assert main(["tag", str(results)]) == 0
    untagged = Path(text[1].split(",")[0])
    printed = capsys.readouterr()
    assert (
        "1 track not tagged:\n  1 below the 0.5 confidence threshold (--min-confidence 0 tags them too)" in printed.out
    )
    assert read_mood(untagged) is None
    assert all(read_mood(music / n) == "Wistful" for n in TRACKS if music / n != untagged)


def test_tag_counts_in_words_lists_by_path_and_says_why_each_track_was_not_tagged(music, tmp_path, capsys):
    import mutagen

    own = mutagen.File(music / "c.ogg")
    own["MOOD"] = ["Happy"]  # a mood of the listener's own
    own.save()
    results = _results(tmp_path, music)  # every track at 0.61, in the order v24.mp3, b.flac, c.ogg, …
    lines = results.read_text().splitlines()
    lines[4] = lines[4].replace(",0.61,", ",0.49,")  # d.opus: unsure
    lines[5] = lines[5].replace(",0.61,", ",0.3,")  # e.m4a: unsure
    lines[2] = lines[2].replace(",ok,", ",error,")  # b.flac: failed in the scan
    results.write_text("\n".join(lines) + "\n")

    assert main(["tag", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line.split(":")[0] for line in out if line.startswith(str(music))]
    assert listed == [str(music / "f.wav"), str(music / "v24.mp3")]  # by path, not in the results' order
    assert "2 tracks would be tagged" in out

    assert main(["tag", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 tracks tagged\n4 tracks not tagged:\n" in out
    assert "  2 below the 0.5 confidence threshold (--min-confidence 0 tags them too)\n" in out
    assert "  1 failed in the scan (mer-tag scan --retry-failed tries them again; then tag again)\n" in out
    assert "  1 already had a mood of their own (--overwrite replaces it)\n" in out
    assert f"{results}: 2 rows given their file's new size and mtime" in out
    assert "row(s)" not in out and "skipped" not in out


def test_a_journal_given_as_a_folder_is_one_line_before_any_file_is_touched(music, tmp_path, capsys):
    results = _results(tmp_path, music)
    (tmp_path / "journals").mkdir()
    before = state(music)
    assert main(["tag", str(results), "--journal", str(tmp_path / "journals")]) == 2
    journals = tmp_path / "journals"
    said = f"error: --journal {journals} is a folder: give a file, e.g. {journals / 'moods.tags.jsonl'}\n"
    assert capsys.readouterr().err == said
    assert state(music) == before and not list(journals.iterdir())


def test_untag_with_a_missing_results_file_is_one_line_before_any_file_is_restored(music, tmp_path, capsys):
    results = _results(tmp_path, music)
    assert main(["tag", str(results), "--journal", str(tmp_path / "j.jsonl")]) == 0
    tagged = state(music)
    capsys.readouterr()
    assert main(["untag", str(tmp_path / "j.jsonl"), "--results", str(tmp_path / "nope.csv")]) == 2
    assert capsys.readouterr().err == f"error: --results: no results file at {tmp_path / 'nope.csv'}\n"
    assert state(music) == tagged  # nothing restored yet


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_untag_of_results_names_the_newest_journal_beside_them(music, tmp_path, capsys):
    results = _results(tmp_path, music)
    assert main(["tag", str(results)]) == 0
    journal = next(tmp_path.glob("moods.csv.tags-*.jsonl"))
    capsys.readouterr()
    assert main(["untag", str(results)]) == 2
    assert f"the newest journal beside it is {journal}" in capsys.readouterr().err


def test_an_empty_journal_is_nothing_to_do(tmp_path, capsys):
    (tmp_path / "j.jsonl").write_text('{"path": "/music/a.mp3", "fields": {"TM')  # killed mid first record
    assert main(["untag", str(tmp_path / "j.jsonl")]) == 0
    assert "nothing to do" in capsys.readouterr().out


# --- templates from the command line ------------------------------------------------------------------------


def test_list_templates_shows_each_preset_with_an_example(capsys):
    assert main(["tag", "--list-templates"]) == 0
    out = capsys.readouterr().out
    for name, template in presets().items():
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert template in line, line
    assert "Cluster 3: Wistful" in out and "Wistful (61%)" in out and "literate, poignant, wistful" in out
    assert "Wistful, negative, calm" in out and "valence 0.30, arousal 0.23" in out
    assert "{valence}" in out and "{quadrant_name}" in out and "{runner_up_name}" in out


def test_tag_help_points_to_list_templates_and_paths_a_user_has(capsys):
    assert main(["tag", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--list-templates" in out and "tag-templates.toml" not in out
    assert "mer-tag scan ~/Music -o moods.csv" in out and "mer-tag tag moods.csv" in out
