"""The beets plugin (beetsplug/mertag.py) in a real beets library: beets from the registry, a temporary library
and config (BEETSDIR), generated tracks imported with `beet import -A`, every command run as a user runs it
(`python -m beets …` in a subprocess: beets' plugins, config and MediaFile fields are process-wide, so each
command gets a fresh process, as on a command line)."""

from __future__ import annotations

import csv
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("beets", reason="the beets plugin's tests need beets (pip install 'mer-tag[beets]')")

from media import CONTAINERS, tone, write_audio, write_tags  # noqa: E402
from mer_tag.labels import MIREX  # noqa: E402

TRACKS = 20
NON_UTF8 = b"caf\xe9"  # a Latin-1 name (then the track's extension): not UTF-8, still a track
TEMPLATE = "name-confidence"  # "Wistful (61%)": a template whose text comes from two row values
ANALYSIS = ("mood_name", "mood_cluster", "mood_confidence", "mood_runner_up", "mood_model")


class Beets:
    """One beets library in a folder: its config, its database, and `beet` run against them."""

    def __init__(self, root: Path, model: Path | str, **mertag: object):
        self.root, self.music, self.db = root, root / "music", root / "library.db"
        self.music.mkdir(parents=True, exist_ok=True)
        self.configure(model, **mertag)

    def configure(self, model: Path | str, id3v23: bool = False, write: bool = False, **mertag: object) -> None:
        options = {"model": str(model), "auto": False, "template": TEMPLATE, "min_confidence": 0, **mertag}
        lines = [
            f"directory: {self.root / 'library'}",
            f"library: {self.db}",
            "plugins: mertag",
            f"id3v23: {'yes' if id3v23 else 'no'}",
            "import:",
            "  copy: no",
            f"  write: {'yes' if write else 'no'}",
            "  duplicate_action: keep",
            "  log:",
            "mertag:",
            *(f"  {key}: {_yaml(value)}" for key, value in options.items()),
        ]
        (self.root / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def beet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "BEETSDIR": str(self.root), "HOME": str(self.root)}  # never the user's config
        done = subprocess.run(
            [sys.executable, "-m", "beets", *args], env=env, capture_output=True, text=True, timeout=600
        )
        if check and done.returncode != 0:
            raise AssertionError(f"beet {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def attributes(self) -> dict[bytes, dict[str, str]]:
        """path → flexible attributes, as stored (text), for every item."""
        with sqlite3.connect(self.db) as db:
            paths = dict(db.execute("SELECT id, path FROM items"))
            found: dict[bytes, dict[str, str]] = {bytes(p): {} for p in paths.values()}
            for item, key, value in db.execute("SELECT entity_id, key, value FROM item_attributes"):
                found[bytes(paths[item])][key] = value
        return found

    def paths(self, *query: str) -> set[bytes]:
        """The paths of the items `beet ls QUERY` lists (one a line, bytes as beets has them)."""
        listing = self.beet("ls", "-f", "$id", *query).stdout.split()
        with sqlite3.connect(self.db) as db:
            return {bytes(db.execute("SELECT path FROM items WHERE id = ?", (int(i),)).fetchone()[0]) for i in listing}


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if isinstance(value, int | float) else "'" + str(value).replace("'", "''") + "'"


def make_tracks(folder: Path, count: int, seconds: float = 4.0, first: int = 0) -> list[Path]:
    """`count` tagged tones in every container in turn (one name not UTF-8), each its own album."""
    paths = []
    for k in range(first, first + count):
        ext = CONTAINERS[k % len(CONTAINERS)]
        path = write_audio(folder / f"t{k:02d}.{ext}", tone(seconds, 180.0 + 45 * k, noise=0.02 + 0.01 * k, seed=k))
        write_tags(path, title=f"Song {k}", artist=f"Artist {k}", album=f"Album {k}")
        paths.append(path)
    if first == 0:  # the last one gets a name that is not UTF-8
        renamed = os.path.join(os.fsencode(folder), NON_UTF8 + os.fsencode(paths[-1].suffix))
        os.rename(os.fsencode(paths[-1]), renamed)
        paths[-1] = Path(os.fsdecode(renamed))
    return paths


def file_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def analysed(attributes: dict[str, str]) -> bool:
    return all(attributes.get(name) for name in ANALYSIS)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> Path:
    """20 generated tracks, written once: each test copies them into its own library."""
    folder = tmp_path_factory.mktemp("tracks")
    make_tracks(folder, TRACKS)
    return folder


def library_with(tmp_path: Path, tracks: Path, model, **mertag) -> Beets:
    import shutil

    lib = Beets(tmp_path, model, **mertag)
    for path in tracks.iterdir():
        shutil.copy2(path, os.path.join(os.fsencode(lib.music), os.fsencode(path.name)))
    lib.beet("import", "-A", "-q", str(lib.music))
    return lib


@pytest.fixture(scope="module")
def moods(tiny_model, tracks, tmp_path_factory) -> tuple[Beets, subprocess.CompletedProcess]:
    """A library of 20 items analysed by `beet mood` (the tiny model), and what that run printed."""
    lib = library_with(tmp_path_factory.mktemp("beets"), tracks, tiny_model)
    return lib, lib.beet("mood")


# --- beet mood -----------------------------------------------------------------------------------------


def test_mood_fills_every_item_with_typed_attributes(moods):
    lib, run = moods
    attributes = lib.attributes()
    assert len(attributes) == TRACKS and os.path.join(os.fsencode(lib.music), NON_UTF8 + b".opus") in attributes
    names = set(MIREX.names)
    for path, found in attributes.items():
        assert analysed(found), path
        assert found["mood_name"] in names and found["mood_runner_up"] in names - {found["mood_name"]}
        assert MIREX.names[int(found["mood_cluster"]) - 1] == found["mood_name"]
        assert found["mood"] == f"{found['mood_name']} ({float(found['mood_confidence']):.0%})"  # the template's
        assert found["mood_model"] == "tiny@0.0.1" and "mood_error" not in found
    assert "mertag: 20 analysed, 0 failed, 0 skipped" in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("mertag: Artist ")]) == TRACKS


