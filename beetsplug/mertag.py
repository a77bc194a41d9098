"""mer-tag inside beets: `beet mood [QUERY]`, and moods for every item `beet import` brings in (docs/beets.md).

Enable with `plugins: mertag` in beets' config (`pip install 'mer-tag[beets]'`). Each analysed item gets
flexible attributes, typed so that range queries work (`beet ls mood_valence:0.6.. mood_arousal:..0.4`):

    mood             the mood text, from mer-tag's tag template (default `{name}`: "Wistful"); the one field
                     written into files, where `mer-tag tag` writes it (TMOO, MOOD, ----:com.apple.iTunes:MOOD…)
    mood_name        the cluster's name (Passionate, Cheerful, Wistful, Humorous, Aggressive), whatever the template
    mood_cluster     its number, 1–5
    mood_confidence  the model's probability for it, 0–1
    mood_runner_up   the second most likely cluster's name
    mood_valence     0–1, how likely the song is positive
    mood_arousal     0–1, how likely the song is energetic
    mood_quadrant    the valence–arousal quadrant, 1–4
    mood_model       the model that answered, name@version: items this model did are skipped unless --force
    mood_error       set (with mood_model) instead of the others when the file could not be analysed
    mood_kept        set when the item had a mood text of its own before mer-tag analysed it: kept

All names start with `mood`, and none is one the acousticbrainz plugin (mood_happy, mood_sad, …, moods_mirex) or
VibeNet (valence, energy) stores, so they can live side by side in one library.

Items are analysed by mer-tag's engine, as `mer-tag scan` runs it: decode worker processes and batched models,
one engine for the whole command (or the whole import). The engine is used in one place (`MoodEngine`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from beets import library, ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin
from beets.util import displayable_path
from mediafile import MediaField, MediaFile, MP3StorageStyle, MP4StorageStyle, StorageStyle

from mer_tag.engines.settings import check_jobs
from mer_tag.errors import MerTagError
from mer_tag.tags.fields import field_key  # where `mer-tag tag` writes the mood, per tag family (no heavy imports)

NAME = "mood"  # the attribute (and media field) that holds the mood text
MODEL = "mood_model"
ERROR = "mood_error"
KEPT = "mood_kept"  # the item's mood text is not mer-tag's: it had it before its first analysis
GIVEN = "mood_given"  # the mood text mer-tag last gave the item: a `mood` that differs is the user's since
# row column → attribute; valence, arousal and quadrant are absent from a model without the valence–arousal head
FROM_ROW = {
    "cluster_name": "mood_name",
    "cluster": "mood_cluster",
    "confidence": "mood_confidence",
    "runner_up_name": "mood_runner_up",
    "valence": "mood_valence",
    "arousal": "mood_arousal",
    "quadrant": "mood_quadrant",
    "model": MODEL,
}
ANALYSIS = (*FROM_ROW.values(), ERROR)  # what one analysis leaves on an item (`mood` aside)
DEFAULTS = {
    "auto": True,  # analyse what `beet import` brings in
    "model": "default",  # a shipped model's name, or a folder `mer-tag train` wrote
    "jobs": 2,  # decode processes beside the one that runs the models (`mer-tag scan -j`)
    "template": "name",  # the mood text: a preset of `mer-tag tag --list-templates`, or '{name} ({confidence:.0%})'
    "min_confidence": 0.5,  # below it the item gets no mood text (its other attributes all the same): `mer-tag tag`'s
    "overwrite": False,  # replace a mood text the item had before mer-tag gave it one (yours, another tool's)
}


# --- the mood in files: where `mer-tag tag` puts it (docs/tagging.md) ------------------------------------


V24, V23 = field_key("id3v2.4"), field_key("id3v2.3")  # TMOO; TXXX:MOOD (v2.3 has no TMOO)
V23_DESC = V23.split(":", 1)[1]


class ID3Mood(MP3StorageStyle):
    """ID3 (MP3, and WAV/AIFF's ID3 chunk): TMOO in a v2.4 tag; TXXX:MOOD in a v2.3 one (beets' `id3v23: yes`),
    since v2.3 has no TMOO (mutagen drops it when saving v2.3). A file keeps one mood: the other spelling goes."""

    def __init__(self) -> None:
        super().__init__(V24)

    def fetch(self, mutagen_file):
        tags = mutagen_file.tags
        frame = tags.get(V24) or next(iter(self._txxx(tags)), None)
        return frame.text[0] if frame is not None and frame.text else None

    def store_text(self, mutagen_file, text: str, v23: bool) -> None:
        from mutagen.id3 import TMOO, TXXX, Encoding

        self.delete(mutagen_file)
        if v23:
            mutagen_file.tags.add(TXXX(encoding=Encoding.UTF8, desc=V23_DESC, text=[text]))
        else:
            mutagen_file.tags.add(TMOO(encoding=Encoding.UTF8, text=[text]))

    def store(self, mutagen_file, value):
        self.store_text(mutagen_file, value, v23=False)

    def delete(self, mutagen_file):
        tags = mutagen_file.tags
        tags.delall(V24)
        for frame in self._txxx(tags):
            del tags[frame.HashKey]

    @staticmethod
    def _txxx(tags) -> list:
        return [frame for frame in tags.getall("TXXX") if frame.desc.upper() == V23_DESC.upper()]


class VorbisMood(StorageStyle):
    formats = ["FLAC", "OggOpus", "OggVorbis", "OggFlac", "OggSpeex", "OggTheora"]  # Vorbis comments: MOOD


class APEMood(StorageStyle):
    formats = ["APEv2File", "WavPack", "Musepack", "MonkeysAudio"]  # APEv2: Mood (keys are case-insensitive)


class MoodField(MediaField):
    """The `mood` media field: written by beets' own write path (`beet write`, `item.try_write()`). Empty text
    removes the mood from the file instead of writing an empty frame."""

    def __init__(self) -> None:
        super().__init__(
            ID3Mood(),
            MP4StorageStyle(field_key("mp4")),
            VorbisMood(field_key("vorbis")),
            APEMood(field_key("apev2")),
        )

    def __set__(self, mediafile, value):
        if not value:
            return self.__delete__(mediafile)
        for style in self.styles(mediafile.mgfile):
            if isinstance(style, ID3Mood):
                style.store_text(mediafile.mgfile, str(value), v23=mediafile.id3v23)  # True only for MP3s
            else:
                style.set(mediafile.mgfile, str(value))


def register_mood_field() -> bool:
    """`mood` becomes a media field of beets' items: read from files on import, written by beets' write path.
    False when another plugin already declared one (its storage is then used)."""
    existing = MediaFile.__dict__.get(NAME)
    if existing is None:
        MediaFile.add_field(NAME, MoodField())
    elif not isinstance(existing, MoodField):
        return False
    library.Item._media_fields.add(NAME)
    # `beet write` looks for changes in these fields only; BeetsPlugin.add_media_field leaves them out
    library.Item._media_tag_fields.add(NAME)
    return True


# --- rows → attributes -----------------------------------------------------------------------------------


def mood_fields(row: dict) -> dict[str, Any]:
    """The attributes an ok row gives an item; None for a value the row has not (remove it from the item)."""
    values: dict[str, Any] = {}
    for column, name in FROM_ROW.items():
        value = row.get(column)
        missing = value is None or (isinstance(value, float) and value != value)
        values[name] = None if missing else value
    values[ERROR] = None
    return values


def tracks_for(items: Iterable) -> tuple[list, dict[str, list]]:
    """mer-tag Tracks for `items` (files that exist), with the lyrics and MIDI files `mer-tag scan` would find
    beside them and beets' `lyrics` field; and row path → items (one file may be several items). beets keeps
    paths as bytes; a row spells its path as `sinks.paths.path_text` does (a file URI for a name that is not
    UTF-8), so every name maps back."""
    import dataclasses

    from mer_tag.library import Track, walk
    from mer_tag.sinks.paths import path_text

    by_file: dict[str, list] = {}
    for item in items:
        by_file.setdefault(str(Path(os.path.abspath(os.fsdecode(item.path)))), []).append(item)
    try:
        found = {str(t.path): t for t in walk(list(by_file))}  # one listing per folder; each real file once
    except FileNotFoundError:  # one went since it was checked: no sidecars then, and the engine says it is gone
        found = {}
    tracks, by_row = [], {}
    for file, same in by_file.items():
        lyrics = next((str(i.get("lyrics", with_album=False)) for i in same if i.get("lyrics", with_album=False)), None)
        track = dataclasses.replace(found.get(file) or Track(Path(file)), lyrics=lyrics)  # other extensions too
        tracks.append(track)
        by_row[path_text(track.path)] = same
    return tracks, by_row


def mood_is_ours(item) -> bool:
    """Whether the item's `mood` text is mer-tag's to replace: it has none, or it is the text mer-tag last gave
    it (`mood_given`; a failed analysis leaves that as it was), not a mood of its own (`mood_kept`) nor one
    the user set since (`beet modify mood=…`). An item analysed before `mood_given` existed: mer-tag's if
    mer-tag has marked it (`mood_model`) without keeping a mood of its own."""
    current = item.get(NAME, with_album=False)
    if not current:
        return True
    if item.get(KEPT, with_album=False):
        return False
    given = item.get(GIVEN, with_album=False)
    if given is not None:
        return current == given
    return item.get(MODEL, with_album=False) is not None


# --- the engine: the one place that knows its API ----------------------------------------------------------


class MoodEngine:
    """mer-tag's local engine for one `beet mood` or one import: decode workers and the model start on the
    first tracks and serve every later batch; `close` ends them."""

    def __init__(self, model: str, jobs: int, log):
        from mer_tag import engines

        self._engine = engines.create("local", engines.EngineSettings(model, jobs=jobs))  # reads the card only
        self.ref = self._engine.card.ref  # name@version
        self.model, self.jobs, self._log, self._started = model, jobs, log, False

    def rows(self, tracks: list) -> Iterator[dict]:
        """One result row (docs/output.md) per track, in the order they finish."""
        if not tracks:
            return iter(())
        if not self._started:
            from mer_tag._process import let_idle_threads_sleep, reuse_freed_memory

            let_idle_threads_sleep()  # as `mer-tag scan` sets its own process: before torch starts
            reuse_freed_memory()
            self._log.debug("loading {} beside {} decode processes", self.ref, self.jobs)
            try:
                self._engine.start()
            except MerTagError as exc:  # weights that do not load: the card alone was read so far
                self._engine.close()
                raise ui.UserError(f"mertag: model {self.model!r}: {exc}") from None
            self._started = True
        return self._engine.rows(tracks)

    def close(self) -> None:
        self._engine.close()
        self._started = False


# --- the plugin -----------------------------------------------------------------------------------------


@dataclass
class Counts:
    ref: str = ""  # the model, name@version
    analysed: int = 0
    failed: int = 0
    skipped: int = 0  # already done by this model (ok or failed)
    written: list = field(default_factory=list)  # items whose mood text changed: to write into their files
    stored: list = field(default_factory=list)  # every item analysed: what `beet mood -w` writes

    def line(self, pretend: bool = False) -> str:
        """'20 analysed, 1 failed, 3 skipped (done before by default@0.4.0)'."""
        done = f"{self.analysed} would be analysed" if pretend else f"{self.analysed} analysed, {self.failed} failed"
        return f"{done}, {self.skipped} skipped (done before by {self.ref})"


class MerTagPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = {
        NAME: types.STRING,
        "mood_name": types.STRING,
        "mood_cluster": types.INTEGER,
        "mood_confidence": types.Float(4),
        "mood_runner_up": types.STRING,
        "mood_valence": types.Float(4),
        "mood_arousal": types.Float(4),
        "mood_quadrant": types.INTEGER,
        MODEL: types.STRING,
        ERROR: types.STRING,
        KEPT: types.BOOLEAN,
        GIVEN: types.STRING,
    }

    def __init__(self) -> None:
        super().__init__()
        self.config.add(DEFAULTS)
        if not register_mood_field():
            self._log.warning("another plugin declares a `mood` field: mood texts are written its way")
        self._engine: MoodEngine | None = None
        self._imported = Counts()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.write_imported)
            self.register_listener("import", self.import_done)
        self.register_listener("cli_exit", self.close)

    # settings

    def template(self) -> str:
        from mer_tag.tags import template_text

        try:
            return template_text(self.config["template"].as_str())
        except MerTagError as exc:  # TemplateError
            raise ui.UserError(f"mertag: {exc}") from None

    def engine(self) -> MoodEngine:
        if self._engine is None:
            try:
                jobs = check_jobs(self.config["jobs"].get(int))
            except ValueError as exc:
                raise ui.UserError(f"mertag: {exc}") from None
            try:
                self._engine = MoodEngine(self.config["model"].as_str(), jobs, self._log)
            except (MerTagError, ValueError) as exc:  # BundleError; a bad precision
                raise ui.UserError(f"mertag: model {self.config['model'].as_str()!r}: {exc}") from None
        return self._engine

    def close(self, **_) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # beet mood

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("mood", help="analyse the moods of matching items with mer-tag")
        cmd.parser.add_option("-f", "--force", action="store_true", default=False, help="analyse items already done")
        cmd.parser.add_option(
            "-p", "--pretend", action="store_true", default=False, help="list what would be analysed; change nothing"
        )
        cmd.parser.add_option("-w", "--write", action="store_true", default=None, help="write the moods into files")
        cmd.parser.add_option(
            "-W", "--nowrite", action="store_false", dest="write", help="don't write the moods into files"
        )
        cmd.func = self.mood_command
        return [cmd]

    def mood_command(self, lib, opts, args) -> None:
        items = list(lib.items(args))
        template = self.template()  # a bad template is a usage error before any work
        write = ui.should_write(opts.write)
        try:
            counts = self.analyse(items, template, force=opts.force, pretend=opts.pretend)
            if not opts.pretend:  # -w: every analysed item's file, as asked; else the moods that changed
                self.write(counts.stored if opts.write else counts.written, write)
        finally:
            self.close()
        self._log.info("{}", counts.line(opts.pretend))

    # beet import (auto)

    def imported(self, session, task) -> None:
        """An import stage: the task's items analysed as one batch by the import's one engine (started on the
        first task), before beets moves and writes the files."""
        counts = self.analyse(task.imported_items(), self.template())
        self._imported.analysed += counts.analysed
        self._imported.failed += counts.failed
        self._imported.written += counts.written

    def write_imported(self, session, task) -> None:
        """Once the task's files are in place: beets wrote the tags (the mood with them) only for items it
        tagged; items imported as they were get their mood written here, with `import.write`."""
        from beets.importer import Action

        if task.apply or task.choice_flag == Action.RETAG:
            return
        ids = {item.id for item in self._imported.written}
        self.write([item for item in task.imported_items() if item.id in ids], session.config["write"].get(bool))

    def import_done(self, lib, paths) -> None:
        self.close()
        if self._imported.analysed or self._imported.failed:
            self._log.info("moods of {} imported items, {} failed", self._imported.analysed, self._imported.failed)
        self._imported = Counts()

    # the work

    def analyse(self, items: Iterable, template: str, force: bool = False, pretend: bool = False) -> Counts:
        """Analyse `items` not yet done by this model (all with `force`) and store their attributes."""
        items = list(items)
        ref = self.engine().ref
        todo = [i for i in items if force or i.get(MODEL, with_album=False) != ref]
        counts = Counts(ref, skipped=len(items) - len(todo))
        chosen = {id(item) for item in todo}
        for item in items:
            if id(item) not in chosen:
                self._log.debug("already done by {}: {}", ref, item)
        if pretend:
            for item in todo:
                ui.print_(f"would analyse: {item}")
            counts.analysed = len(todo)
            return counts
        present = []
        for item in todo:
            if os.path.exists(item.path):
                present.append(item)
            else:
                self._fail(item, "file not found", ref, counts)
        tracks, by_row = tracks_for(present)
        for row in self.engine().rows(tracks):
            for item in by_row[row["path"]]:
                if row["status"] == "ok":
                    self._store(item, row, template, counts)
                else:
                    self._fail(item, row["error"] or "unknown error", ref, counts)
        return counts

    def _store(self, item, row: dict, template: str, counts: Counts) -> None:
        ours = mood_is_ours(item)  # before this analysis marks the item
        for name, value in mood_fields(row).items():
            if value is not None:
                item[name] = value
            elif name in item.keys(with_album=False):
                del item[name]
        text = self._mood_text(item, row, ours, template)
        if text is not None and text != (item.get(NAME, with_album=False) or ""):
            item[NAME] = text
            counts.written.append(item)
        if text is not None:
            item[GIVEN] = text  # the mood text is mer-tag's now
            if KEPT in item.keys(with_album=False):
                del item[KEPT]
        item.store()
        counts.analysed += 1
        counts.stored.append(item)
        self._log.info("{}: {} ({:.0%})", item, row["cluster_name"], float(row["confidence"]))

    def _mood_text(self, item, row: dict, ours: bool, template: str) -> str | None:
        """The item's new mood text ('' for none), or None to leave it as it is. A mood the item had before its
        first analysis (yours, another tool's) stays, marked `mood_kept`, unless `overwrite`; one mer-tag gave
        it follows each new analysis and the template of the day (and goes below `min_confidence`)."""
        from mer_tag.tags import TagError, mood_text

        current = item.get(NAME, with_album=False) or ""
        if not ours and not self.config["overwrite"].get(bool):
            item[KEPT] = True
            self._log.info("{}: kept its mood {!r} (mertag overwrite: yes replaces it)", item, current)
            return None
        if float(row["confidence"]) < self.config["min_confidence"].as_number():
            return ""
        try:
            return mood_text(template, row)
        except TagError as exc:
            self._log.warning("{}: no mood text: {}", displayable_path(item.path), exc)
            return None

    def _fail(self, item, reason: str, ref: str, counts: Counts) -> None:
        """One line naming the file and why; the item keeps no mood attributes of an earlier analysis (its
        `mood` text, a tag in the file, stays, and still counts as mer-tag's if it was), and `mood_error` says
        why, so a later run skips it."""
        if not mood_is_ours(item):
            item[KEPT] = True  # a mood of its own: this first mark of mer-tag's must not make it look like ours
        for name in ANALYSIS:
            if name in item.keys(with_album=False):
                del item[name]
        item[MODEL], item[ERROR] = ref, reason
        item.store()
        counts.failed += 1
        self._log.warning("cannot analyse {}: {}", displayable_path(item.path), reason)

    def write(self, items: list, write: bool) -> None:
        """Moods into files through beets' own write path, when beets' `write` setting (or -w/-W) says so."""
        if not write:
            return
        for item in items:
            if item.try_write():  # logs its own one-line error
                item.store()  # the file's new mtime
