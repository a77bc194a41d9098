"""mer_tag.evaluate: `mer-tag eval` scores a model on the songs it did not learn from, and says so first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from media import tone, write_audio
from mer_tag import bundle as bundle_io
from mer_tag.evaluate import EvalError, evaluate
from mer_tag.train.datasets import load_dataset
from tiny_model import edit_card

MOODS = ("Passionate", "Cheerful", "Wistful")


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """Six 6-s songs in the one-folder-per-mood layout, two a mood."""
    root = tmp_path_factory.mktemp("labelled") / "data"
    for k, mood in enumerate(MOODS):
        for j in range(2):
            write_audio(root / mood / f"song{j}.flac", tone(6, 220.0 * (k + 1) + 40 * j, seed=k * 10 + j))
    return root


def _model_that_learned(model: Path, folder: Path, paths, **card) -> Path:
    """A copy of the tiny model whose card records it learned from `paths` (and any other card fields)."""
    copy = folder / "learned"
    shutil.copytree(model, copy)

    def edit(c):
        c.setdefault("data", {})["seen"] = bundle_io.seen_record(paths)
        c.update(card)

    edit_card(copy, edit)
    return copy


def _paths(songs: Path):
    return [e.audio_path for e in load_dataset(songs).examples]


def test_songs_are_known_by_their_bytes_wherever_they_lie(songs, tmp_path):
    first = _paths(songs)[0]
    moved = shutil.copy(first, tmp_path / "elsewhere.flac")
    assert bundle_io.song_fingerprint(moved) == bundle_io.song_fingerprint(first)
    assert bundle_io.song_fingerprint(_paths(songs)[1]) != bundle_io.song_fingerprint(first)
    record = bundle_io.seen_record([first, moved])
    assert record["hash"] == bundle_io.SEEN_HASH and len(record["songs"]) == 1
    assert bundle_io.seen_songs({"data": {"seen": record}}) == set(record["songs"])
    assert bundle_io.seen_songs({"data": {"seen": {"hash": "md5", "songs": []}}}) is None  # another hash: unknown
    assert bundle_io.seen_songs({}) is None


def test_a_model_trained_on_every_song_is_refused_before_any_scoring(songs, tiny_model, tmp_path, monkeypatch):
    from mer_tag import engines

    model = _model_that_learned(
        tiny_model,
        tmp_path,
        _paths(songs),
        refit_all=True,
        metrics={"fusion": {"test": {"n": 145, "macro_f1": 0.5409}}},
    )
    monkeypatch.setattr(engines, "create", lambda *a, **k: pytest.fail("scored songs the model learned from"))
    with pytest.raises(EvalError) as refused:
        evaluate(songs, model=model, jobs=0)
    message = str(refused.value)
    assert "trained on all 6 of these songs" in message and "--include-training-songs" in message
    assert "before the refit on every song, on 145 songs by artists it never saw: fused macro-F1 0.541" in message


def test_only_the_songs_the_model_did_not_learn_are_scored_and_it_says_so_first(songs, tiny_model, tmp_path):
    learned = _paths(songs)[:4]
    model = _model_that_learned(tiny_model, tmp_path, learned)
    heard = []
    metrics = evaluate(songs, model=model, jobs=0, log=heard.append)
    assert heard == [
        "4 of these 6 songs were used to train model tiny@0.0.1: scoring the other 2 only "
        "(--include-training-songs scores all 6)"
    ]
    assert metrics["fusion"]["n"] == 2


def test_include_training_songs_scores_every_song_with_a_note(songs, tiny_model, tmp_path):
    model = _model_that_learned(tiny_model, tmp_path, _paths(songs))
    heard = []
    metrics = evaluate(songs, model=model, jobs=0, include_training_songs=True, log=heard.append)
    assert metrics["fusion"]["n"] == 6
    assert len(heard) == 1 and "6 of these 6 songs were used to train" in heard[0] and "runs high" in heard[0]


def test_a_card_that_records_no_songs_says_it_cannot_tell(songs, tiny_model):
    heard = []
    metrics = evaluate(songs, model=tiny_model, jobs=0, log=heard.append)
    assert metrics["fusion"]["n"] == 6
    assert len(heard) == 1 and "does not record which songs it learned from" in heard[0]
    assert "cannot tell" in heard[0]


def test_songs_new_to_the_model_are_all_scored(songs, tiny_model, tmp_path):
    other = write_audio(tmp_path / "other.flac", tone(6, 880))
    model = _model_that_learned(tiny_model, tmp_path, [other])
    heard = []
    assert evaluate(songs, model=model, jobs=0, log=heard.append)["fusion"]["n"] == 6
    assert heard == ["none of these 6 songs were used to train model tiny@0.0.1"]


def test_the_shipped_card_records_the_songs_it_learned_from(mirex_dataset):
    """The shipped weights were refit on every song of the MIREX-like set: its card lists all 722 of them, and
    its quadrant head's card lists the 4Q songs it learned from."""
    card = json.loads((bundle_io.WEIGHTS_DIR / "default" / "card.json").read_text())
    seen = bundle_io.seen_songs(card)
    assert seen is not None and len(seen) == card["data"]["songs"]
    fingerprints = {bundle_io.song_fingerprint(e.audio_path) for e in load_dataset(mirex_dataset).examples}
    assert fingerprints == seen
    assert bundle_io.seen_songs(card["quadrant"]) is not None
    assert len(bundle_io.seen_songs(card["quadrant"])) == card["quadrant"]["data"]["songs"]


def test_an_out_that_is_a_file_is_refused_before_any_scoring(songs, tiny_model, tmp_path, monkeypatch):
    from mer_tag import engines

    taken = tmp_path / "scores.csv"
    taken.write_text("mine\n")
    monkeypatch.setattr(engines, "create", lambda *a, **k: pytest.fail("scored before refusing the output"))
    with pytest.raises(EvalError, match="scores.csv is a file: --out takes a folder for the scores"):
        evaluate(songs, model=tiny_model, jobs=0, out=taken)
    assert taken.read_text() == "mine\n"


def test_eval_at_the_command_line_says_what_it_leaves_out_before_the_scores(songs, tiny_model, tmp_path, capsys):
    from mer_tag.cli import main

    model = _model_that_learned(tiny_model, tmp_path, _paths(songs))
    assert main(["eval", "--data", str(songs), "--model", str(model), "-j", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model tiny@0.0.1 was trained on all 6 of these songs") and err.count("\n") == 1
    assert main(["eval", "--data", str(songs), "--model", str(model), "-j", "0", "--include-training-songs"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("note: 6 of these 6 songs were used to train model tiny@0.0.1")
    assert "| fusion | all | 6 |" in captured.out


def test_songs_eval_cannot_score_are_said_and_none_at_all_is_an_error(songs, tiny_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(songs, data)
    (data / "Wistful" / "broken.flac").write_bytes(b"not audio at all")
    said: list[str] = []
    metrics = evaluate(data, model=tiny_model, jobs=0, log=said.append)
    assert metrics["fusion"]["n"] == 6
    assert any(line.startswith("1 of these 7 songs could not be scored") and "broken.flac" in line for line in said)
    bad = tmp_path / "bad"
    for mood in MOODS[:2]:
        (bad / mood).mkdir(parents=True)
        (bad / mood / "x.flac").write_bytes(b"garbage")
    with pytest.raises(EvalError, match="none of these 2 songs could be scored, e.g. x.flac: "):
        evaluate(bad, model=tiny_model, jobs=0)