def test_a_second_run_does_no_work(moods):
    lib, _ = moods
    before, files = lib.attributes(), file_digests(lib.music)
    again = lib.beet("-v", "mood")
    assert "mertag: 0 analysed, 0 failed, 20 skipped (done before by tiny@0.0.1)" in again.stderr
    assert again.stderr.count("already done by tiny@0.0.1") == TRACKS and "loading" not in again.stderr  # no model
    assert lib.attributes() == before and file_digests(lib.music) == files


def test_force_analyses_again(moods):
    lib, _ = moods
    run = lib.beet("-v", "mood", "-f", "artist:Artist 1")  # Artist 1, Artist 10 … 19
    assert "mertag: 11 analysed, 0 failed, 0 skipped" in run.stderr
    assert "mertag: loading tiny@0.0.1 beside 2 decode processes" in run.stderr
    assert all(analysed(found) for found in lib.attributes().values())


def test_pretend_lists_the_work_and_changes_nothing(tiny_model, tracks, tmp_path):
    lib = library_with(tmp_path, tracks, tiny_model)
    before, files = lib.attributes(), file_digests(lib.music)
    run = lib.beet("mood", "-p", "-w")
    assert run.stdout.count("would analyse: ") == TRACKS and "mertag: 20 would be analysed" in run.stderr
    assert lib.attributes() == before and file_digests(lib.music) == files
    assert not any(key.startswith("mood_") for found in before.values() for key in found)


