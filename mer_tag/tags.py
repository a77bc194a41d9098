"""Mood tags written into the audio files themselves: safely, and undoably.

Where the mood goes follows MusicBrainz Picard, so players that show a "Mood" find it: ID3v2.4 `TMOO`,
ID3v2.3 `TXXX:MOOD` (v2.3 has no TMOO, and a file keeps its ID3 version), Vorbis comment `MOOD` (FLAC,
Ogg Vorbis, Opus), MP4 `----:com.apple.iTunes:MOOD`, APEv2 `Mood`; WAV and AIFF through their ID3 chunk.

Every file is changed the same way: copy it into its own folder, write the tags into the copy, check the
copy (our fields read back, no other tag moved, the audio is the same), then `os.replace` it over the
original. A kill at any moment leaves either the original or the finished copy, never a half-written
file (and perhaps the hidden copy, which the next run clears). Each change is journaled just before the
replace: the old and new values, and a recipe that rebuilds the original from the tagged file (mer_tag.delta),
so `untag` puts back every byte. After the run, the result rows of the files written get their new size
and mtime (mer_tag.restamp), so a rescan skips them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from mer_tag import _fs
from mer_tag.errors import MerTagError

from .sinks.restamp import Restamp

MOOD = "MOOD"
MARKER = "MER_TAG_MODEL"  # a mood beside this field was written by mer-tag, so a later run may update it
TEMPLATE_FIELDS = (
    "name",
    "cluster",
    "adjectives",
    "confidence",
    "model",
    "runner_up_name",
    "quadrant",
    "quadrant_name",
    "valence",
    "arousal",
)
# Fields a row may lack: empty when the model that scanned had no valence–arousal head, absent from results
# older mer-tag versions wrote. A template that uses one fails for that file alone, saying why.
VALENCE_AROUSAL_FIELDS = ("quadrant", "quadrant_name", "valence", "arousal")
OPTIONAL_FIELDS = ("runner_up_name", *VALENCE_AROUSAL_FIELDS)
PRESETS = Path(__file__).parent / "presets" / "tag-templates.toml"
# `mer-tag tag` and `scan --tag` leave tracks below this fused confidence untagged: about half of a library, the
# half the model is surest of (right 62–65 % of the time on unseen artists against 53 % for all; model card).
SURE_ENOUGH = 0.5
SAMPLE_ROW = {  # what --list-templates fills the presets from
    "cluster": 3,
    "cluster_name": "Wistful",
    "confidence": 0.613,
    "model": "default@0.3.0",
    "runner_up_name": "Passionate",
    "quadrant": 3,
    "quadrant_name": "negative, calm",
    "valence": 0.3012,  # P(Q1) + P(Q4)
    "arousal": 0.2347,  # P(Q1) + P(Q2)
}
RESULT_COLUMNS = ("path", "status", "cluster", "cluster_name", "confidence")  # what tagging reads from a row
MP4_MEAN = "----:com.apple.iTunes:"
# A temp copy: `.NAME.XXXXXXXX.mer-tag.EXT`, the 8 characters tempfile.mkstemp's (a-z, 0-9, _).
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.mer-tag(?P<ext>\.[^.]*)?", re.DOTALL)


class TagError(MerTagError):
    """A one-line reason why one file was left as it was."""


@dataclass
class FileResult:
    path: str
    action: str  # tagged, restored, fields restored, would tag, would restore, unchanged, kept, skipped, failed
    detail: str = ""


@dataclass
class TagSummary:
    results: list[FileResult] = field(default_factory=list)
    journal: Path | None = None  # None when nothing was written
    cleared: list[Path] = field(default_factory=list)  # temp copies an interrupted run left (listed only, dry run)
    restamped: dict[str, int] = field(default_factory=dict)  # results file -> rows given their files' new stamp
    notes: list[str] = field(default_factory=list)  # one line each: what could not be done beside the files

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.action == "failed"]


Progress = Callable[[int, int, FileResult], None]  # (files done, files in all, the latest file's result)


# --- templates ------------------------------------------------------------------------------------


class Words(tuple):
    """Adjectives in a template: `{adjectives}` all, `{adjectives:3}` the first three, `{adjectives[0]}` one."""

    def __format__(self, spec: str) -> str:
        return ", ".join(self[: int(spec)] if spec else self)


def presets() -> dict[str, str]:
    """The named templates in presets/tag-templates.toml."""
    import tomllib

    return tomllib.loads(PRESETS.read_text(encoding="utf-8"))


def template_text(template: str) -> str:
    """The preset called `template`, or `template` itself when it has {fields}; checked by a trial render."""
    named = presets()
    if template in named:
        template = named[template]
    elif "{" not in template:
        raise ValueError(
            f"unknown template {template!r}: name a preset ({', '.join(named)}) or give a text with {{fields}}"
        )
    try:
        mood_text(template, SAMPLE_ROW)
    except KeyError as exc:
        fields = ", ".join(TEMPLATE_FIELDS)
        raise ValueError(f"template {template!r}: unknown field {exc.args[0]!r} (fields: {fields})") from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    return template


def mood_text(template: str, row: dict) -> str:
    """The mood one result row gets: `template` filled from the row. TagError when the template uses a
    field the row has no value for (valence–arousal from a model without it, say)."""
    cluster, name = int(row["cluster"]), str(row["cluster_name"])
    return template.format(
        name=name,
        cluster=cluster,
        adjectives=_adjectives(cluster, name),
        confidence=float(row["confidence"]),
        model=row.get("model") or "",
        **_optional_values(template, row),
    ).strip()


def _optional_values(template: str, row: dict) -> dict:
    """The optional fields `template` uses, from `row`; only those, so a row without them still fills the rest."""
    import string

    used = {re.split(r"[.\[]", field)[0] for _, field, _, _ in string.Formatter().parse(template) if field}
    values: dict[str, Any] = {}
    for name in OPTIONAL_FIELDS:
        if name not in used:
            continue
        value = row.get(name)
        if _missing(value):
            if name in VALENCE_AROUSAL_FIELDS:
                raise TagError(f"no {name} in this track's row: the model that scanned it has no valence–arousal")
            raise TagError(f"no {name} in this track's row: results from an older mer-tag (rescan to get it)")
        values[name] = _typed(name, value)
    return values


def _missing(value: Any) -> bool:
    """A row's value that is not there: null, or NaN (a Parquet float column's empty)."""
    return value is None or (isinstance(value, float) and value != value)


def _typed(name: str, value: Any) -> Any:
    """A row's value as the template expects it: CSV and hand-made files may spell numbers as text."""
    try:
        if name == "quadrant":
            return int(float(value))
        if name in ("valence", "arousal"):
            return float(value)
    except (TypeError, ValueError):
        raise TagError(f"{name} {value!r} in this track's row is not a number") from None
    return str(value)


