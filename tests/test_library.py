"""mer_tag.library.walk: which files, in what order, each once, and which lyrics and MIDI go with them.

walk only lists folders, so empty files stand in for audio here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from mer_tag.library import Track, walk


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def relative(tracks, root: Path) -> list[str]:
    return [t.path.relative_to(root).as_posix() for t in tracks]


def by_name(tracks) -> dict[str, Track]:
    return {t.path.name: t for t in tracks}


def test_nested_folders_sorted_audio_only_hidden_skipped(tmp_path):
    touch(
        tmp_path,
        "b.mp3",
        "a.FLAC",
        "notes.txt",
        "cover.jpg",
        "song.Opus",
        "x.m4a",
        "sub/z.ogg",
        "sub/deeper/y.WAV",
        "sub/deeper/readme.md",
        ".hidden.mp3",
        "._a.FLAC",
        ".git/objects/k.mp3",
        "sub/.cache/c.mp3",
        "sub/._z.ogg",
    )
    tracks = list(walk([tmp_path]))
    expected = ["a.FLAC", "b.mp3", "song.Opus", "sub/deeper/y.WAV", "sub/z.ogg", "x.m4a"]
    assert relative(tracks, tmp_path) == expected
    assert all(t.path.is_absolute() for t in tracks)


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    touch(tmp_path, "music/a.mp3")
    monkeypatch.chdir(tmp_path)
    assert [t.path for t in walk(["music"])] == [tmp_path / "music" / "a.mp3"]


def test_symlink_loop_terminates_and_yields_each_file_once(tmp_path):
    touch(tmp_path, "lib/a.mp3", "lib/sub/b.flac")
    os.symlink(tmp_path / "lib", tmp_path / "lib" / "sub" / "loop")  # sub/loop -> lib: a cycle
    os.symlink(tmp_path / "lib" / "a.mp3", tmp_path / "lib" / "sub" / "alias.mp3")  # same real file
    tracks = list(walk([tmp_path / "lib"]))
    assert relative(tracks, tmp_path / "lib") == ["a.mp3", "sub/b.flac"]


def test_symlinked_folder_outside_is_followed(tmp_path):
    touch(tmp_path, "elsewhere/far.ogg", "lib/near.mp3")
    os.symlink(tmp_path / "elsewhere", tmp_path / "lib" / "linked")
    assert relative(walk([tmp_path / "lib"]), tmp_path / "lib") == ["linked/far.ogg", "near.mp3"]


def test_overlapping_roots_and_explicit_files_yield_each_file_once(tmp_path):
    touch(tmp_path, "lib/a.mp3", "lib/sub/b.mp3", "lib/notes.txt")
    roots = [tmp_path / "lib/sub/b.mp3", tmp_path / "lib/sub", tmp_path / "lib", tmp_path / "lib/notes.txt"]
    assert relative(walk(roots), tmp_path / "lib") == ["sub/b.mp3", "a.mp3"]


def test_missing_path_raises_before_anything_is_yielded(tmp_path):
    touch(tmp_path, "a.mp3")
    tracks = walk([tmp_path, tmp_path / "typo"])
    with pytest.raises(FileNotFoundError, match="typo"):
        next(tracks)


def test_unicode_and_emoji_names_match_their_sidecars(tmp_path):
    touch(tmp_path, "Björk – Jóga 🎵.flac", "Björk – Jóga 🎵.txt", "日本語の歌.mp3", "日本語の歌.mid")
    tracks = by_name(walk([tmp_path]))
    assert tracks["Björk – Jóga 🎵.flac"].lyrics_path == tmp_path / "Björk – Jóga 🎵.txt"
    assert tracks["日本語の歌.mp3"].midi_path == tmp_path / "日本語の歌.mid"


def test_same_folder_sidecars_by_stem_with_any_extension_case(tmp_path):
    touch(
        tmp_path,
        "Song.flac",
        "Song.lrc",
        "Song.TXT",
        "Song.midi",
        "Song.MID",  # .txt beats .lrc, .mid beats .midi
        "Other.mp3",
        "Other.lrc",
        "Other.Midi",
        "Lone.ogg",
        "lone.txt",
        "Lone.flac.txt",
        ".Lone.txt",  # stem must match exactly, hidden ignored
    )
    tracks = by_name(walk([tmp_path]))
    assert tracks["Song.flac"] == Track(tmp_path / "Song.flac", tmp_path / "Song.TXT", tmp_path / "Song.MID")
    assert tracks["Other.mp3"] == Track(tmp_path / "Other.mp3", tmp_path / "Other.lrc", tmp_path / "Other.Midi")
    assert tracks["Lone.ogg"] == Track(tmp_path / "Lone.ogg")


def test_dataset_layout_is_recognised_from_any_starting_point(tmp_path):
    data = tmp_path / "MIREX-like"
    touch(
        data,
        "Audio/002.mp3",
        "Audio/003.mp3",
        "Lyrics/002.txt",
        "MIDIs/002.mid",
        "MIDIs/003.mid",
        "Audio/Cluster 1/004.mp3",
        "Lyrics/Cluster 1/004.txt",
        "Lyrics/004.txt",
    )
    expected = {
        "002.mp3": (data / "Lyrics/002.txt", data / "MIDIs/002.mid"),
        "003.mp3": (None, data / "MIDIs/003.mid"),
        "004.mp3": (data / "Lyrics/Cluster 1/004.txt", None),  # same relative path, not the top
    }
    for start in (data, data / "Audio"):
        tracks = by_name(walk([start]))
        assert {name: (t.lyrics_path, t.midi_path) for name, t in tracks.items()} == expected
    assert next(walk([data / "Audio/002.mp3"])).lyrics_path == data / "Lyrics/002.txt"


def test_sidecar_beside_the_audio_wins_over_the_dataset_layout(tmp_path):
    touch(tmp_path, "Audio/002.mp3", "Audio/002.lrc", "Lyrics/002.txt")
    assert next(walk([tmp_path])).lyrics_path == tmp_path / "Audio/002.lrc"


def test_parallel_trees_then_their_top_then_the_folder(tmp_path):
    touch(
        tmp_path,
        "music/Artist/Album/01 Song.flac",
        "music/Artist/Album/01 Song.txt",
        "music/Artist/Album/02 Other.mp3",
        "music/Top.ogg",
        "lyrics/Artist/Album/01 Song.lrc",
        "lyrics/02 Other.txt",
        "midi/Artist/Album/01 Song.mid",
        "midi/Top.midi",
    )
    tracks = by_name(walk([tmp_path / "music"], lyrics_dir=tmp_path / "lyrics", midi_dir=tmp_path / "midi"))
    song, other, top = tracks["01 Song.flac"], tracks["02 Other.mp3"], tracks["Top.ogg"]
    assert song.lyrics_path == tmp_path / "lyrics/Artist/Album/01 Song.lrc"  # the given tree wins
    assert song.midi_path == tmp_path / "midi/Artist/Album/01 Song.mid"
    assert other.lyrics_path == tmp_path / "lyrics/02 Other.txt"  # the tree's top, as a fallback
    assert (other.midi_path, top.lyrics_path) == (None, None)
    assert top.midi_path == tmp_path / "midi/Top.midi"
    without = by_name(walk([tmp_path / "music"]))
    assert without["01 Song.flac"].lyrics_path == tmp_path / "music/Artist/Album/01 Song.txt"


def test_a_file_given_directly_matches_the_top_of_a_parallel_tree(tmp_path):
    touch(tmp_path, "music/deep/a.mp3", "lyrics/a.txt")
    track = next(walk([tmp_path / "music/deep/a.mp3"], lyrics_dir=tmp_path / "lyrics"))
    assert track.lyrics_path == tmp_path / "lyrics/a.txt"


def test_a_file_and_its_folder_given_each_find_their_own_place_in_a_parallel_tree(tmp_path):
    touch(tmp_path, "lib/sub/x.flac", "lib/sub/y.flac", "L/x.txt", "L/sub/y.txt", "L/y.txt")
    tracks = by_name(walk([tmp_path / "lib/sub/x.flac", tmp_path / "lib"], lyrics_dir=tmp_path / "L"))
    assert tracks["x.flac"].lyrics_path == tmp_path / "L/x.txt"  # given alone: the tree's top
    assert tracks["y.flac"].lyrics_path == tmp_path / "L/sub/y.txt"  # below the folder given: the same place


def test_unreadable_folder_is_skipped_with_a_warning(tmp_path, caplog, monkeypatch):
    touch(tmp_path, "ok/a.mp3", "locked/b.mp3")
    scandir = os.scandir

    def refuse_locked(path):  # chmod 000 would not stop root, so refuse the listing here
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    assert relative(walk([tmp_path]), tmp_path) == ["ok/a.mp3"]
    assert "skipping folder" in caplog.text and "permission denied" in caplog.text


def test_track_is_a_frozen_value():
    track = Track(Path("a.mp3"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        track.path = Path("b.mp3")  # type: ignore[misc]
    assert track == Track(Path("a.mp3"), None, None)