def test_a_broken_file_is_one_line_and_the_others_are_filled(tiny_model, tmp_path):
    lib = Beets(tmp_path, tiny_model)
    good, gone = make_tracks(lib.music, 2, first=30), lib.music / "gone.flac"
    write_tags(write_audio(gone, tone(6, 500)), title="Gone", artist="Gone", album="Gone")
    whole = write_tags(write_audio(tmp_path / "whole.flac", tone(8, 440)), title="Cut", artist="Cut", album="Cut")
    cut = lib.music / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # beets reads its tags; the audio stops short
    lib.beet("import", "-A", "-q", str(lib.music))
    gone.unlink()  # since the import
    run = lib.beet("mood")
    warnings = sorted(line for line in run.stderr.splitlines() if line.startswith("mertag: cannot analyse"))
    assert len(warnings) == 2 and warnings[0].startswith(f"mertag: cannot analyse {cut}: truncated: decoded ")
    assert warnings[1] == f"mertag: cannot analyse {gone}: file not found"
    assert "mertag: 2 analysed, 2 failed, 0 skipped" in run.stderr
    attributes = lib.attributes()
    assert all(analysed(attributes[os.fsencode(path)]) for path in good)
    failed = attributes[os.fsencode(cut)]
    assert failed["mood_error"] == warnings[0].split(": ", 2)[2] and failed["mood_model"] == "tiny@0.0.1"
    assert not any(
        failed.get(name) for name in (*ANALYSIS, "mood") if name != "mood_model"
    )  # mood: "" (read at import)
    assert lib.paths("mood_error::.") == {os.fsencode(cut), os.fsencode(gone)}
    assert "0 analysed, 0 failed, 4 skipped" in lib.beet("mood").stderr  # failures are not retried unasked


def test_a_bad_template_or_model_is_one_line_before_any_work(tiny_model, tracks, tmp_path):
    lib = library_with(tmp_path, tracks, tiny_model, template="{nope}")
    run = lib.beet("mood", check=False)
    assert run.returncode == 1 and run.stderr.splitlines() == [
        "error: mertag: template '{nope}': unknown field 'nope' (fields: name, cluster, adjectives, confidence, "
        "model, runner_up_name, quadrant, quadrant_name, valence, arousal)"
    ]
    lib.configure(tmp_path / "no-such-model")
    run = lib.beet("mood", check=False)
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith(f"error: mertag: model '{tmp_path / 'no-such-model'}': ")
    lib.configure(tiny_model, jobs=10000)  # a typo must not start ten thousand processes
    run = lib.beet("mood", check=False)
    assert run.returncode == 1 and run.stderr.splitlines() == [
        "error: mertag: jobs 10000: use 0 to 256 decode processes"
    ]
    assert not any(key.startswith("mood_") for found in lib.attributes().values() for key in found)


# --- lyrics ------------------------------------------------------------------------------------------


def test_beets_lyrics_are_the_lyrics_and_a_sidecar_serves_where_beets_has_none(tiny_model, tmp_path):
    """Three copies of one audio: one with lyrics in beets' `lyrics` field, one with the same words in a
    sidecar, one with none. The tiny model's fused confidence moves with its lyrics input."""
    lib = Beets(tmp_path, tiny_model)
    words = "I walk alone beneath the autumn rain\nand every leaf remembers you"
    for name in ("library", "sidecar", "none"):
        write_tags(write_audio(lib.music / f"{name}.flac", tone(6, 300)), title=name, artist=name, album=name)
    (lib.music / "sidecar.txt").write_text(words + "\n", encoding="utf-8")
    lib.beet("import", "-A", "-q", str(lib.music))
    lib.beet("modify", "-y", "-W", f"lyrics={words}", "title:library")
    lib.beet("mood")
    confidence = {
        name: float(lib.attributes()[os.fsencode(lib.music / f"{name}.flac")]["mood_confidence"])
        for name in ("library", "sidecar", "none")
    }
    assert confidence["library"] == pytest.approx(confidence["sidecar"], abs=1e-6)
    assert abs(confidence["library"] - confidence["none"]) > 1e-6


