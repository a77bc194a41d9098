"""`mer-tag tag` / `untag`: the mood lands in each format's own field, nothing else in the file moves, and
every change can be undone, even after a crash or a kill."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from media import tone, write_audio, write_pyav_audio
from mer_tag import tags
from mer_tag.cli import main
from mer_tag.tags import fields

NAMES = ("Passionate", "Cheerful", "Wistful", "Humorous", "Aggressive")

# file -> (field the mood must land in, as mutagen's raw API names it; predicted cluster)
TRACKS = {
    "v24.mp3": ("TMOO", 1),
    "v23.mp3": ("TXXX:MOOD", 2),  # ID3v2.3 has no TMOO
    "bare.mp3": ("TMOO", 3),  # no tag at all: a new v2.4 one
    "v1.mp3": ("TMOO", 2),  # an ID3v1 tag only: a new v2.4 one beside it
    "alt.mp3": ("TMOO", 4),  # v2.4 with the user's mood spelled TXXX:MOOD
    "ape.mp3": ("TMOO", 5),  # no ID3, an APEv2 tag with the user's Mood
    "a.flac": ("MOOD", 1),
    "user.flac": ("MOOD", 2),  # the user's own MOOD=Dreamy
    "a.ogg": ("MOOD", 3),
    "low.ogg": ("MOOD", 4),  # low confidence
    "a.opus": ("MOOD", 5),
    "a.m4a": ("----:com.apple.iTunes:MOOD", 1),
    "a.alac.m4a": ("----:com.apple.iTunes:MOOD", 2),
    "a.wav": ("TMOO", 3),  # no ID3 chunk yet
    "a.aiff": ("TXXX:MOOD", 4),  # an ID3v2.3 chunk
    "a.wv": ("Mood", 5),  # WavPack with APEv2
}
USER_MOODS = {"alt.mp3": "Calm", "ape.mp3": "Calm", "user.flac": "Dreamy"}
LOW = {"low.ogg": 0.2}


def _id3(path: Path, version: int, **frames) -> None:
    from mutagen.id3 import COMM, ID3, TDRC, TIT2, TPE1, TXXX

    tag = ID3()
    tag.add(TIT2(encoding=3, text=f"title of {path.name}"))
    tag.add(TPE1(encoding=1, text=["one", "two"]))  # multi-valued, UTF-16
    tag.add(COMM(encoding=3, lang="eng", desc="", text="a comment"))
    tag.add(TXXX(encoding=3, desc="OTHER", text="kept"))
    if "mood" in frames:
        tag.add(TXXX(encoding=0, desc="MOOD", text=frames["mood"]))
    if version == 3:
        tag.add(TDRC(encoding=0, text="2001"))
        tag.update_to_v23()  # TDRC -> TYER, as a v2.3 tagger writes it
    tag.save(path, v2_version=version)


def _build(folder: Path) -> None:
    """One small file per container, tagged the way users' files are."""
    import mutagen
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3, TIT2
    from mutagen.id3 import delete as id3_delete

    for name in TRACKS:
        kind = "alac.m4a" if name.endswith(".alac.m4a") else name.rsplit(".", 1)[1]
        path = folder / name
        if kind == "wv":
            write_pyav_audio(path)
        else:
            write_audio(path, tone(seconds=1.0, seed=len(name)))
    for name in ("v24.mp3", "alt.mp3"):
        _id3(folder / name, 4, **({"mood": "Calm"} if name == "alt.mp3" else {}))
    _id3(folder / "v23.mp3", 3)
    _id3(folder / "v1.mp3", 4)
    ID3(folder / "v1.mp3").save(v1=2)
    id3_delete(folder / "v1.mp3", delete_v1=False)
    ape = APEv2()
    ape["Title"], ape["Mood"] = "ape title", "Calm"
    ape.save(folder / "ape.mp3")
    aiff = mutagen.File(folder / "a.aiff")
    aiff.add_tags()
    aiff.tags.add(TIT2(encoding=1, text="aiff title"))
    aiff.save(v2_version=3)
    for name in ("a.flac", "user.flac", "a.ogg", "low.ogg", "a.opus"):
        audio = mutagen.File(folder / name)
        audio["TITLE"], audio["ARTIST"] = f"title of {name}", ["one", "two"]
        if name in USER_MOODS:
            audio["mood"] = USER_MOODS[name]  # lower case: Vorbis names are case-insensitive
        audio.save()
    for name in ("a.m4a", "a.alac.m4a"):
        audio = mutagen.File(folder / name)
        audio["\xa9nam"] = f"title of {name}"
        audio.save()
    (folder / "broken.flac").write_bytes(b"not audio at all" * 100)


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("master")
    _build(folder)
    return folder


QUADRANT_NAMES = ("positive, energetic", "negative, energetic", "negative, calm", "positive, calm")
VA_COLUMNS = [
    "runner_up",
    "runner_up_name",
    "runner_up_confidence",
    "quadrant",
    "quadrant_name",
    *[f"prob_quadrant_{q}" for q in range(1, 5)],
    "valence",
    "arousal",
]


def _valence_arousal(cluster: int, quadrant: int | None) -> list:
    """The runner-up and valence–arousal columns of one row; empty (a model without them) for no quadrant."""
    if quadrant is None:
        return [""] * len(VA_COLUMNS)
    runner_up = cluster % 5 + 1
    probs = [0.55 if q == quadrant else 0.15 for q in range(1, 5)]
    valence, arousal = round(probs[0] + probs[3], 4), round(probs[0] + probs[1], 4)
    return [runner_up, NAMES[runner_up - 1], 0.2, quadrant, QUADRANT_NAMES[quadrant - 1], *probs, valence, arousal]