def _adjectives(cluster: int, name: str) -> Words:
    from .labels import BUILTIN

    for labels in BUILTIN.values():
        if labels.adjectives and 0 < cluster <= len(labels) and labels.names[cluster - 1] == name:
            return Words(labels.adjectives[cluster - 1])
    return Words((name.lower(),))  # a custom label set: its name is the only word we know


def _extra_fields(row: dict) -> dict[str, str | None]:
    """Our own fields beside the mood: the numbers behind it, and the model (also our MARKER). Valence,
    arousal and quadrant the row has none of are None: removed, should an earlier run have written them,
    so a file never shows one model's mood beside another model's valence."""
    fields: dict[str, str | None] = {
        "MER_TAG_CLUSTER": str(int(row["cluster"])),
        "MER_TAG_CONFIDENCE": f"{row['confidence']:.4f}",
    }
    for column, value in row.items():
        if column.startswith("prob_cluster_") and value is not None:
            fields[f"MER_TAG_PROB_{column.removeprefix('prob_cluster_')}"] = f"{value:.4f}"
    for column, spelling in (("valence", "{:.4f}"), ("arousal", "{:.4f}"), ("quadrant", "{:d}")):
        value = row.get(column)
        fields[f"MER_TAG_{column.upper()}"] = None if _missing(value) else spelling.format(_typed(column, value))
    fields[MARKER] = str(row.get("model") or "unknown")
    return fields


# --- one tag system of one file, seen as text fields -------------------------------------------------


