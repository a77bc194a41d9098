"""The drivers: `write_tags` puts each result row's mood into its file, `untag` replays a journal to put the
files back; each file through the copy -> write -> verify -> replace of mer_tag.tags.replace.

After a run, the result rows of the files written get their new size and mtime (mer_tag.sinks.restamp), so
a rescan skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

from mer_tag.sinks.paths import path_of
from mer_tag.sinks.restamp import Restamp
from mer_tag.tags.fields import Fields, fields_of, file_mood, open_audio
from mer_tag.tags.journal import Journal, default_journal, read_journal, tag_record
from mer_tag.tags.outcome import (
    BELOW_CONFIDENCE,
    FAILED_IN_SCAN,
    HAS_A_MOOD,
    NO_PREDICTION,
    FileResult,
    Progress,
    TagError,
    TagSummary,
    reason,
)
from mer_tag.tags.replace import clear_leftovers, restore_bytes, rewrite, stat_for_writing
from mer_tag.tags.templates import MARKER, mood_text, own_fields, template_text

RESULT_COLUMNS = ("path", "status", "cluster", "cluster_name", "confidence")  # what tagging reads from a row


def _text(value: dict | None) -> list[str] | None:
    return value["text"] if value else None


def _describe(changes: dict[str, tuple[list | None, list | None]]) -> str:
    """'TMOO: absent -> 'Wistful'' for the mood fields, a count for ours."""
    show = lambda text: "absent" if text is None else repr("; ".join(text))  # noqa: E731
    parts = [f"{k}: {show(old)} -> {show(new)}" for k, (old, new) in changes.items() if "MER_TAG_" not in k.upper()]
    if len(changes) > len(parts):
        parts.append(f"{len(changes) - len(parts)} mer-tag fields")
    return "; ".join(parts)


def _tag_file(
    row_path: str,
    mood: str,
    extras: dict[str, str | None],
    *,
    overwrite: bool,
    dry_run: bool,
    keep_mtime: bool,
    journal: Journal | None,
    results: str,
    stamps: Restamp,
) -> FileResult:
    real = Path(os.path.realpath(path_of(row_path)))  # a name that is not UTF-8 is a file URI in the row
    st = stat_for_writing(real)
    before = fields_of(open_audio(real))
    if before.kind == "id3v2.2":
        raise TagError("ID3v2.2 tag: mutagen writes only v2.3 and v2.4, so its version can't be kept")
    current = file_mood(real, before)
    ours = before.get(before.key(MARKER)) is not None
    if current is not None and current != mood and not (overwrite or ours):
        return FileResult(row_path, "kept", f"has mood {current!r} (--overwrite replaces it)", why=HAS_A_MOOD)
    wanted: dict[str, list[str] | None] = {before.mood_key: [mood]}
    wanted |= {before.key(k): None if v is None else [v] for k, v in extras.items()}
    wanted |= {k: None for k in before.mood_keys() if k != before.mood_key}  # one mood per file
    changes = {k: {"text": v} if v else None for k, v in wanted.items() if before.text(k) != v}
    if not changes:
        return FileResult(row_path, "unchanged")
    detail = _describe({k: (before.text(k), _text(v)) for k, v in changes.items()})
    if dry_run:
        return FileResult(row_path, "would tag", detail)
    assert journal is not None  # only a dry run goes without one

    def log(after: Fields, audio: dict, undo: dict | None) -> None:
        journal.write(tag_record(real, row_path, results, before, after, changes, audio, undo))

    rewrite(real, st, before, changes, keep_mtime=keep_mtime, undo_bytes=True, on_ready=log)
    stamps.note(row_path, st, real.stat())
    return FileResult(row_path, "tagged", detail)


def _tag_row(row: dict, template: str, min_confidence: float, extra_fields: bool, **options) -> FileResult:
    path = str(row.get("path"))
    if row.get("status") != "ok":
        return FileResult(path, "skipped", f"scan status {row.get('status')!r}", why=FAILED_IN_SCAN)
    if row.get("cluster") is None or row.get("confidence") is None:
        return FileResult(path, "skipped", "no prediction", why=NO_PREDICTION)
    if row["confidence"] < min_confidence:
        detail = f"confidence {row['confidence']:.2f} < {min_confidence:.2f}"
        return FileResult(path, "skipped", detail, why=BELOW_CONFIDENCE)
    try:
        mood = mood_text(template, row)
        if not mood:
            raise TagError("the template gives an empty mood")
        return _tag_file(path, mood, own_fields(row) if extra_fields else {}, **options)
    except Exception as exc:  # one bad file is reported, the rest of the library goes on
        return FileResult(path, "failed", reason(exc))


def read_rows(results_path: str | Path) -> list[dict]:
    """The rows of a results file `mer-tag scan` wrote. ResultsError, before anything is touched, for a
    missing file, one that is not results (a tag journal, say), or one with no rows (nothing to tag: surely
    not what was meant)."""
    from mer_tag.sinks import load_results

    return load_results(results_path, need=RESULT_COLUMNS, purpose="tag").to_dicts()


def write_tags(
    results_path: str | Path,
    template: str = "name",
    min_confidence: float = 0.0,
    overwrite: bool = False,
    dry_run: bool = False,
    keep_mtime: bool = False,
    extra_fields: bool = False,
    journal: str | Path | None = None,
    progress: Progress | None = None,
) -> TagSummary:
    """Write each ok track's mood (`template` filled from its result row) into the file.

    `template` is a preset name (`presets()`) or a text with {fields}. A mood the file already has is kept
    unless `overwrite` (or mer-tag wrote it, with `extra_fields`). The journal (default: beside the
    results, `<results>.tags-<time>.jsonl`) is what `untag` replays. The run first clears the temp copies
    an interrupted run left beside the tracks; at its end, the rows of the files it wrote get their new
    size and mtime in `results_path`, so a rescan skips them. Raises TemplateError for a bad template and
    ResultsError for results that are missing, empty or not results (`read_rows`), before a file is touched;
    a file that fails is reported, not raised.
    """
    template = template_text(template)
    rows = read_rows(results_path)
    results_path = Path(results_path)
    folders = _folders(path_of(r["path"]) for r in rows if r.get("path"))
    summary = TagSummary(cleared=clear_leftovers(folders, dry_run=dry_run))
    log = None if dry_run else Journal(Path(journal) if journal else default_journal(results_path))
    stamps = Restamp()
    try:
        for done, row in enumerate(rows, 1):
            result = _tag_row(
                row,
                template,
                min_confidence,
                extra_fields,
                overwrite=overwrite,
                dry_run=dry_run,
                keep_mtime=keep_mtime,
                journal=log,
                results=os.path.abspath(results_path),
                stamps=stamps,
            )
            summary.results.append(result)
            if progress:
                progress(done, len(rows), result)
    finally:
        if log is not None:
            log.close()
        _restamp(summary, stamps, results_path)  # also after Ctrl-C: the files written so far
    summary.journal = log.path if log is not None and log.written else None
    return summary


def _folders(paths) -> set[str]:
    """The real folders of `paths`: where their temp copies are made."""
    return {os.path.dirname(os.path.realpath(p)) for p in paths if p}


def _restamp(summary: TagSummary, stamps: Restamp, results_path: Path) -> None:
    if not len(stamps):
        return
    try:
        summary.restamped[str(results_path)] = stamps.apply(results_path)
    except Exception as exc:  # the files are done; only the next scan's shortcut is lost
        summary.notes.append(
            f"{results_path} not updated ({reason(exc)}): the next scan redoes the "
            f"{len(stamps)} {'track' if len(stamps) == 1 else 'tracks'} written"
        )


def _untag_record(record: dict, *, dry_run: bool, keep_mtime: bool, force: bool, stamps: Restamp | None) -> FileResult:
    from mer_tag.tags.delta import mapped, sha256

    real = Path(record["path"])
    st = stat_for_writing(real)
    undo = record.get("bytes")
    with mapped(real) as current:
        now = sha256(current) if undo else None
        if undo and now == undo["sha256"]:
            return FileResult(str(real), "unchanged", "already as before tagging")
        if undo and now == undo["tagged_sha256"]:  # untouched since: rebuild the original, every byte
            detail = _describe({k: (_text(v["new"]), _text(v["old"])) for k, v in record["fields"].items()})
            if dry_run:
                return FileResult(str(real), "would restore", detail)
            restore_bytes(real, st, undo, current, keep_mtime)
            _note(stamps, record, st, real)
            return FileResult(str(real), "restored", detail)
    why = "the file changed since tagging" if undo else "the journal has no byte copy"
    result = _untag_fields(real, st, record, dry_run=dry_run, keep_mtime=keep_mtime, force=force)
    if result.action in ("fields restored", "would restore"):
        result.detail = f"fields only, not byte for byte ({why}): {result.detail}"
        if result.action == "fields restored":
            _note(stamps, record, st, real)
    return result


def _untag_fields(
    real: Path, st: os.stat_result, record: dict, *, dry_run: bool, keep_mtime: bool, force: bool
) -> FileResult:
    """Put the journaled fields back through mutagen: for a file changed since tagging."""
    before = fields_of(open_audio(real))
    if before.kind != record["format"]:
        raise TagError(f"its tag is now {before.kind}, was {record['format']}")
    old = {k: v["old"] for k, v in record["fields"].items()}
    now = {k: before.text(k) for k in old}
    if now == {k: _text(v) for k, v in old.items()}:
        return FileResult(str(real), "unchanged", "already as before tagging")
    edited = [k for k, v in record["fields"].items() if now[k] != _text(v["new"])]
    if edited and not force:
        raise TagError(f"changed since tagging ({', '.join(edited)}); --force restores anyway")
    detail = _describe({k: (now[k], _text(v)) for k, v in old.items()})
    if dry_run:
        return FileResult(str(real), "would restore", detail)
    rewrite(real, st, before, old, keep_mtime=keep_mtime, drop_new_tag=not record.get("had_tag", True))
    return FileResult(str(real), "fields restored", detail)


def _note(stamps: Restamp | None, record: dict, before: os.stat_result, real: Path) -> None:
    if stamps is not None:
        stamps.note(record.get("row", record["path"]), before, real.stat())


def untag(
    journal_path: str | Path,
    dry_run: bool = False,
    keep_mtime: bool = False,
    force: bool = False,
    results: str | Path | None = None,
    progress: Progress | None = None,
) -> TagSummary:
    """Put back every file a `write_tags` journal records, newest change first.

    A file untouched since tagging is rebuilt byte for byte from the journal's recipe; one changed since
    (another tagger saved it, say) gets its journaled fields back through the same copy -> write -> verify
    -> replace, and is reported as `fields restored`; one whose mood no longer holds what mer-tag wrote is
    left alone (reported) unless `force`. The rows of the files restored get their new size and mtime in
    the results file each record names (or `results`). Raises JournalError when `journal_path` is no journal.
    """
    records = read_journal(Path(journal_path))
    summary = TagSummary(
        journal=Path(journal_path), cleared=clear_leftovers(_folders(r["path"] for r in records), dry_run=dry_run)
    )
    stamps: dict[str, Restamp] = {}
    try:
        for done, record in enumerate(reversed(records), 1):
            target = str(results) if results else record.get("results")
            try:
                result = _untag_record(
                    record,
                    dry_run=dry_run,
                    keep_mtime=keep_mtime,
                    force=force,
                    stamps=stamps.setdefault(target, Restamp()) if target else None,
                )
            except Exception as exc:  # one bad file is reported, the rest go on
                result = FileResult(str(record["path"]), "failed", reason(exc))
            summary.results.append(result)
            if progress:
                progress(done, len(records), result)
    finally:
        for target, stamp in stamps.items():
            _restamp(summary, stamp, Path(target))
    return summary