def _write_results(
    folder: Path, clusters: dict[str, int] | None = None, quadrants: dict[str, int] | None = None
) -> Path:
    """A results CSV as docs/output.md describes it, made by hand. With `quadrants` (file -> quadrant) it
    also has the runner-up and valence–arousal columns, empty for a file not named there."""
    results = folder / "moods.csv"
    columns = [
        "path",
        "status",
        "error",
        "size",
        "mtime",
        "cluster",
        "cluster_name",
        "confidence",
        *[f"prob_cluster_{k}" for k in range(1, 6)],
        *(VA_COLUMNS if quadrants is not None else []),
        "model",
    ]
    with open(results, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(columns)
        for name in [*TRACKS, "broken.flac", "missing.mp3"]:
            path = folder / name
            cluster = (clusters or {}).get(name) or TRACKS.get(name, ("", 1))[1]
            confidence = LOW.get(name, 0.61)
            probs = [confidence if k == cluster else (1 - confidence) / 4 for k in range(1, 6)]
            size, mtime = (path.stat().st_size, path.stat().st_mtime) if path.exists() else (0, 0.0)
            prediction = [cluster, NAMES[cluster - 1], confidence, *probs]
            if quadrants is not None:
                prediction += _valence_arousal(cluster, quadrants.get(name))
            out.writerow([path, "ok", "", size, mtime, *prediction, "default@0.1.0"])
        empty = [""] * (len(columns) - 6)
        out.writerow([folder / "failed.mp3", "error", "could not decode", 10, 0.0, *empty, "default@0.1.0"])
    return results


@pytest.fixture
def lib(master, tmp_path):
    folder = tmp_path / "lib"
    shutil.copytree(master, folder)
    return SimpleNamespace(dir=folder, results=_write_results(folder), journal=tmp_path / "journal.jsonl")


def expected(name: str) -> str:
    return NAMES[TRACKS[name][1] - 1]


def raw_field(path: Path, key: str) -> list[str] | None:
    """A field read back with mutagen's own per-format API, not our adapters."""
    import mutagen
    from mutagen.id3 import ID3

    audio = mutagen.File(path)
    if audio.tags is None:
        return None
    if isinstance(audio.tags, ID3):
        frames = type(audio)(path, translate=False).tags.getall(key)
        return [str(t) for f in frames for t in f.text] or None
    if key not in audio.tags:
        return None
    if key.startswith("----"):
        return [bytes(v).decode() for v in audio.tags[key]]
    return list(audio.tags[key])


def id3_version(path: Path):
    import mutagen

    tags = mutagen.File(path).tags
    return tags.version if tags is not None and hasattr(tags, "version") else None


def dump(path: Path):
    """Every tag exactly as stored (ID3 frames untranslated, Vorbis key spellings, value types)."""
    import mutagen
    from mutagen.id3 import ID3

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return None
    if isinstance(audio.tags, ID3):
        tag = type(audio)(path, translate=False).tags
        return tag.version, sorted((k, repr(f)) for k, f in tag.items())
    return sorted((k, repr(v)) for k, v in (list(audio.tags) if isinstance(audio.tags, list) else audio.tags.items()))


def decoded(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])


def file_state(folder: Path) -> dict:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.iterdir())
    }


def by_name(summary) -> dict:
    return {Path(r.path).name: r for r in summary.results}


def test_mood_lands_in_each_formats_field_and_nothing_else_moves(lib):
    dumps = {name: dump(lib.dir / name) for name in TRACKS}
    audio = {name: decoded(lib.dir / name) for name in TRACKS}
    versions = {name: id3_version(lib.dir / name) for name in TRACKS}

    summary = tags.write_tags(lib.results, journal=lib.journal)

    results = by_name(summary)
    assert {n for n, r in results.items() if r.action == "tagged"} == set(TRACKS) - set(USER_MOODS)
    for name, (key, _) in TRACKS.items():
        path = lib.dir / name
        mood = USER_MOODS.get(name, expected(name))
        assert np.array_equal(decoded(path), audio[name]), name
        if name in USER_MOODS:
            assert results[name].action == "kept" and dump(path) == dumps[name], name
            assert tags.read_mood(path) == mood
            continue
        assert raw_field(path, key) == [mood], name
        assert tags.read_mood(path) == mood
        if name.endswith((".mp3", ".wav", ".aiff")):
            was = versions[name] if versions[name] and versions[name][0] == 2 else (2, 4, 0)
            assert id3_version(path) == was, name
            other = "TXXX:MOOD" if key == "TMOO" else "TMOO"
            assert raw_field(path, other) is None, name
    assert raw_field(lib.dir / "v23.mp3", "TYER") == ["2001"]  # v2.3 frames stay v2.3 frames
    assert results["broken.flac"].action == "failed" and results["missing.mp3"].detail == "missing"
    assert results["failed.mp3"].action == "skipped"
    assert not [p for p in lib.dir.iterdir() if p.name.startswith(".")]  # no temp copies left


def test_journal_records_old_and_new_values_and_audio_checksum(lib):
    tags.write_tags(lib.results, journal=lib.journal)
    *lines, end = lib.journal.read_text().splitlines()
    assert set(json.loads(end)) == {"end"}  # the run ended: the next one starts a journal of its own
    records = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    assert set(records) == set(TRACKS) - set(USER_MOODS)
    v23 = records["v23.mp3"]
    assert v23["format"] == "id3v2.3" and v23["fields"]["TXXX:MOOD"]["old"] is None
    assert v23["fields"]["TXXX:MOOD"]["new"]["text"] == [expected("v23.mp3")]
    methods = {name: r["audio"]["method"] for name, r in records.items()}
    assert methods["v24.mp3"] == "mp3-frames" and methods["a.flac"] == "flac-frames"
    assert methods["a.wav"] == "wav-chunks" and methods["a.aiff"] == "aiff-chunks" and methods["a.m4a"] == "packets"
    assert records["bare.mp3"]["had_tag"] is False


def test_the_keys_tag_writes_are_the_ones_field_key_names_for_each_family(lib):
    """What a plugin learns from tags.field_key is where the mood and mer-tag's own fields really land."""
    tags.write_tags(lib.results, extra_fields=True, journal=lib.journal)
    records = journal_records(lib.journal)
    assert {r["format"] for r in records.values()} == set(tags.WRITTEN)  # every family, each file's own
    for name, record in records.items():
        assert tags.field_key(record["format"]) == TRACKS[name][0], name
        assert raw_field(lib.dir / name, tags.field_key(record["format"])) == [expected(name)], name
        model = tags.field_key(record["format"], "MER_TAG_MODEL")
        assert model in record["fields"] and raw_field(lib.dir / name, model) == ["default@0.1.0"], name