class _Fields:
    """A file's tag as named text fields. A value is {"text": [...]} plus what an exact restore needs in
    that format (ID3 text encoding, MP4 data type, the file's own spelling of a key); None is absent."""

    kind = ""
    mood_key = ""

    def __init__(self, tags, audio=None, had_tag: bool = True):
        self.tags, self.audio, self.had_tag = tags, audio, had_tag

    def key(self, name: str) -> str:
        return name

    # each tag system's own: --------------------------------------------------------------------------

    def mood_keys(self) -> list[str]:
        """Every field that holds a mood, in the file's own spelling."""
        raise NotImplementedError

    def get(self, key: str) -> dict | None:
        raise NotImplementedError

    def set(self, key: str, value: dict | None) -> None:
        raise NotImplementedError

    def items(self) -> Iterable[tuple[str, Any]]:
        """(key, raw value) of every field."""
        raise NotImplementedError

    def text(self, key: str) -> list[str] | None:
        value = self.get(key)
        return value["text"] if value else None

    def mood(self) -> str | None:
        for key in sorted(self.mood_keys(), key=lambda k: k != self.mood_key):
            text = "; ".join(self.text(key) or ()).strip()
            if text:
                return text
        return None

    def snapshot(self) -> dict[str, str]:
        """Every field as a digest of its value (covers are big): what the verify step compares."""
        return {key: hashlib.sha1(repr(value).encode()).hexdigest() for key, value in self.items()}

    def save(self) -> None:
        self.audio.save()

    def drop_tag(self) -> bool:
        """Remove the tag mer-tag added to a file that had none, if nothing else is left in it."""
        if self.snapshot():
            return False
        self.audio.delete()
        return True


class _ID3(_Fields):
    def __init__(self, tags, audio=None, had_tag=True):
        super().__init__(tags, audio, had_tag)
        major, minor = tags.version[:2]
        self.version = minor if major == 2 else 4  # an ID3v1-only file gets a new v2.4 tag...
        self.had_tag = had_tag and major == 2  # ...which untag removes again
        self.kind = f"id3v2.{self.version}"
        self.mood_key = "TMOO" if self.version == 4 else "TXXX:MOOD"  # TMOO is new in v2.4

    def key(self, name):
        return f"TXXX:{name}"

    def mood_keys(self):
        return [
            key
            for key, frame in self.tags.items()
            if frame.FrameID == "TMOO" or (frame.FrameID == "TXXX" and frame.desc.upper() == MOOD)
        ]

    def get(self, key):
        frame = self.tags.get(key)
        return None if frame is None else {"text": [str(t) for t in frame.text], "encoding": int(frame.encoding)}

    def set(self, key, value):
        from mutagen.id3 import TMOO, TXXX, Encoding

        self.tags.pop(key, None)
        if value is not None:
            encoding = value.get("encoding", Encoding.UTF8)  # mutagen stores it as UTF-16 in a v2.3 tag
            if key == "TMOO":
                self.tags.add(TMOO(encoding=encoding, text=value["text"]))
            else:
                self.tags.add(TXXX(encoding=encoding, desc=key.split(":", 1)[1], text=value["text"]))

    def items(self):
        unknown = [("(unknown frames)", self.tags.unknown_frames)] if self.tags.unknown_frames else []
        return [*self.tags.items(), *unknown]

    def save(self):
        # v23_sep=None: multi-value frames stay null-separated rather than being joined with "/".
        self.audio.save(v2_version=self.version, v23_sep=None)

    def drop_tag(self):
        from mutagen.id3 import ID3FileType, delete

        if not isinstance(self.audio, ID3FileType):  # WAV, AIFF: an ID3 chunk
            return super().drop_tag()
        # mutagen shows an ID3v1 tag's fields as frames: they stay in the v1 tag, the v2 tag was ours.
        delete(self.audio.filename, delete_v1=False)
        return True


class _Vorbis(_Fields):
    kind, mood_key = "vorbis", MOOD

    def mood_keys(self):
        return [MOOD] if self.get(MOOD) else []

    def get(self, key):
        found = [(k, v) for k, v in self.tags if k.upper() == key]
        if not found:
            return None
        value = {"text": [v for _, v in found]}
        if found[0][0] != key:
            value["key"] = found[0][0]  # the file's own spelling (names are case-insensitive)
        return value

    def set(self, key, value):
        if key in self.tags:
            del self.tags[key]
        for text in (value or {}).get("text", ()):
            self.tags.append((value.get("key", key), text))

    def items(self):
        grouped: dict[str, list[str]] = {}
        for k, v in self.tags:
            grouped.setdefault(k.upper(), []).append(v)
        return grouped.items()


def _mp4_codec(dataformat: int) -> str:
    return "utf-16-be" if dataformat == 2 else "utf-8"  # AtomDataType.UTF16; UTF8 and IMPLICIT as bytes


