"""The journal of a `tag` run: what `untag` replays to put every file back.

JSON lines, one record per changed file, each on disk before that file is replaced. A record holds the
file's real path and its path as the results spell it, the results file, the tag family and container,
the old and new value of every field changed, the audio checksum, and `bytes`: the recipe that rebuilds the
original from the tagged file (mer_tag.tags.delta), with the sha256 of both. A run that ends (Ctrl-C too)
closes its journal with an `{"end": TIME}` line; one killed before that left it open, and the next run on
the same results goes on in it, so the one journal it names undoes both.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from mer_tag.errors import MerTagError
from mer_tag.tags.fields import Fields


class JournalError(MerTagError):
    """What `untag` was given is no journal: missing, or a file none of whose lines is a record (results, say)."""


class Journal:
    """JSON lines, one record per changed file, on disk before that file is replaced: a killed run's
    journal covers every file it changed (and maybe one it was about to)."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None  # opened at the first record

    def write(self, record: dict) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            if self._file.tell() and _last_byte(self.path) != b"\n":
                self._file.write("\n")  # a killed run's torn last line: ours starts on a line of its own
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    @property
    def written(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"end": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
            self._file.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def read_journal(path: Path) -> list[dict]:
    """A journal's records. A line torn by a kill is skipped (its file was never replaced); a file none of
    whose lines is a record is not a journal (JournalError), so `untag moods.csv` is an error, not a no-op."""
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    records, foreign = [], 0
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if not line.startswith(b'{"path": '):  # else a record of ours, torn by a kill
                foreign += 1
            continue
        if isinstance(record, dict) and "path" in record and "fields" in record:
            records.append(record)
        elif isinstance(record, dict) and "end" in record:
            continue  # a run's close
        else:
            foreign += 1  # whole, but not a record: scan results in JSON lines, say
    if foreign and not records:
        beside = sorted(path.parent.glob(f"{glob.escape(path.name)}.tags-*.jsonl"))
        hint = f"; the newest journal beside it is {beside[-1]}" if beside else ""
        raise JournalError(
            f"{path} is not a tag journal: untag takes the .jsonl journal a `mer-tag tag` run names when it ends{hint}"
        )
    return records


def default_journal(results_path: Path) -> Path:
    """RESULTS.tags-TIME.jsonl; or the newest such journal where a killed run left it open, so that one
    `untag` of the journal this run names puts back the files of both runs."""
    beside = sorted(results_path.parent.glob(f"{glob.escape(results_path.name)}.tags-*.jsonl"))
    if beside and not _ended(beside[-1]):
        return beside[-1]
    return results_path.with_name(f"{results_path.name}.tags-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")


def _ended(path: Path) -> bool:
    """Whether the journal's last whole line is a run's close."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [line for line in f.read().split(b"\n") if line.strip()]
        return bool(lines) and lines[-1].startswith(b'{"end": ')
    except OSError:
        return True  # unreadable: start a journal of its own


def tag_record(
    real: Path,
    row_path: str,
    results: str,
    before: Fields,
    after: Fields,
    keys: Iterable[str],
    audio: dict,
    undo: dict | None,
) -> dict:
    """The record of one file `tag` changed: `keys` from `before` to `after`."""
    return {
        "path": str(real),
        "row": row_path,  # the track as the results spell it (`path` is the real file)
        "results": results,
        "container": type(before.audio).__name__,  # for a person reading it; nothing decides by it
        "format": before.kind,
        "had_tag": before.had_tag,
        "fields": {k: {"old": before.get(k), "new": after.get(k)} for k in keys},
        "audio": audio,
        "bytes": undo,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