def test_overwrite_replaces_the_users_mood_in_every_spelling(lib):
    summary = tags.write_tags(lib.results, overwrite=True, journal=lib.journal)
    assert by_name(summary)["user.flac"].action == "tagged"
    assert raw_field(lib.dir / "user.flac", "MOOD") == [expected("user.flac")]
    assert raw_field(lib.dir / "alt.mp3", "TMOO") == [expected("alt.mp3")]
    assert raw_field(lib.dir / "alt.mp3", "TXXX:MOOD") is None  # one mood per file
    assert tags.read_mood(lib.dir / "ape.mp3") == expected("ape.mp3")  # ID3 is what gets written and read first


def test_min_confidence_leaves_low_confidence_tracks_untagged(lib):
    before = dump(lib.dir / "low.ogg")
    summary = tags.write_tags(lib.results, min_confidence=0.5, journal=lib.journal)
    assert by_name(summary)["low.ogg"].action == "skipped"
    assert dump(lib.dir / "low.ogg") == before
    assert raw_field(lib.dir / "a.ogg", "MOOD") == [expected("a.ogg")]


def test_dry_run_touches_no_byte(lib):
    before = file_state(lib.dir)
    summary = tags.write_tags(lib.results, dry_run=True, extra_fields=True, journal=lib.journal)
    assert file_state(lib.dir) == before
    assert not lib.journal.exists() and summary.journal is None
    assert by_name(summary)["v24.mp3"].action == "would tag"
    assert "TMOO: absent -> 'Passionate'" in by_name(summary)["v24.mp3"].detail


def test_permissions_kept_and_mtime_kept_on_request(lib):
    os.chmod(lib.dir / "a.flac", 0o640)
    os.chmod(lib.dir / "v24.mp3", 0o604)
    for name in TRACKS:
        os.utime(lib.dir / name, (1_000_000_000, 1_000_000_000))
    tags.write_tags(lib.results, keep_mtime=True, journal=lib.journal)
    assert (lib.dir / "a.flac").stat().st_mode & 0o777 == 0o640
    assert (lib.dir / "v24.mp3").stat().st_mode & 0o777 == 0o604
    assert {(lib.dir / n).stat().st_mtime for n in TRACKS} == {1_000_000_000}

    tags.write_tags(lib.results, overwrite=True, journal=lib.journal)  # user.flac changes, mtime with it
    assert (lib.dir / "user.flac").stat().st_mtime > time.time() - 60


def test_read_only_file_and_unwritable_folder_are_reported_and_the_rest_go_on(lib, monkeypatch):
    os.chmod(lib.dir / "v24.mp3", 0o444)
    before = (lib.dir / "v24.mp3").read_bytes()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, prefix="", **kwargs):
        if prefix.startswith(".a.flac."):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    results = by_name(tags.write_tags(lib.results, journal=lib.journal))
    assert (results["v24.mp3"].action, results["v24.mp3"].detail) == ("failed", "read-only file")
    assert (results["a.flac"].action, results["a.flac"].detail) == ("failed", "folder not writable")
    assert (lib.dir / "v24.mp3").read_bytes() == before
    assert results["a.ogg"].action == "tagged" and results["a.m4a"].action == "tagged"


def test_untag_restores_every_tag_exactly(lib, master):
    before = {name: dump(lib.dir / name) for name in TRACKS}
    audio = {name: decoded(lib.dir / name) for name in TRACKS}
    tags.write_tags(lib.results, overwrite=True, extra_fields=True, journal=lib.journal)
    assert raw_field(lib.dir / "a.m4a", "----:com.apple.iTunes:MER_TAG_CONFIDENCE") == ["0.6100"]
    assert raw_field(lib.dir / "v23.mp3", "TXXX:MER_TAG_PROB_2") == ["0.6100"]

    summary = tags.untag(lib.journal)

    assert not summary.failed and summary.count("restored") == len(TRACKS)
    for name in TRACKS:
        assert dump(lib.dir / name) == before[name], name
        assert np.array_equal(decoded(lib.dir / name), audio[name]), name
    assert before["bare.mp3"] is None and before["a.wav"] is None  # their new ID3 tags are gone again
    assert before["v1.mp3"][0] == (1, 1) and (lib.dir / "v1.mp3").read_bytes() == (master / "v1.mp3").read_bytes()


def test_a_run_after_a_killed_one_goes_on_in_its_journal_so_one_untag_undoes_both(lib, monkeypatch):
    from mer_tag.tags.journal import Journal

    originals = {name: (lib.dir / name).read_bytes() for name in TRACKS}

    def killed_at_the_third_file(done, total, result):
        if done == 3:
            raise SystemExit("killed")  # as kill -9 would leave it: no close, so no end line

    monkeypatch.setattr(Journal, "close", lambda self: self._file and self._file.close())
    with pytest.raises(SystemExit):
        tags.write_tags(lib.results, extra_fields=True, progress=killed_at_the_third_file)
    monkeypatch.undo()
    first = sorted(lib.dir.glob("*.tags-*.jsonl"))
    assert len(first) == 1 and 1 <= len(journal_records(first[0])) <= 3
    summary = tags.write_tags(lib.results, extra_fields=True)  # the rerun: the rest, in the same journal
    assert summary.journal == first[0] and sorted(lib.dir.glob("*.tags-*.jsonl")) == first
    assert tags.untag(summary.journal).failed == []
    assert {name: (lib.dir / name).read_bytes() for name in TRACKS} == originals
    assert set(json.loads(first[0].read_text().splitlines()[-1])) == {"end"}  # closed: the next run starts anew


def test_untag_keeps_a_frame_the_user_added_to_the_tag_mer_tag_gave_an_mp3(lib):
    """bare.mp3 had no tag and v1.mp3 an ID3v1 tag only: mer-tag's new ID3v2 tag would go again with the mood,
    but the user has put a title in it since, so it stays, without the mood."""
    from mutagen.id3 import ID3, TIT2

    tags.write_tags(lib.results, journal=lib.journal)
    for name in ("bare.mp3", "v1.mp3"):
        added = ID3(lib.dir / name)
        added.add(TIT2(encoding=3, text=["Mine"]))
        added.save(v1=0 if name == "bare.mp3" else 1)  # v1.mp3: its ID3v1 tag as it is
    results = by_name(tags.untag(lib.journal))
    for name in ("bare.mp3", "v1.mp3"):
        assert results[name].action == "fields restored", results[name].detail  # not byte for byte: the title
        assert raw_field(lib.dir / name, "TMOO") is None and raw_field(lib.dir / name, "TIT2") == ["Mine"]