class _MP4(_Fields):
    kind, mood_key = "mp4", MP4_MEAN + MOOD

    def key(self, name):
        return MP4_MEAN + name

    def mood_keys(self):
        return [k for k in self.tags if k.startswith("----:") and k.rsplit(":", 1)[-1].upper() == MOOD]

    def get(self, key):
        values = self.tags.get(key)
        if not values:
            return None
        return {
            "text": [bytes(v).decode(_mp4_codec(v.dataformat), "surrogateescape") for v in values],
            "dataformat": [int(v.dataformat) for v in values],
        }

    def set(self, key, value):
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        self.tags.pop(key, None)
        if value is not None:
            formats = value.get("dataformat") or [AtomDataType.UTF8] * len(value["text"])
            self.tags[key] = [
                MP4FreeForm(text.encode(_mp4_codec(fmt), "surrogateescape"), dataformat=fmt)
                for text, fmt in zip(value["text"], formats)
            ]

    def items(self):
        return self.tags.items()


class _APE(_Fields):
    kind, mood_key = "apev2", "Mood"

    def mood_keys(self):
        return [self.mood_key] if self.get(self.mood_key) else []

    def get(self, key):
        from mutagen.apev2 import TEXT

        spelling = next((k for k in self.tags.keys() if k.lower() == key.lower()), None)
        if spelling is None:
            return None
        item = self.tags[spelling]
        if item.kind != TEXT:
            raise TagError(f"APEv2 {spelling} holds binary data, not text")
        value = {"text": list(item)}
        if spelling != key:
            value["key"] = spelling  # the file's own spelling (keys are case-insensitive)
        return value

    def set(self, key, value):
        self.tags.pop(key, None)
        if value is not None:
            self.tags[value.get("key", key)] = list(value["text"])

    def items(self):
        return [(k.upper(), v) for k, v in self.tags.items()]


def _open(path: Path):
    """The file as mutagen sees it; ID3 frames read as stored, not upgraded to v2.4 in memory."""
    import mutagen
    from mutagen.id3 import ID3

    try:
        audio = mutagen.File(path)
        if audio is not None and isinstance(audio.tags, ID3):
            # Saving mutagen's in-memory v2.4 upgrade back as v2.3 would rewrite frames we never touch.
            audio = type(audio)(path, translate=False)
    except mutagen.MutagenError as exc:
        raise TagError(f"unreadable: {str(exc).strip() or type(exc).__name__}") from None
    if audio is None:
        raise TagError("not an audio file mutagen can tag")
    return audio


def _fields(audio) -> _Fields:
    """The adapter for the tag `audio` carries; a file with none gets an empty one (in memory only)."""
    from mutagen._vorbis import VComment
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    had_tag = audio.tags is not None
    if not had_tag:
        try:
            audio.add_tags()
        except Exception as exc:
            raise TagError(f"{type(audio).__name__} files can't carry tags: {_reason(exc)}") from None
    for tag_type, adapter in ((ID3, _ID3), (VComment, _Vorbis), (MP4Tags, _MP4), (APEv2, _APE)):
        if isinstance(audio.tags, tag_type):
            return adapter(audio.tags, audio, had_tag)
    raise TagError(f"no mood field known for {type(audio.tags).__name__} tags")


def read_mood(path: str | Path) -> str | None:
    """The mood a player would show for this file, whatever spelling it uses; None when it has none."""
    return _mood(Path(path), _fields(_open(Path(path))))


def _mood(path: Path, fields: _Fields) -> str | None:
    from mutagen.apev2 import APEv2, error

    if fields.mood() or fields.kind == "apev2":
        return fields.mood()
    try:  # some MP3s carry an APEv2 tag besides (or instead of) ID3: read, never written
        return _APE(APEv2(path)).mood()
    except error:
        return None


# --- proof that the audio is untouched ----------------------------------------------------------------


def _peek(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _after_id3v2(f, pos: int) -> int:
    while (header := _peek(f, pos, 10))[:3] == b"ID3" and len(header) == 10:
        size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]  # syncsafe: 7 bits a byte
        pos += 10 + size + (10 if header[5] & 0x10 else 0)  # flag 0x10: a footer follows
    return pos


def _before_trailing_tags(f) -> int:
    """End of the audio: before an ID3v1 tag and an APEv2 tag at the end of the file, in either order."""
    end = f.seek(0, 2)
    while True:
        if end >= 128 and _peek(f, end - 128, 3) == b"TAG":
            end -= 128
        elif end >= 32 and _peek(f, end - 32, 8) == b"APETAGEX":
            footer = _peek(f, end - 32, 32)
            has_header = int.from_bytes(footer[20:24], "little") & 0x80000000
            size = max(int.from_bytes(footer[12:16], "little"), 32)  # includes the footer; a bogus 0 would loop
            end -= size + (32 if has_header else 0)
        else:
            return end


