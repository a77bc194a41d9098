import json

import pytest

from mer_tag.sinks import ResultsError, RowWriter, journal_path, read_results, result_format

COLUMNS = ["path", "status", "cluster", "confidence"]


def rows(n, start=0):
    return [
        {"path": f"/m/{i}.mp3", "status": "ok", "cluster": i % 5 + 1, "confidence": 0.5}
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl", "r.parquet"])
def test_rows_round_trip_in_every_format(tmp_path, name):
    writer = RowWriter(tmp_path / name, COLUMNS)
    for row in rows(3):
        writer.write(row)
    writer.close()
    got = read_results(tmp_path / name)
    assert got["path"].to_list() == [f"/m/{i}.mp3" for i in range(3)]
    assert got["cluster"].to_list() == [1, 2, 3]
    assert not journal_path(tmp_path / name).exists()


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl", "r.parquet"])
def test_rows_are_readable_before_close_and_a_torn_line_is_dropped(tmp_path, name):
    writer = RowWriter(tmp_path / name, COLUMNS)
    for row in rows(2):
        writer.write(row)
    # a kill in the middle of a line: the partial line must not break reading
    target = journal_path(tmp_path / name) if name.endswith("parquet") else tmp_path / name
    with target.open("a") as handle:
        handle.write("/m/9.mp3,ok,3" if name.endswith("csv") else '{"path": "/m/9.mp3", "sta')
    got = read_results(tmp_path / name)
    assert got["path"].to_list() == ["/m/0.mp3", "/m/1.mp3"]


def test_kept_rows_are_rewritten_without_the_ones_to_redo(tmp_path):
    out = tmp_path / "r.csv"
    writer = RowWriter(out, COLUMNS)
    for row in rows(3):
        writer.write(row)
    writer.close()
    previous = read_results(out)
    keep = previous.filter(previous["path"] != "/m/1.mp3")
    writer = RowWriter(out, COLUMNS, keep=keep)
    writer.write({"path": "/m/1.mp3", "status": "error", "cluster": None, "confidence": None})
    writer.close()
    lines = out.read_text().splitlines()
    assert len(lines) == 4  # header + 3 rows, never two rows for one path
    got = read_results(out)
    assert sorted(got["path"].to_list()) == ["/m/0.mp3", "/m/1.mp3", "/m/2.mp3"]
    assert got.filter(got["path"] == "/m/1.mp3")["status"].item() == "error"


def test_unicode_and_commas_survive_csv(tmp_path):
    out = tmp_path / "r.csv"
    writer = RowWriter(out, COLUMNS)
    writer.write({"path": '/m/Café, "live" 🎸.flac', "status": "ok", "cluster": 2, "confidence": 0.9})
    writer.close()
    assert read_results(out)["path"].item() == '/m/Café, "live" 🎸.flac'


def test_stdout_gets_json_lines(capsys):
    writer = RowWriter("-", COLUMNS)
    writer.write(rows(1)[0])
    writer.close()
    assert json.loads(capsys.readouterr().out)["path"] == "/m/0.mp3"


def test_unknown_extension_is_refused():
    with pytest.raises(ResultsError, match=r"unknown results format \('.xlsx'\) for moods.xlsx: name it .csv"):
        result_format("moods.xlsx")
    with pytest.raises(ResultsError, match="no extension"):
        result_format("somefolder/")


@pytest.fixture(scope="module")
def tag_journal(tmp_path_factory):
    """A real tag journal: `mer-tag tag` over hand-made results of one WAV file."""
    from media import tone, write_audio
    from mer_tag.cli import main

    folder = tmp_path_factory.mktemp("journal")
    song = write_audio(folder / "Music" / "song.wav", tone(1.0))
    stat = song.stat()
    results = folder / "moods.csv"
    results.write_text(
        "path,status,error,size,mtime,cluster,cluster_name,confidence,model\n"
        f"{song},ok,,{stat.st_size},{stat.st_mtime!r},3,Wistful,0.61,default@0.3.0\n"
    )
    assert main(["tag", str(results), "--journal", str(folder / "tags.jsonl")]) == 0
    return folder / "tags.jsonl"


@pytest.mark.parametrize("command", ["scan", "report", "playlists", "tag"])
def test_every_command_that_reads_results_tells_a_tag_journal_apart(tag_journal, tmp_path, capsys, command):
    from mer_tag.cli import main

    journal = str(tag_journal)
    before = tag_journal.read_bytes()
    argv = {
        "scan": ["scan", str(tag_journal.parent / "Music"), "-o", journal],
        "report": ["report", journal, "-o", str(tmp_path / "r.html")],
        "playlists": ["playlists", journal, "-o", str(tmp_path / "pl")],
        "tag": ["tag", journal],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    said = f"{journal} is a tag journal, not scan results (undo the tagging it records: mer-tag untag {journal})"
    assert err == f"error: {said}\n"
    assert tag_journal.read_bytes() == before and not list(tmp_path.iterdir())  # no report, no playlists


def test_restamp_updates_a_json_row_whose_title_holds_a_unicode_line_separator(tmp_path):
    """JSON keeps U+2028, U+2029 and U+0085 raw inside a string; only a newline ends a row."""
    import json
    import os

    from mer_tag.sinks.restamp import Restamp

    rows = [
        {"path": "/m/u.flac", "title": "Line\u2028Sep\u0085x", "size": 10, "mtime": 1.5},
        {"path": "/m/v.flac", "title": "plain", "size": 20, "mtime": 2.5},
    ]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    stamp = Restamp()

    def stat(size, mtime):
        return os.stat_result((0o100644, 0, 0, 1, 0, 0, size, 0, mtime, 0))

    stamp.note("/m/u.flac", stat(10, 1.5), stat(11, 3.5))
    stamp.note("/m/v.flac", stat(20, 2.5), stat(21, 4.5))
    assert stamp.apply(results) == 2
    after = [json.loads(line) for line in results.read_text(encoding="utf-8").split("\n") if line]
    assert [(r["size"], r["mtime"], r["title"]) for r in after] == [
        (11, 3.5, "Line\u2028Sep\u0085x"),
        (21, 4.5, "plain"),
    ]


def test_restamp_leaves_a_read_only_results_file_as_it_is(tmp_path):
    import os

    from mer_tag.sinks.restamp import Restamp
    from mer_tag.sinks.results import ResultsError

    results = tmp_path / "r.csv"
    results.write_text("path,size,mtime\n/m/u.flac,10,1.5\n", encoding="utf-8")
    results.chmod(0o444)
    before = results.read_bytes()
    stamp = Restamp()
    stamp.note("/m/u.flac", *(os.stat_result((0o100644, 0, 0, 1, 0, 0, s, 0, m, 0)) for s, m in ((10, 1.5), (11, 3.5))))
    with pytest.raises(ResultsError, match="read-only"):
        stamp.apply(results)
    assert results.read_bytes() == before and not results.stat().st_mode & 0o222