def test_a_later_run_updates_its_own_mood_but_untag_refuses_a_users_edit(lib):
    tags.write_tags(lib.results, extra_fields=True, journal=lib.journal)
    _write_results(lib.dir, clusters={"a.flac": 5, "user.flac": 5})  # a rescan with a new model
    results = by_name(tags.write_tags(lib.results, extra_fields=True, journal=lib.journal))
    assert results["a.flac"].action == "tagged"  # MER_TAG_MODEL says the old mood was ours
    assert raw_field(lib.dir / "a.flac", "MOOD") == ["Aggressive"]
    assert results["user.flac"].action == "kept" and results["a.ogg"].action == "unchanged"

    import mutagen

    edited = mutagen.File(lib.dir / "a.ogg")
    edited["MOOD"] = "Mine now"
    edited.save()
    results = by_name(tags.untag(lib.journal))
    assert results["a.ogg"].action == "failed" and "changed since tagging" in results["a.ogg"].detail
    assert raw_field(lib.dir / "a.flac", "MOOD") is None  # two runs undone, newest first
    assert tags.untag(lib.journal, force=True).failed == []
    assert raw_field(lib.dir / "a.ogg", "MOOD") is None


def test_a_crash_before_the_replace_leaves_the_file_as_it_was(lib, monkeypatch):
    before = (lib.dir / "a.flac").read_bytes()
    tags_before = {name: dump(lib.dir / name) for name in TRACKS}
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "a.flac":
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    results = by_name(tags.write_tags(lib.results, journal=lib.journal))
    assert results["a.flac"].action == "failed" and "simulated crash" in results["a.flac"].detail
    assert (lib.dir / "a.flac").read_bytes() == before
    assert results["a.ogg"].action == "tagged"
    assert not [p for p in lib.dir.iterdir() if p.name.startswith(".")]

    monkeypatch.setattr(os, "replace", real_replace)
    with lib.journal.open("a") as f:
        f.write('{"path": "torn by a kil')  # a killed run's last line
    results = by_name(tags.untag(lib.journal))
    assert results["a.flac"].action == "unchanged"  # journaled just before the replace that never happened
    assert {name: dump(lib.dir / name) for name in TRACKS} == tags_before


def test_audio_damaged_in_the_copy_is_caught_and_the_file_left_alone(lib, monkeypatch):
    """Flip one byte mid-file after mutagen writes the copy: the audio check must refuse the swap."""

    def damaging(save):
        def wrapper(self):
            save(self)
            with open(self.audio.filename, "r+b") as f:
                middle = f.seek(0, 2) // 2
                byte = _peek(f, middle)
                f.seek(middle)
                f.write(bytes([byte ^ 0xFF]))

        return wrapper

    for adapter in (fields.ID3Fields, fields.VorbisFields, fields.MP4Fields, fields.APEFields):
        monkeypatch.setattr(adapter, "save", damaging(adapter.save))
    before = file_state(lib.dir)
    results = by_name(tags.write_tags(lib.results, journal=lib.journal))
    for name in set(TRACKS) - set(USER_MOODS):
        assert results[name].action == "failed", name
        assert results[name].detail == "the audio changed in the copy; file left as it was"
    assert file_state(lib.dir) == before


def test_a_file_another_program_writes_meanwhile_is_left_as_that_program_wrote_it(lib, monkeypatch):
    """Another program writes a.flac while its copy is tagged (early: no journal record), or a.ogg after the
    journal record, just before the rename (the last check, in _fs.commit): each fails, with the same line."""
    from mer_tag import _fs

    def writing_meanwhile(save):
        def wrapper(self):
            save(self)
            if Path(self.audio.filename).name.startswith(".a.flac."):
                with open(lib.dir / "a.flac", "ab") as f:
                    f.write(b"\0" * 16)  # a tagger that pads the file, say

        return wrapper

    real_fsync = _fs.fsync

    def fsync(path):
        real_fsync(path)
        if Path(path).name.startswith(".a.ogg."):
            later = (lib.dir / "a.ogg").stat().st_mtime_ns + 5_000_000_000
            os.utime(lib.dir / "a.ogg", ns=(later, later))

    monkeypatch.setattr(fields.VorbisFields, "save", writing_meanwhile(fields.VorbisFields.save))
    monkeypatch.setattr(_fs, "fsync", fsync)
    flac, ogg = (lib.dir / "a.flac").read_bytes() + b"\0" * 16, (lib.dir / "a.ogg").read_bytes()
    results = by_name(tags.write_tags(lib.results, journal=lib.journal))
    for name in ("a.flac", "a.ogg"):
        assert (results[name].action, results[name].detail) == ("failed", "the file changed while it was being tagged")
    assert (lib.dir / "a.flac").read_bytes() == flac and (lib.dir / "a.ogg").read_bytes() == ogg
    assert results["a.opus"].action == "tagged"
    assert not [p for p in lib.dir.iterdir() if p.name.startswith(".")]
    journaled = set(journal_records(lib.journal))
    assert "a.flac" not in journaled and "a.ogg" in journaled and "a.opus" in journaled

    monkeypatch.undo()
    untagged = by_name(tags.untag(lib.journal))
    assert untagged["a.ogg"].action == "unchanged" and untagged["a.opus"].action == "restored"
    assert (lib.dir / "a.flac").read_bytes() == flac and (lib.dir / "a.ogg").read_bytes() == ogg


def _peek(f, offset: int) -> int:
    f.seek(offset)
    return f.read(1)[0]