def _mp3_ranges(f):
    start = _after_id3v2(f, 0)
    return [(b"mpeg", start, _before_trailing_tags(f) - start)]


def _flac_ranges(f):
    pos = _after_id3v2(f, 0)
    if _peek(f, pos, 4) != b"fLaC":
        raise TagError("no fLaC marker")
    streaminfo = (b"streaminfo", pos + 8, 34)  # the first block: how to decode the frames
    pos += 4
    while True:
        header = _peek(f, pos, 4)
        if len(header) < 4:
            raise TagError("FLAC metadata runs past the end of the file")
        pos += 4 + int.from_bytes(header[1:4], "big")
        if header[0] & 0x80:  # the last metadata block
            return [streaminfo, (b"frames", pos, _before_trailing_tags(f) - pos)]


def _chunk_ranges(f, order: Literal["little", "big"], wanted: tuple[bytes, ...]):
    """The `wanted` chunks of a RIFF (WAV, little-endian) or IFF (AIFF, big-endian) file."""
    form_end = min(8 + int.from_bytes(_peek(f, 4, 4), order), f.seek(0, 2))
    ranges, pos = [], 12
    while pos + 8 <= form_end:
        header = _peek(f, pos, 8)
        size = int.from_bytes(header[4:8], order)
        if header[:4] in wanted:
            ranges.append((header[:4], pos + 8, size))
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    if sorted(r[0] for r in ranges) != sorted(wanted):
        raise TagError(f"expected one each of the {b', '.join(wanted).decode()} chunks")
    return ranges


_PAYLOAD = {  # containers that keep the audio bytes in one place, untouched by a tag edit: hash them
    "MP3": ("mp3-frames", _mp3_ranges),
    "FLAC": ("flac-frames", _flac_ranges),
    "WAVE": ("wav-chunks", lambda f: _chunk_ranges(f, "little", (b"fmt ", b"data"))),
    "AIFF": ("aiff-chunks", lambda f: _chunk_ranges(f, "big", (b"COMM", b"SSND"))),
}


def _hash_ranges(f, ranges) -> str:
    digest = hashlib.sha256()
    for label, start, length in ranges:
        digest.update(label)
        f.seek(start)
        while length > 0:
            block = f.read(min(length, 1 << 20))
            if not block:
                raise TagError(f"{label.decode()} runs past the end of the file")
            digest.update(block)
            length -= len(block)
    return digest.hexdigest()


def _vorbis_setup(extradata: bytes) -> bytes:
    """FFmpeg hands Vorbis its three header packets, Xiph-laced, as extradata: identification, comments
    (the very packet a tag edit rewrites) and setup. The decoder setup is the first and the last."""
    sizes, pos = [], 1
    for _ in range(extradata[0]):  # the number of packets, less one
        size = 0
        while extradata[pos] == 255:
            size, pos = size + 255, pos + 1
        sizes.append(size + extradata[pos])
        pos += 1
    return extradata[pos : pos + sizes[0]] + extradata[pos + sum(sizes) :]


def _packets_sha256(path: Path) -> str:
    """The compressed audio packets as FFmpeg's demuxer delivers them (bytes and timestamps) and the
    decoder setup. A tag edit rewrites MP4 and Ogg files around the audio, so their bytes move; what the
    demuxer reads must not. Same packets and setup decode to the same samples, at a tenth of the cost."""
    import av

    digest = hashlib.sha256()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            codec = stream.codec_context
            extradata = bytes(codec.extradata or b"")
            digest.update(f"{codec.name} {codec.sample_rate} {codec.layout.name}".encode())
            digest.update(_vorbis_setup(extradata) if codec.name == "vorbis" else extradata)
            for packet in container.demux(stream):
                if packet.size:  # the demuxer ends with an empty flush packet
                    digest.update(f"{packet.pts} {packet.duration} {packet.size}".encode())
                    digest.update(bytes(packet))
    except (av.FFmpegError, IndexError) as exc:
        raise TagError(f"audio can't be read: {_reason(exc)}") from None
    return digest.hexdigest()


