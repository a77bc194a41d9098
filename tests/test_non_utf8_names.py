"""File and folder names that are not UTF-8 (Latin-1 names from old disks and Samba shares) work in every
command like any other file: scan writes them losslessly in every format, resume finds them, tag and untag
reach the file, the report links to it and the playlists point at it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from media import tone, write_audio
from mer_tag.cli import main
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.sinks.paths import path_of, path_text, shown


def latin1(name: bytes) -> str:
    """A name as Python hands over one that is not UTF-8 (PEP 383 stand-ins for the odd bytes)."""
    return os.fsdecode(name)


@pytest.fixture()
def library(tmp_path) -> Path:
    lib = tmp_path / "Music"
    band = lib / latin1(b"Mot\xf6rhead")
    try:
        band.mkdir(parents=True)
    except OSError:
        pytest.skip("this filesystem refuses names that are not UTF-8")
    # written under plain names and renamed: the fixtures' own writer takes only UTF-8 names
    os.rename(write_audio(lib / "made.flac", tone(4, 300)), band / latin1(b"caf\xe9.flac"))
    os.rename(write_audio(lib / "made.mp3", tone(4, 400)), band / "Ace.mp3")
    write_audio(lib / "plain.wav", tone(4, 500))
    return lib


def digests(lib: Path) -> dict[str, str]:
    return {os.fsencode(p).hex(): hashlib.sha256(p.read_bytes()).hexdigest() for p in lib.rglob("*") if p.is_file()}


def test_a_path_that_is_not_utf8_is_a_file_uri_of_its_bytes_and_back():
    odd = "/Music/" + latin1(b"Mot\xf6rhead") + "/" + latin1(b"caf\xe9 #1 100%.mp3")
    text = path_text(odd)
    assert text == "file:///Music/Mot%F6rhead/caf%E9%20%231%20100%25.mp3"
    assert text.encode("utf-8") and path_of(text) == odd
    assert shown(text) == "/Music/Mot\ufffdrhead/caf\ufffd #1 100%.mp3"
    plain = "/Music/Café 100% #1.mp3"  # valid UTF-8 stays as it is, percent signs and all
    assert path_text(plain) == plain and path_of(plain) == plain


def test_timeline_over_rows_already_done_counts_names_that_are_not_utf8_too(library, tiny_model, tmp_path):
    out = tmp_path / "moods.csv"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    again = scan([library], out=out, model=tiny_model, jobs=0, progress=False, timeline=True)
    assert again.skipped == 3 and again.unmet[0].startswith("3 tracks already done have no timeline")


@pytest.mark.parametrize("name", ["moods.csv", "moods.jsonl", "moods.parquet"])
def test_scan_writes_every_name_losslessly_and_resumes_on_it(library, tiny_model, tmp_path, name):
    out = tmp_path / name
    first = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (first.ok, first.failed) == (3, 0)
    rows = read_results(out)
    files = {os.fsencode(path_of(p)) for p in rows["path"]}
    assert files == {os.fsencode(p) for p in library.rglob("*") if p.is_file()}
    again = scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert (again.ok, again.skipped) == (0, 3)


def test_tag_and_untag_reach_the_file_and_put_back_every_byte(library, tiny_model, tmp_path, capsys):
    out = tmp_path / "moods.csv"
    assert main(["scan", str(library), "--model", str(tiny_model), "-o", str(out), "-j", "0", "-q"]) == 0
    before = digests(library)
    journal = tmp_path / "tags.jsonl"
    assert main(["tag", str(out), "--min-confidence", "0", "--journal", str(journal)]) == 0
    tagged = digests(library)
    assert all(tagged[k] != before[k] for k in before)  # every file, the Latin-1 one included, got its mood
    assert main(["scan", str(library), "--model", str(tiny_model), "-o", str(out), "-j", "0", "-q"]) == 0
    assert "0 ok" not in capsys.readouterr().err  # quiet: nothing printed; the rows were restamped
    assert main(["untag", str(journal)]) == 0
    assert digests(library) == before


def test_report_and_playlists_point_at_the_file(library, tiny_model, tmp_path):
    out = tmp_path / "moods.parquet"
    scan([library], out=out, model=tiny_model, jobs=0, progress=False)
    assert main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Mot%F6rhead/caf%E9.flac" in page
    assert main(["report", str(out), "-o", str(tmp_path / "report.md")]) == 0
    assert main(["playlists", str(out), "-o", str(tmp_path / "lists"), "--min-confidence", "0"]) == 0
    entries = [
        line
        for playlist in (tmp_path / "lists").glob("*.m3u8")
        for line in playlist.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    uri = path_text(library / latin1(b"Mot\xf6rhead") / latin1(b"caf\xe9.flac"))
    assert uri in entries and os.path.isfile(path_of(uri))