def test_a_killed_run_leaves_every_file_readable_and_undoable(master, tmp_path):
    """SIGKILL `mer-tag tag` at random moments: every file is the original or the tagged one, never torn."""
    import mutagen

    rng = random.Random(4)
    originals = {name: (master / name).read_bytes() for name in TRACKS}
    audio = {name: decoded(master / name) for name in TRACKS}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for trial in range(3):
        folder = tmp_path / f"run{trial}"
        shutil.copytree(master, folder)
        results, journal = _write_results(folder), folder / "journal.jsonl"
        command = [sys.executable, "-m", "mer_tag", "tag", str(results), "--journal", str(journal), "--overwrite"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not journal.exists() and time.monotonic() < deadline:  # wait until the run is tagging
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        for name in TRACKS:
            path = folder / name
            assert mutagen.File(path) is not None and np.array_equal(decoded(path), audio[name]), (trial, name)
            assert path.read_bytes() == originals[name] or raw_field(path, TRACKS[name][0]) == [expected(name)]
        for leftover in folder.glob(".*.mer-tag*"):
            leftover.unlink()  # a killed run's temp copy: the original beside it is whole
        assert not tags.untag(journal).failed
        for name in TRACKS:
            assert dump(folder / name) == dump(master / name), (trial, name)


def test_ffmpeg_reads_every_mood(lib):
    """PyAV's FFmpeg (the demuxers ffprobe uses) finds the mood in every container."""
    import av

    tags.write_tags(lib.results, overwrite=True, journal=lib.journal)
    for name in TRACKS:
        with av.open(str(lib.dir / name)) as container:
            found = {**container.metadata, **container.streams.audio[0].metadata}
        assert expected(name) in found.values(), (name, found)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_ffprobe_reads_every_mood(lib):
    tags.write_tags(lib.results, overwrite=True, journal=lib.journal)
    for name in TRACKS:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json", str(lib.dir / name)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        probed = json.loads(out)
        found = [*probed.get("format", {}).get("tags", {}).values()]
        found += [v for s in probed.get("streams", []) for v in s.get("tags", {}).values()]
        assert expected(name) in found, (name, probed)


def test_templates():
    row = {"cluster": 3, "cluster_name": "Wistful", "confidence": 0.613, "model": "default@0.1.0"}
    render = lambda t: tags.mood_text(tags.template_text(t), row)  # noqa: E731
    assert render("name") == "Wistful" and render("cluster") == "Cluster 3"
    assert render("adjectives") == "literate, poignant, wistful"
    assert render("{name} ({confidence:.0%})") == "Wistful (61%)"
    assert render("{adjectives[0]}") == "literate"
    with pytest.raises(tags.TemplateError, match="unknown field 'nope'"):
        tags.template_text("{nope}")
    with pytest.raises(tags.TemplateError, match="unknown template"):
        tags.template_text("no-such-preset")
    custom = tags.mood_text("{adjectives}", {**row, "cluster": 1, "cluster_name": "Positive"})
    assert custom == "positive"  # a label set with no adjectives: its name


VA_ROW = dict(tags.SAMPLE_ROW)  # a row with every valence–arousal field


def test_templates_fill_runner_up_and_valence_arousal():
    render = lambda t, row=VA_ROW: tags.mood_text(tags.template_text(t), row)  # noqa: E731
    assert render("name-quadrant") == "Wistful, negative, calm"
    assert render("quadrant") == "negative, calm"
    assert render("valence-arousal") == "valence 0.30, arousal 0.23"
    assert render("{name} or {runner_up_name}, Q{quadrant}") == "Wistful or Passionate, Q3"
    assert render("{valence:.0%} positive, {arousal:.1f}") == "30% positive, 0.2"
    as_text = {**VA_ROW, "valence": "0.3012", "quadrant": "3"}  # a CSV read without types
    assert render("{valence:.1f} Q{quadrant:d}", as_text) == "0.3 Q3"


@pytest.mark.parametrize(
    ("template", "missing"),
    [("valence-arousal", "valence"), ("name-quadrant", "quadrant_name"), ("Q{quadrant}", "quadrant")],
)
def test_a_row_without_valence_arousal_fails_a_template_that_needs_it(template, missing):
    older = {k: VA_ROW[k] for k in ("cluster", "cluster_name", "confidence", "model")}  # results from before
    assert tags.mood_text(tags.template_text("name-confidence"), older) == "Wistful (61%)"  # the rest still work
    no_head = {**VA_ROW, "quadrant": None, "quadrant_name": None, "valence": float("nan"), "arousal": None}
    for row in (older, no_head):
        with pytest.raises(tags.TagError) as error:
            tags.mood_text(tags.template_text(template), row)
        assert str(error.value) == f"no {missing} in this track's row: the model that scanned it has no valence–arousal"
    with pytest.raises(tags.TagError, match="no runner_up_name in this track's row: results from an older mer-tag"):
        tags.mood_text("{runner_up_name}", older)


def test_tracks_without_valence_arousal_fail_alone_and_the_run_goes_on(lib, capsys):
    quadrants = {name: i % 4 + 1 for i, name in enumerate(TRACKS) if name != "a.ogg"}
    _write_results(lib.dir, quadrants=quadrants)
    before = (lib.dir / "a.ogg").read_bytes()
    summary = tags.write_tags(lib.results, template="name-quadrant", overwrite=True, journal=lib.journal)
    results = by_name(summary)
    assert (results["a.ogg"].action, results["a.ogg"].detail) == (
        "failed",
        "no quadrant_name in this track's row: the model that scanned it has no valence–arousal",
    )
    assert (lib.dir / "a.ogg").read_bytes() == before
    assert summary.count("tagged") == len(TRACKS) - 1
    assert raw_field(lib.dir / "a.flac", "MOOD") == [f"{expected('a.flac')}, {QUADRANT_NAMES[quadrants['a.flac'] - 1]}"]

    _write_results(lib.dir)  # results from before valence–arousal: no such columns at all
    command = ["tag", str(lib.results), "-t", "valence-arousal", "--journal", str(lib.journal), "--min-confidence", "0"]
    assert main(command) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("failed ")]
    assert len(failed) == len(TRACKS) + 2  # every track, broken.flac and missing.mp3 too: no file was opened
    assert all(line.endswith("has no valence–arousal") for line in failed)