def audio_checksum(path: str | Path, container: str) -> dict:
    """{"method", "sha256"} of the audio alone: the raw payload bytes where `container` (mutagen's class
    name) keeps them in one place, else the demuxed packets."""
    if container in _PAYLOAD:
        method, find_ranges = _PAYLOAD[container]
        with open(path, "rb") as f:
            return {"method": method, "sha256": _hash_ranges(f, find_ranges(f))}
    return {"method": "packets", "sha256": _packets_sha256(Path(path))}


# --- copy -> write -> verify -> atomic replace ------------------------------------------------------------


def _stat_for_writing(real: Path) -> os.stat_result:
    try:
        st = real.stat()
    except FileNotFoundError:
        raise TagError("missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file")
    # Replacing needs only the folder to be writable; a file marked read-only is a "no" we respect.
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise TagError("read-only file")
    if st.st_nlink > 1:
        raise TagError(f"{st.st_nlink} hard links: replacing the file would split them")
    return st


@contextmanager
def _temp_beside(real: Path, st: os.stat_result, fill: Callable[[Path], object]):
    """A hidden temp file in `real`'s folder (so os.replace is atomic), filled by `fill(tmp)` and given the
    original's owner and permissions. It is locked for as long as this run holds it, so another run's
    `clear_leftovers` can tell it from one that a killed run left."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=f".mer-tag{real.suffix}", dir=real.parent)
    except PermissionError:
        raise TagError("folder not writable") from None
    tmp = Path(name)
    try:
        _try_lock(fd)
        fill(tmp)
        made = tmp.stat()
        if (made.st_uid, made.st_gid) != (st.st_uid, st.st_gid):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                raise TagError("can't keep the file's owner (not ours)") from None
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)  # gone already once it replaced the original
        os.close(fd)


def _try_lock(fd: int) -> bool:
    """An exclusive advisory lock on an open file; False when another process holds one."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): every temp copy counts as unlocked
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def clear_leftovers(folders, dry_run: bool = False) -> list[Path]:
    """Remove the temp copies that interrupted runs of ours left in `folders` (with `dry_run`, only list them).

    A file counts as ours only when its name has our exact pattern (`.NAME.XXXXXXXX.mer-tag.EXT`, EXT
    NAME's own), it is a regular file, NAME is still beside it (so the copy is never the last one left),
    and no running mer-tag holds its lock (a run tagging that folder right now).
    """
    cleared = []
    for folder in sorted({str(f) for f in folders}):
        try:
            with os.scandir(folder) as entries:
                names = [e.name for e in entries if e.name.startswith(".") and ".mer-tag" in e.name]
        except OSError:
            continue  # gone or unreadable: nothing of ours we could clear
        for name in names:
            match = TEMP_NAME.fullmatch(name)
            if not match or (match["ext"] or "") != Path(match["name"]).suffix:
                continue
            if os.path.isfile(os.path.join(folder, match["name"])) and _remove_unlocked(Path(folder, name), dry_run):
                cleared.append(Path(folder, name))
    return cleared


def _remove_unlocked(path: Path, dry_run: bool) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # a symlink, or gone
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not _try_lock(fd):
            return False
        if not dry_run:
            path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _verify(before: _Fields, after: _Fields, changes: dict) -> None:
    """The copy holds exactly `changes`, and every other field as it was."""
    if after.kind != before.kind:
        raise TagError(f"tag format changed from {before.kind} to {after.kind}")
    for key, value in changes.items():
        got = after.get(key)
        if got is None or value is None:
            wrong = (got is None) != (value is None)
        else:
            wrong = any(got.get(k) != v for k, v in value.items())
        if wrong:
            raise TagError(f"{key} reads back as {got!r}, not {value!r}")
    ours = {k.upper() for k in changes}
    old, new = before.snapshot(), after.snapshot()
    moved = sorted(k for k in old.keys() | new.keys() if k.upper() not in ours and old.get(k) != new.get(k))
    if moved:
        raise TagError(f"other tags would change ({', '.join(moved)})")