# --- beet import ---------------------------------------------------------------------------------------


def test_auto_fills_what_beet_import_brings_in(tiny_model, tracks, tmp_path):
    lib = library_with(tmp_path, tracks, tiny_model, auto=True, write=True)
    attributes = lib.attributes()
    assert len(attributes) == TRACKS and all(analysed(found) for found in attributes.values())
    newer = tmp_path / "newer"
    make_tracks(newer, 3, first=40)
    run = lib.beet("-vv", "import", "-A", "-q", "-s", str(newer))  # -s: a task a track; -vv: the plugin's debug lines
    assert "mertag: moods of 3 imported items, 0 failed" in run.stderr
    assert run.stderr.count("mertag: loading tiny@0.0.1") == 1  # one engine for the three tasks
    attributes = lib.attributes()
    assert len(attributes) == TRACKS + 3 and all(analysed(found) for found in attributes.values())
    for path, found in attributes.items():  # import.write: the mood is in the file too
        assert mood_fields(Path(os.fsdecode(path))) == {_mood_key(path): [found["mood"]]}


# --- writing -------------------------------------------------------------------------------------------


def _mood_key(path: bytes) -> str:
    """Where mer-tag puts the mood (docs/tagging.md): these files' ID3 tags are v2.4."""
    from mer_tag.tags import field_key

    name = path.lower()
    if name.endswith((b".mp3", b".wav", b".aiff")):
        return field_key("id3v2.4")
    return field_key("mp4") if name.endswith(b".m4a") else field_key("vorbis")


def mood_fields(path: Path) -> dict[str, list[str]]:
    """Every mood field of the file (any spelling), as mutagen reads it."""
    import mutagen
    from mutagen._vorbis import VComment
    from mutagen.id3 import ID3

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return {}
    if isinstance(audio.tags, ID3):
        frames = [
            f for f in audio.tags.values() if f.FrameID == "TMOO" or (f.FrameID == "TXXX" and f.desc.upper() == "MOOD")
        ]
        return {f.HashKey: [str(t) for t in f.text] for f in frames}
    found: dict[str, list[str]] = {}
    if isinstance(audio.tags, VComment):  # pairs, keys spelled as stored
        for key, value in audio.tags:
            if key.upper() == "MOOD":
                found.setdefault(key, []).append(value)
        return found
    for key in audio.tags.keys():
        if key.upper() == "MOOD" or (key.startswith("----:") and key.rsplit(":", 1)[-1].upper() == "MOOD"):
            found[key] = [bytes(v).decode() if isinstance(v, bytes) else str(v) for v in audio.tags[key]]
    return found


def test_beet_write_writes_what_mer_tag_tag_writes(moods, tmp_path):
    """`beet write` against `mer-tag tag` from a results file holding the same rows, on copies of the files
    (the name that is not UTF-8 among them, spelled in the results as mer-tag spells it)."""
    import shutil

    from mer_tag.sinks.paths import path_text
    from mer_tag.tags import write_tags as mer_tag_tag

    lib, _ = moods
    attributes = lib.attributes()
    copies, results = tmp_path / "copies", tmp_path / "moods.csv"
    copies.mkdir()
    with results.open("w", newline="", encoding="utf-8") as out:
        rows = csv.writer(out)
        rows.writerow(["path", "status", "cluster", "cluster_name", "confidence", "model"])
        for path, found in attributes.items():
            copy = shutil.copy2(os.fsdecode(path), copies)
            rows.writerow(
                [path_text(copy), "ok", found["mood_cluster"], found["mood_name"], found["mood_confidence"], "x"]
            )
    tagged = mer_tag_tag(results, template=TEMPLATE, min_confidence=0, journal=tmp_path / "journal.jsonl")
    assert tagged.count("tagged") == TRACKS, tagged.failed
    assert lib.beet("write", "-p").stdout.count("mood:") == TRACKS  # `beet write` sees the mood is not in the files
    lib.beet("write")
    for path, found in attributes.items():
        ours = mood_fields(Path(os.fsdecode(path)))
        theirs = mood_fields(copies / os.fsdecode(os.path.basename(path)))
        assert ours == theirs == {_mood_key(path): [found["mood"]]}, path
    assert "mood:" not in lib.beet("write", "-p").stdout  # written: nothing left to write