def test_valence_arousal_fields_beside_the_mood_come_off_byte_for_byte(lib):
    quadrants = {name: i % 4 + 1 for i, name in enumerate(TRACKS)}
    _write_results(lib.dir, quadrants=quadrants)
    before = sha256s(lib.dir, TRACKS)
    tags.write_tags(lib.results, template="valence-arousal", overwrite=True, extra_fields=True, journal=lib.journal)
    q = quadrants["a.flac"]
    valence, arousal = _valence_arousal(1, q)[-2:]
    assert raw_field(lib.dir / "a.flac", "MOOD") == [f"valence {valence:.2f}, arousal {arousal:.2f}"]
    assert raw_field(lib.dir / "a.flac", "MER_TAG_VALENCE") == [f"{valence:.4f}"]
    assert raw_field(lib.dir / "a.flac", "MER_TAG_AROUSAL") == [f"{arousal:.4f}"]
    assert raw_field(lib.dir / "a.flac", "MER_TAG_QUADRANT") == [str(q)]
    assert raw_field(lib.dir / "v23.mp3", "TXXX:MER_TAG_QUADRANT") == [str(quadrants["v23.mp3"])]
    assert raw_field(lib.dir / "a.m4a", "----:com.apple.iTunes:MER_TAG_VALENCE") is not None

    summary = tags.untag(lib.journal)

    assert {r.action for r in summary.results} == {"restored"}
    assert sha256s(lib.dir, TRACKS) == before


def test_a_rescan_without_valence_arousal_takes_the_old_numbers_off(lib):
    """A model's mood must not sit beside another model's valence: our stale fields go, and come back on untag."""
    _write_results(lib.dir, quadrants={name: 2 for name in TRACKS})
    before = sha256s(lib.dir, TRACKS)
    tags.write_tags(lib.results, overwrite=True, extra_fields=True, journal=lib.journal)
    assert raw_field(lib.dir / "a.flac", "MER_TAG_VALENCE") == ["0.3000"]
    assert raw_field(lib.dir / "v24.mp3", "TXXX:MER_TAG_AROUSAL") == ["0.7000"]
    _write_results(lib.dir, clusters={"a.flac": 5})  # a rescan by a model without valence–arousal

    results = by_name(tags.write_tags(lib.results, extra_fields=True, journal=lib.journal))

    assert results["a.flac"].action == "tagged" and results["v24.mp3"].action == "tagged"
    for name, key in (("a.flac", "MER_TAG_"), ("v24.mp3", "TXXX:MER_TAG_")):
        assert [raw_field(lib.dir / name, key + f) for f in ("VALENCE", "AROUSAL", "QUADRANT")] == [None] * 3
    assert raw_field(lib.dir / "a.flac", "MOOD") == ["Aggressive"]
    summary = tags.untag(lib.journal)
    assert not summary.failed
    assert sha256s(lib.dir, TRACKS) == before


def test_cli_dry_run_tag_and_untag(lib, capsys):
    assert main(["tag", "--help"]) == 0
    assert "--min-confidence" in capsys.readouterr().out
    assert main(["tag", str(lib.results), "--template", "{nope}"]) == 2
    assert main(["tag", str(lib.results), "--template", "cluster", "--dry-run"]) == 1  # broken.flac fails
    out = capsys.readouterr().out
    assert "TMOO: absent -> 'Cluster 1'" in out and "tracks would be tagged" in out
    assert raw_field(lib.dir / "v24.mp3", "TMOO") is None

    assert main(["tag", str(lib.results), "--template", "cluster", "--journal", str(lib.journal)]) == 1
    assert raw_field(lib.dir / "v24.mp3", "TMOO") == ["Cluster 1"]
    assert "mer-tag untag" in capsys.readouterr().out
    assert main(["untag", str(lib.journal)]) == 0
    assert raw_field(lib.dir / "v24.mp3", "TMOO") is None
    assert main(["untag", str(lib.dir / "no-journal.jsonl")]) == 2


# --- untag puts every byte back --------------------------------------------------------------------------


def sha256s(folder: Path, names) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def journal_records(journal: Path) -> dict[str, dict]:
    from mer_tag.tags.journal import read_journal

    return {Path(r["path"]).name: r for r in read_journal(journal)}


def _without_padding(folder: Path) -> None:
    """Save every tag with no padding, as many taggers leave files: putting the old fields back through
    mutagen would then add its own padding (and move every byte after it), so only a byte copy restores."""
    import mutagen
    from mutagen.id3 import ID3

    for name in TRACKS:
        audio = mutagen.File(folder / name)
        if audio.tags is None or name in ("v1.mp3", "a.wv"):  # no ID3v2 tag; APEv2 has no padding
            continue
        if isinstance(audio.tags, ID3):
            audio = type(audio)(folder / name, translate=False)
            audio.save(padding=lambda info: 0, v2_version=audio.tags.version[1], v23_sep=None)
        else:
            audio.save(padding=lambda info: 0)


@pytest.mark.parametrize("padding", ["mutagen's", "none"])
def test_untag_puts_every_file_back_byte_for_byte(lib, padding):
    """MP3 (ID3v2.3, v2.4, none, v1 only), FLAC, Ogg Vorbis, Opus, M4A (AAC, ALAC), WAV, AIFF, WavPack."""
    if padding == "none":
        _without_padding(lib.dir)
        _write_results(lib.dir)
    before = sha256s(lib.dir, TRACKS)
    tags.write_tags(lib.results, overwrite=True, extra_fields=True, journal=lib.journal)
    assert all(sha256s(lib.dir, [n])[n] != before[n] for n in TRACKS)  # every file was really rewritten
    records = journal_records(lib.journal)
    assert set(records) == set(TRACKS)
    for name, record in records.items():  # what the edit replaced, not the file: a small record each
        assert record["bytes"]["sha256"] == before[name] and len(json.dumps(record)) < 4096, name

    summary = tags.untag(lib.journal)

    assert {r.action for r in summary.results} == {"restored"}
    assert sha256s(lib.dir, TRACKS) == before


def _with_cover(path: Path, cover: bytes) -> None:
    import mutagen
    from mutagen.flac import Picture
    from mutagen.id3 import APIC

    audio = mutagen.File(path)
    if path.suffix == ".mp3":
        audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="front", data=cover))
        audio.save(v2_version=3)
    else:
        picture = Picture()
        picture.type, picture.mime, picture.data = 3, "image/jpeg", cover
        audio.add_picture(picture)
        audio.save()