def _rewrite(
    real: Path,
    st: os.stat_result,
    before: _Fields,
    changes: dict,
    *,
    keep_mtime: bool,
    drop_new_tag: bool = False,
    undo_bytes: bool = False,
    on_ready: Callable[[_Fields, dict, dict | None], None] = lambda after, audio, undo: None,
):
    """Apply `changes` to a copy of `real`, check it, and swap it in. `on_ready(fields, audio checksum,
    undo)` runs just before the swap (the journal); `undo`, with `undo_bytes`, is what rebuilds `real`
    byte for byte from the copy. A failure anywhere leaves `real` untouched."""
    import shutil

    container = type(before.audio).__name__
    audio = audio_checksum(real, container)
    with _temp_beside(real, st, lambda tmp: shutil.copyfile(real, tmp)) as tmp:
        copy = _open(tmp)
        fields = _fields(copy)
        for key, value in changes.items():
            fields.set(key, value)
        if not (drop_new_tag and fields.drop_tag()):
            fields.save()
        after = _fields(_open(tmp))
        _verify(before, after, changes)
        if audio_checksum(tmp, container) != audio:
            raise TagError("the audio changed in the copy; file left as it was")
        undo = _undo_recipe(real, tmp) if undo_bytes else None
        _swap(real, st, tmp, keep_mtime, lambda: on_ready(after, audio, undo))


def _undo_recipe(real: Path, tmp: Path) -> dict:
    """{"sha256" of the original, "tagged_sha256" of the copy, and the delta recipe}, checked to rebuild it."""
    from .delta import diff, mapped, rebuilds, sha256

    with mapped(real) as original, mapped(tmp) as tagged:
        undo = {"sha256": sha256(original), "tagged_sha256": sha256(tagged), **diff(original, tagged)}
        if not rebuilds(undo, tagged, original):
            raise TagError("could not record how to undo this change byte for byte; file left as it was")
    return undo


def _swap(real: Path, st: os.stat_result, tmp: Path, keep_mtime: bool, on_ready: Callable[[], None]) -> None:
    """The finished temp copy replaces `real`, unless `real` changed meanwhile; durably."""
    if keep_mtime:
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = real.stat()
    if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
        raise TagError("the file changed while it was being tagged")
    on_ready()
    _fs.commit(tmp, real)  # fsync, rename, fsync the folder


def _restore_bytes(real: Path, st: os.stat_result, undo: dict, tagged, keep_mtime: bool) -> None:
    """Write the original that `undo` rebuilds from `tagged` (the file's bytes now) and swap it in."""
    from .delta import rebuild

    def fill(tmp: Path) -> None:
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:

            def write(block) -> None:
                digest.update(block)
                out.write(block)

            rebuild(undo, tagged, write)
        if digest.hexdigest() != undo["sha256"]:
            raise TagError("the journal does not rebuild the original; file left as it was")

    with _temp_beside(real, st, fill) as tmp:
        _swap(real, st, tmp, keep_mtime, lambda: None)


# --- journal -----------------------------------------------------------------------------------------------


class _Journal:
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
            self._file.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _read_journal(path: Path) -> list[dict]:
    """A journal's records. A line torn by a kill is skipped (its file was never replaced); a file none of
    whose lines is a record is not a journal (ValueError), so `untag moods.csv` is an error, not a no-op."""
    if not path.is_file():
        raise ValueError(f"no journal at {path}")
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
        else:
            foreign += 1  # whole, but not a record: scan results in JSON lines, say
    if foreign and not records:
        beside = sorted(path.parent.glob(f"{glob.escape(path.name)}.tags-*.jsonl"))
        hint = f"; the newest journal beside it is {beside[-1]}" if beside else ""
        raise ValueError(
            f"{path} is not a tag journal: untag takes the .jsonl journal a `mer-tag tag` run names when it ends{hint}"
        )
    return records


def _default_journal(results_path: Path) -> Path:
    return results_path.with_name(f"{results_path.name}.tags-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")


# --- tag and untag ---------------------------------------------------------------------------------------


def _text(value: dict | None) -> list[str] | None:
    return value["text"] if value else None


def _describe(changes: dict[str, tuple[list | None, list | None]]) -> str:
    """'TMOO: absent -> 'Wistful'' for the mood fields, a count for ours."""
    show = lambda text: "absent" if text is None else repr("; ".join(text))  # noqa: E731
    parts = [f"{k}: {show(old)} -> {show(new)}" for k, (old, new) in changes.items() if "MER_TAG_" not in k.upper()]
    if len(changes) > len(parts):
        parts.append(f"{len(changes) - len(parts)} mer-tag fields")
    return "; ".join(parts)


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if isinstance(exc, TagError) else f"{type(exc).__name__}: {text}"