def test_id3v23_gets_txxx_mood_and_one_spelling_only(tiny_model, tracks, tmp_path):
    from mer_tag.tags import read_mood

    lib = library_with(tmp_path, tracks, tiny_model, id3v23=True, write=True)
    lib.beet("mood")
    for path, found in lib.attributes().items():
        fields = mood_fields(Path(os.fsdecode(path)))
        if path.endswith(b".mp3"):
            assert fields == {"TXXX:MOOD": [found["mood"]]}, path
            assert read_mood(os.fsdecode(path)) == found["mood"]


def test_a_mood_the_item_had_is_kept_unless_overwrite_and_ours_follows_the_template(tiny_model, tmp_path):
    import mutagen

    lib = Beets(tmp_path, tiny_model, write=True)
    mine, plain = (
        write_tags(write_audio(lib.music / f"{name}.flac", tone(6, 300)), title=name, artist=name, album=name)
        for name in ("mine", "plain")
    )
    audio = mutagen.File(mine)
    audio["MOOD"] = ["Sunday morning"]
    audio.save()
    lib.beet("import", "-A", "-q", str(lib.music))
    run = lib.beet("mood")
    assert "kept its mood 'Sunday morning'" in run.stderr
    found = lib.attributes()[os.fsencode(mine)]
    assert found["mood"] == "Sunday morning" and found["mood_kept"] == "1" and analysed(found)
    assert mood_fields(mine) == {"MOOD": ["Sunday morning"]}

    lib.configure(tiny_model, write=True, template="name")  # another template, then everything again
    assert "kept its mood 'Sunday morning'" in lib.beet("mood", "-f").stderr
    attributes = lib.attributes()
    assert attributes[os.fsencode(mine)]["mood"] == "Sunday morning" and mood_fields(mine) == {
        "MOOD": ["Sunday morning"]
    }
    ours = attributes[os.fsencode(plain)]
    assert ours["mood"] == ours["mood_name"] and mood_fields(plain) == {"MOOD": [ours["mood_name"]]}

    lib.configure(tiny_model, write=True, template="name", overwrite=True)
    lib.beet("mood", "-f")
    found = lib.attributes()[os.fsencode(mine)]
    assert found["mood"] == found["mood_name"] and mood_fields(mine) == {"MOOD": [found["mood"]]}
    assert "mood_kept" not in found


def test_a_failed_analysis_leaves_the_mood_whose_it_was(tiny_model, tmp_path):
    """A file away for one run (an unmounted disk) fails that run. Back, mer-tag's own mood follows the next
    analysis again; a mood the item had of its own stays kept, though mer-tag's first mark on it was a failure."""
    lib = Beets(tmp_path, tiny_model)
    ours, mine = (
        write_tags(write_audio(lib.music / f"{name}.flac", tone(6, 300)), title=name, artist=name, album=name)
        for name in ("ours", "mine")
    )
    lib.beet("import", "-A", "-q", str(lib.music))
    lib.beet("mood", "title:ours")
    lib.beet("modify", "-y", "mood=Sunday morning", "title:mine")
    away = tmp_path / "away"
    away.mkdir()
    for path in (ours, mine):
        path.rename(away / path.name)
    assert "file not found" in lib.beet("mood", "-f").stderr
    for path in (ours, mine):
        (away / path.name).rename(path)
    lib.configure(tiny_model, template="name")  # another template: a mood of mer-tag's follows it
    run = lib.beet("mood", "-f")
    found = lib.attributes()
    assert found[os.fsencode(ours)]["mood"] == found[os.fsencode(ours)]["mood_name"]
    assert "mood_kept" not in found[os.fsencode(ours)] and "kept its mood" in run.stderr
    assert found[os.fsencode(mine)]["mood"] == "Sunday morning" and found[os.fsencode(mine)]["mood_kept"] == "1"