def test_a_big_cover_costs_the_journal_nothing(lib):
    """The journal keeps the bytes an edit replaced: a 1 MB cover that only moved is one copy op."""
    cover = np.random.default_rng(0).bytes(1 << 20)  # incompressible, like a JPEG
    for name in ("v23.mp3", "a.flac"):
        _with_cover(lib.dir / name, cover)
    _write_results(lib.dir)
    before = sha256s(lib.dir, TRACKS)
    tags.write_tags(lib.results, extra_fields=True, journal=lib.journal)
    records = journal_records(lib.journal)
    for name in ("v23.mp3", "a.flac"):
        assert len(json.dumps(records[name])) < 8192, name
    assert not tags.untag(lib.journal).failed
    assert sha256s(lib.dir, TRACKS) == before


def test_renumbered_ogg_pages_come_back_byte_for_byte(tmp_path):
    """A comment that outgrows its page moves every later Ogg page (new numbers, new checksums); the
    journal keeps those few bytes a page, and untag puts them back."""
    import mutagen

    path = write_audio(tmp_path / "long.ogg", tone(seconds=20.0))
    audio = mutagen.File(path)
    audio["COMMENT"] = "x" * 3000
    audio.save(padding=lambda info: 0)  # no padding: our fields cannot fit in place
    original = path.read_bytes()
    results = tmp_path / "moods.csv"
    st = path.stat()
    results.write_text(
        "path,status,size,mtime,cluster,cluster_name,confidence,model\n"
        f"{path},ok,{st.st_size},{st.st_mtime!r},3,Wistful,0.61,default@0.2.0\n"
    )
    tags.write_tags(results, extra_fields=True, journal=tmp_path / "j.jsonl")
    tagged = path.read_bytes()
    assert tagged.count(b"OggS") == original.count(b"OggS") + 1  # a page more: every later one renumbered
    audio_start = original.index(b"OggS", original.index(b"\x05vorbis"))
    moved = sum(a != b for a, b in zip(original[audio_start:], tagged[audio_start + len(tagged) - len(original) :]))
    assert moved > 100  # page numbers and checksums throughout the file
    assert len((tmp_path / "j.jsonl").read_bytes()) < len(original) // 10
    assert tags.untag(tmp_path / "j.jsonl").results[0].action == "restored"
    assert path.read_bytes() == original


def test_a_file_changed_since_tagging_gets_its_fields_back_and_says_so(lib):
    import mutagen

    before = dump(lib.dir / "a.flac")
    tags.write_tags(lib.results, journal=lib.journal)
    edited = mutagen.File(lib.dir / "a.flac")
    edited["GENRE"] = "added by another tagger"
    edited.save()

    results = by_name(tags.untag(lib.journal))

    assert results["a.flac"].action == "fields restored"
    assert results["a.flac"].detail.startswith("fields only, not byte for byte (the file changed since tagging)")
    assert raw_field(lib.dir / "a.flac", "MOOD") is None and raw_field(lib.dir / "a.flac", "GENRE")
    assert dump(lib.dir / "a.flac") != before  # the other tagger's edit stays
    assert results["a.ogg"].action == "restored"


def test_untag_dry_run_lists_and_touches_nothing(lib):
    tags.write_tags(lib.results, journal=lib.journal)
    state = file_state(lib.dir)
    summary = tags.untag(lib.journal, dry_run=True)
    assert summary.count("would restore") == len(TRACKS) - len(USER_MOODS)
    assert "TMOO: 'Passionate' -> absent" in by_name(summary)["v24.mp3"].detail
    assert file_state(lib.dir) == state and not summary.restamped


# --- temp copies a killed run left --------------------------------------------------------------------------


def test_the_next_run_clears_only_our_leftover_temp_copies(lib, capsys):
    import fcntl

    ours = lib.dir / ".a.flac.k2_x9q0z.mer-tag.flac"
    shutil.copy(lib.dir / "a.flac", ours)
    locked = lib.dir / ".a.ogg.abcdefgh.mer-tag.ogg"  # a run still going holds its lock
    shutil.copy(lib.dir / "a.ogg", locked)
    not_ours = [
        ".a.flac.k2x9q0.mer-tag.flac",  # 6 random characters, not mkstemp's 8
        ".a.flac.K2X9Q0ZA.mer-tag.flac",  # capitals: mkstemp never makes them
        ".a.flac.k2_x9q0z.mer-tag.ogg",  # not the track's own extension
        "a.flac.k2_x9q0z.mer-tag.flac",  # not hidden
        ".a.flac.k2_x9q0z.mer-tag.flac.bak",
        ".gone.flac.k2_x9q0z.mer-tag.flac",  # its original is gone: maybe the last copy of the music
    ]
    for name in not_ours:
        shutil.copy(lib.dir / "a.flac", lib.dir / name)
    (lib.dir / ".link.mp3.abcdefgh.mer-tag.mp3").symlink_to(lib.dir / "v24.mp3")
    with open(locked, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        dry = tags.write_tags(lib.results, dry_run=True)
        assert dry.cleared == [ours] and ours.exists()
        assert main(["tag", str(lib.results), "--journal", str(lib.journal)]) == 1  # broken.flac fails
    assert not ours.exists() and locked.exists()
    assert all((lib.dir / name).exists() for name in not_ours)
    assert (lib.dir / ".link.mp3.abcdefgh.mer-tag.mp3").is_symlink()
    assert "removed 1 temp file an interrupted mer-tag run left" in capsys.readouterr().out

    left = lib.dir / ".v24.mp3.zzzzzzzz.mer-tag.mp3"
    shutil.copy(lib.dir / "v24.mp3", left)
    assert set(tags.untag(lib.journal).cleared) == {locked, left}  # its lock released, `locked` is a leftover too
    assert not left.exists() and not locked.exists()


def test_killed_runs_then_one_to_the_end_leave_no_temp_copy_and_every_track_whole(master, tmp_path):
    """SIGKILL `mer-tag tag` mid-run, again and again on the same library and journal, then let one run
    finish: no temp copy is left, every track is tagged with its audio intact, and untag gives back
    every original byte."""
    rng = random.Random(16)
    folder = tmp_path / "lib"
    shutil.copytree(master, folder)
    results, journal = _write_results(folder), tmp_path / "journal.jsonl"
    originals = sha256s(master, TRACKS)
    audio = {name: decoded(master / name) for name in TRACKS}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [sys.executable, "-m", "mer_tag", "tag", str(results), "--journal", str(journal), "--overwrite"]
    command += ["--min-confidence", "0"]  # every track, the unsure "low" ones too
    for _ in range(4):
        records = len(journal.read_bytes().splitlines()) if journal.exists() else 0
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:  # until this run has started tagging
            if journal.exists() and len(journal.read_bytes().splitlines()) > records:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True)
    assert final.returncode == 1, final.stderr  # broken.flac, as in every run
    assert not [p.name for p in folder.iterdir() if ".mer-tag" in p.name]
    for name in TRACKS:
        assert np.array_equal(decoded(folder / name), audio[name]), name
        assert tags.read_mood(folder / name) == expected(name), name
    assert not tags.untag(journal).failed
    assert sha256s(folder, TRACKS) == originals