def _tag_file(
    row_path: str,
    mood: str,
    extras: dict[str, str | None],
    *,
    overwrite: bool,
    dry_run: bool,
    keep_mtime: bool,
    journal: _Journal | None,
    results: str,
    stamps: Restamp,
) -> FileResult:
    real = Path(os.path.realpath(row_path))
    st = _stat_for_writing(real)
    before = _fields(_open(real))
    if before.kind == "id3v2.2":
        raise TagError("ID3v2.2 tag: mutagen writes only v2.3 and v2.4, so its version can't be kept")
    current = _mood(real, before)
    ours = before.get(before.key(MARKER)) is not None
    if current is not None and current != mood and not (overwrite or ours):
        return FileResult(row_path, "kept", f"has mood {current!r} (--overwrite replaces it)")
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

    def log(after: _Fields, audio: dict, undo: dict | None) -> None:
        journal.write(
            {
                "path": str(real),
                "row": row_path,  # the track as the results spell it (`path` is the real file)
                "results": results,
                "container": type(before.audio).__name__,
                "format": before.kind,
                "had_tag": before.had_tag,
                "fields": {k: {"old": before.get(k), "new": after.get(k)} for k in changes},
                "audio": audio,
                "bytes": undo,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )

    _rewrite(real, st, before, changes, keep_mtime=keep_mtime, undo_bytes=True, on_ready=log)
    stamps.note(row_path, st, real.stat())
    return FileResult(row_path, "tagged", detail)


def _tag_row(row: dict, template: str, min_confidence: float, extra_fields: bool, **options) -> FileResult:
    path = str(row.get("path"))
    if row.get("status") != "ok":
        return FileResult(path, "skipped", f"scan status {row.get('status')!r}")
    if row.get("cluster") is None or row.get("confidence") is None:
        return FileResult(path, "skipped", "no prediction")
    if row["confidence"] < min_confidence:
        return FileResult(path, "skipped", f"confidence {row['confidence']:.2f} < {min_confidence:.2f}")
    try:
        mood = mood_text(template, row)
        if not mood:
            raise TagError("the template gives an empty mood")
        return _tag_file(path, mood, _extra_fields(row) if extra_fields else {}, **options)
    except Exception as exc:  # one bad file is reported, the rest of the library goes on
        return FileResult(path, "failed", _reason(exc))


def read_rows(results_path: str | Path) -> list[dict]:
    """The rows of a results file `mer-tag scan` wrote. ResultsError, before anything is touched, for a
    missing file, one that is not results (a tag journal, say), or one with no rows (nothing to tag: surely
    not what was meant)."""
    from .sinks import load_results

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
    size and mtime in `results_path`, so a rescan skips them. Raises ValueError for a bad template or
    results that are missing, empty or not results (`read_rows`); a file that fails is reported, not raised.
    """
    template = template_text(template)
    rows = read_rows(results_path)
    results_path = Path(results_path)
    summary = TagSummary(cleared=clear_leftovers(_folders(r.get("path") for r in rows), dry_run=dry_run))
    log = None if dry_run else _Journal(Path(journal) if journal else _default_journal(results_path))
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
            f"{results_path} not updated ({_reason(exc)}): the next scan redoes the {len(stamps)} tracks written"
        )


def _untag_record(record: dict, *, dry_run: bool, keep_mtime: bool, force: bool, stamps: Restamp | None) -> FileResult:
    from .delta import mapped, sha256

    real = Path(record["path"])
    st = _stat_for_writing(real)
    undo = record.get("bytes")
    with mapped(real) as current:
        now = sha256(current) if undo else None
        if undo and now == undo["sha256"]:
            return FileResult(str(real), "unchanged", "already as before tagging")
        if undo and now == undo["tagged_sha256"]:  # untouched since: rebuild the original, every byte
            detail = _describe({k: (_text(v["new"]), _text(v["old"])) for k, v in record["fields"].items()})
            if dry_run:
                return FileResult(str(real), "would restore", detail)
            _restore_bytes(real, st, undo, current, keep_mtime)
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
    before = _fields(_open(real))
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
    _rewrite(real, st, before, old, keep_mtime=keep_mtime, drop_new_tag=not record.get("had_tag", True))
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
    the results file each record names (or `results`). Raises ValueError when `journal_path` is no journal.
    """
    records = _read_journal(Path(journal_path))
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
                result = FileResult(str(record["path"]), "failed", _reason(exc))
            summary.results.append(result)
            if progress:
                progress(done, len(records), result)
    finally:
        for target, stamp in stamps.items():
            _restamp(summary, stamp, Path(target))
    return summary