def test_a_mood_the_user_sets_after_an_analysis_is_kept_unless_overwrite(tiny_model, tmp_path):
    lib = Beets(tmp_path, tiny_model)
    song = write_tags(write_audio(lib.music / "s.flac", tone(6, 300)), title="s", artist="s", album="s")
    lib.beet("import", "-A", "-q", str(lib.music))
    lib.beet("mood")
    assert lib.attributes()[os.fsencode(song)]["mood_given"] == lib.attributes()[os.fsencode(song)]["mood"]
    lib.beet("modify", "-y", "mood=My mood", "title:s")
    assert "kept its mood 'My mood'" in lib.beet("mood", "-f").stderr
    found = lib.attributes()[os.fsencode(song)]
    assert found["mood"] == "My mood" and found["mood_kept"] == "1"
    lib.configure(tiny_model, overwrite=True)
    lib.beet("mood", "-f")
    found = lib.attributes()[os.fsencode(song)]
    assert found["mood"] == found["mood_given"] != "My mood" and "mood_kept" not in found


def test_w_writes_the_moods_an_earlier_run_only_stored(tiny_model, tmp_path):
    lib = Beets(tmp_path, tiny_model)  # import.write: no
    song = write_tags(write_audio(lib.music / "s.flac", tone(6, 300)), title="s", artist="s", album="s")
    lib.beet("import", "-A", "-q", str(lib.music))
    lib.beet("mood")
    assert mood_fields(song) == {}  # stored in the database only
    lib.beet("mood", "-f", "-w")  # the same moods again: -w writes them anyway
    assert mood_fields(song) == {"MOOD": [lib.attributes()[os.fsencode(song)]["mood"]]}


def test_weights_that_do_not_load_are_one_line(tiny_model, tracks, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "fusion.safetensors").unlink()
    lib = library_with(tmp_path, tracks, broken)
    run = lib.beet("mood", check=False)
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"error: mertag: model '{broken}': ")
    assert not any(key.startswith("mood_") for found in lib.attributes().values() for key in found)


# --- queries (the shipped model: it has the valence–arousal head) -----------------------------------------


@pytest.fixture(scope="module")
def default_moods(tracks, tmp_path_factory) -> Beets:
    lib = library_with(tmp_path_factory.mktemp("beets-default"), tracks, "default")
    lib.beet("mood")
    return lib


def test_range_queries_on_valence_and_arousal_return_exactly_the_right_items(default_moods):
    lib = default_moods
    values = {
        path: (float(found["mood_valence"]), float(found["mood_arousal"])) for path, found in lib.attributes().items()
    }
    assert len(values) == TRACKS and all(0 <= v <= 1 and 0 <= a <= 1 for v, a in values.values())
    valence = sorted(v for v, _ in values.values())[TRACKS // 2]  # a threshold that splits the library
    arousal = sorted(a for _, a in values.values())[TRACKS // 3]
    assert lib.paths(f"mood_valence:{valence}..") == {p for p, (v, _) in values.items() if v >= valence}
    assert lib.paths(f"mood_valence:..{valence}", f"mood_arousal:{arousal}..") == {
        p for p, (v, a) in values.items() if v <= valence and a >= arousal
    }
    assert 0 < len(lib.paths(f"mood_valence:{valence}..")) < TRACKS
    quadrant = int(lib.attributes()[next(iter(values))]["mood_quadrant"])
    assert lib.paths(f"mood_quadrant:{quadrant}") == {
        p for p, found in lib.attributes().items() if int(found["mood_quadrant"]) == quadrant
    }