# --- the results file learns each written file's new size and mtime -----------------------------------------


def stamps(results: Path) -> dict[str, tuple]:
    from mer_tag.sinks import read_results

    return {Path(r["path"]).name: (r["size"], r["mtime"]) for r in read_results(results).iter_rows(named=True)}


def on_disk(folder: Path, name: str) -> tuple:
    st = (folder / name).stat()
    return st.st_size, st.st_mtime


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "parquet-folder"])
def test_tag_and_untag_give_written_rows_their_files_new_size_and_mtime(lib, fmt):
    import polars as pl

    from mer_tag.sinks import journal_path, read_results

    os.utime(lib.dir / "a.m4a", (1_000, 1_000))  # its row is stale: the track must be rescanned
    frame = read_results(lib.results)
    results = lib.dir / f"moods.{fmt.split('-')[0]}"
    if fmt == "jsonl":
        frame.write_ndjson(results)
    elif fmt == "parquet":
        frame.write_parquet(results)
    elif fmt == "parquet-folder":  # as --engine ray writes it, with a killed scan's journal beside it
        results.mkdir()
        frame.head(8).write_parquet(results / "part-000001.parquet")
        frame.slice(8, 8).write_parquet(results / "part-000002.parquet")
        journal_path(results).write_text("".join(json.dumps(r) + "\n" for r in frame.slice(16).to_dicts()))
    before, text = stamps(results), lib.results.read_text()

    summary = tags.write_tags(results, journal=lib.journal)

    tagged = {Path(r.path).name for r in summary.results if r.action == "tagged"}
    assert summary.restamped == {str(results): len(tagged) - 1} and not summary.notes
    now = stamps(results)
    for name in now:
        if name in tagged and name != "a.m4a":
            assert now[name] == on_disk(lib.dir, name) != before[name], name
        else:
            assert now[name] == before[name], name  # not written, or already stale: left as it was
    if fmt == "csv":  # every other cell as it was
        edited = lambda text: [line.split(",")[:3] + line.split(",")[5:] for line in text.splitlines()]  # noqa: E731
        assert edited(results.read_text()) == edited(text)
    if fmt == "parquet":
        assert pl.read_parquet(results).schema == frame.schema

    untagged = tags.untag(lib.journal)
    assert untagged.restamped == {str(results): len(tagged) - 1}
    for name, stamp in stamps(results).items():
        if name in tagged and name != "a.m4a":
            assert stamp == on_disk(lib.dir, name), name


def test_untag_updates_the_results_it_is_given(lib, tmp_path):
    tags.write_tags(lib.results, journal=lib.journal)
    moved = tmp_path / "elsewhere.csv"
    lib.results.rename(moved)
    summary = tags.untag(lib.journal, results=moved)
    assert summary.restamped == {str(moved): len(TRACKS) - len(USER_MOODS)}
    assert stamps(moved)["a.flac"] == on_disk(lib.dir, "a.flac")


def test_results_that_cannot_be_updated_are_a_note_not_a_failure(lib):
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == lib.results:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    before = lib.results.read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", replace)
        summary = tags.write_tags(lib.results, journal=lib.journal)
    assert summary.count("tagged") == len(TRACKS) - len(USER_MOODS) and not summary.restamped
    assert summary.notes == [
        f"{lib.results} not updated (PermissionError: [Errno 13] Permission denied): "
        f"the next scan redoes the {len(TRACKS) - len(USER_MOODS)} tracks written"
    ]
    assert lib.results.read_bytes() == before
    assert not [p for p in lib.dir.iterdir() if p.name.startswith(".moods")]  # its temp file too


def test_a_name_near_the_255_byte_limit_is_tagged_and_its_leftover_cleared(tmp_path):
    """A temp copy's name adds 22 bytes to the file's: a long accented or CJK title must still fit."""
    from mer_tag.tags.replace import NAME_MAX, temp_stem

    folder = tmp_path / "lib"
    long_name = "é" * 116 + ".mp3"  # 236 bytes
    track = write_audio(folder / long_name, tone(seconds=1.0))
    original = track.read_bytes()
    results = folder / "moods.csv"
    probs = ",".join(["0.1", "0.6", "0.1", "0.1", "0.1"])
    results.write_text(
        "path,status,size,mtime,cluster,cluster_name,confidence,"
        + ",".join(f"prob_cluster_{k}" for k in range(1, 6))
        + f",model\n{track},ok,{track.stat().st_size},{track.stat().st_mtime},2,Cheerful,0.6,{probs},default@0.1.0\n",
        encoding="utf-8",
    )
    summary = tags.write_tags(results, journal=tmp_path / "j.jsonl")
    assert by_name(summary)[long_name].action == "tagged", by_name(summary)[long_name].detail
    assert raw_field(track, "TMOO") == ["Cheerful"]
    stem = temp_stem(long_name)
    assert len(f".{stem}.abcdefgh.mer-tag.mp3".encode()) <= NAME_MAX and stem.endswith(".mp3") and "~" in stem
    leftover = folder / f".{stem}.abcdefgh.mer-tag.mp3"  # as a run killed mid-copy leaves it
    shutil.copy(track, leftover)
    assert tags.untag(tmp_path / "j.jsonl").cleared == [leftover]
    assert track.read_bytes() == original and not leftover.exists()
    stray = folder / f".{temp_stem('é' * 117 + '.mp3')}.abcdefgh.mer-tag.mp3"  # its original is not there
    shutil.copy(track, stray)
    assert tags.untag(tmp_path / "j.jsonl", force=True).cleared == [] and stray.exists()
