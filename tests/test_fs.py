"""mer_tag._fs: a file or folder written whole or not at all, never a moment without one."""

import os

import pytest

from mer_tag import _fs


class _Boom(Exception):
    pass


def test_a_file_is_replaced_whole_or_left_as_it_was(tmp_path):
    target = tmp_path / "results.csv"
    _fs.write_text(target, "old\n")
    with pytest.raises(_Boom):
        with _fs.atomic_file(target) as tmp:
            tmp.write_text("half of the new")
            raise _Boom
    assert target.read_text() == "old\n"
    _fs.write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]  # no temp file left behind


def test_written_files_and_folders_are_readable_by_others_as_new_files_are(tmp_path):
    umask = os.umask(0o022)
    try:
        file = _fs.write_text(tmp_path / "a.txt", "x")
        with _fs.atomic_folder(tmp_path / "model") as tmp:
            (tmp / "w.bin").write_bytes(b"1")
    finally:
        os.umask(umask)
    assert file.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755  # mkdtemp made it 0o700
    assert (tmp_path / "model" / "w.bin").stat().st_mode & 0o777 == 0o644


def test_a_folder_replaces_a_folder_or_a_file_and_the_old_one_is_there_until_then(tmp_path):
    target = tmp_path / "model"
    with _fs.atomic_folder(target) as tmp:
        (tmp / "card.json").write_text("1")
    with _fs.atomic_folder(target) as tmp:
        assert (target / "card.json").read_text() == "1"  # the old folder is whole while the new one is made
        (tmp / "card.json").write_text("2")
    assert (target / "card.json").read_text() == "2"
    with pytest.raises(_Boom):
        with _fs.atomic_folder(target) as tmp:
            (tmp / "card.json").write_text("half")
            raise _Boom
    assert (target / "card.json").read_text() == "2"
    single = tmp_path / "moods.parquet"
    single.write_text("a single file")
    with _fs.atomic_folder(single) as tmp:
        (tmp / "part-000000.parquet").write_text("a part")
    assert single.is_dir() and [p.name for p in single.iterdir()] == ["part-000000.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "moods.parquet"]  # nothing else left


def test_a_staged_file_is_made_outside_the_folder_it_lands_in(tmp_path):
    folder = tmp_path / "moods.parquet"
    folder.mkdir()
    with _fs.atomic_file(folder / "part-000001.parquet", staging=tmp_path) as tmp:
        assert tmp.parent == tmp_path
        tmp.write_text("rows")
        assert list(folder.iterdir()) == []  # a reader of the folder never meets the temp file
    assert (folder / "part-000001.parquet").read_text() == "rows"
