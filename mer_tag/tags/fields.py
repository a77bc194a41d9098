"""A file's tag as named text fields, one adapter per tag family, so the rest of tags/ never asks which.

Where the mood goes follows MusicBrainz Picard, so players that show a "Mood" find it: ID3v2.4 `TMOO`,
ID3v2.3 `TXXX:MOOD` (v2.3 has no TMOO, and a file keeps its ID3 version), Vorbis comment `MOOD` (FLAC,
Ogg Vorbis, Opus), MP4 `----:com.apple.iTunes:MOOD`, APEv2 `Mood` (WavPack, Musepack, Monkey's Audio);
WAV and AIFF through their ID3 chunk, and an MP3 without a tag gets an ID3v2.4 one. mer-tag's own fields
(`--extra-fields`: MER_TAG_MODEL, MER_TAG_CONFIDENCE, ...) go beside it: ID3 `TXXX:NAME`, MP4
`----:com.apple.iTunes:NAME`, Vorbis and APEv2 `NAME`. `WRITTEN` and `field_key` say the same for code (a
plugin that reads or writes what `mer-tag tag` does).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mer_tag.tags.outcome import TagError, reason

MOOD = "MOOD"
MP4_MEAN = "----:com.apple.iTunes:"
# What `mer-tag tag` writes in each tag family (a journal record's "format"): (the mood's key, the prefix of
# each of mer-tag's own fields), keys as mutagen names them (ID3 frame HashKey, Vorbis comment and APEv2
# item names, MP4 atom). ID3v2.2 is read, never written (mutagen saves only v2.3 and v2.4).
WRITTEN = {
    "id3v2.4": ("TMOO", "TXXX:"),
    "id3v2.3": ("TXXX:MOOD", "TXXX:"),  # TMOO is new in v2.4
    "vorbis": (MOOD, ""),
    "mp4": (MP4_MEAN + MOOD, MP4_MEAN),
    "apev2": ("Mood", ""),
}


def field_key(family: str, name: str = MOOD) -> str:
    """The key `mer-tag tag` writes `name` under in a tag of `family` (a key of WRITTEN): the mood by default,
    else one of its own fields, e.g. field_key("mp4", "MER_TAG_MODEL") == "----:com.apple.iTunes:MER_TAG_MODEL".
    KeyError for a family it does not write."""
    mood, prefix = WRITTEN[family]
    return mood if name == MOOD else prefix + name


class Fields:
    """A file's tag as named text fields. A value is {"text": [...]} plus what an exact restore needs in
    that format (ID3 text encoding, MP4 data type, the file's own spelling of a key); None is absent."""

    kind = ""  # the tag family: a key of WRITTEN, or id3v2.2

    def __init__(self, tags, audio=None, had_tag: bool = True):
        self.tags, self.audio, self.had_tag = tags, audio, had_tag

    def key(self, name: str = MOOD) -> str:
        """Where `mer-tag tag` writes `name` (the mood, or one of its own fields) in this tag."""
        return field_key(self.kind, name)

    @property
    def mood_key(self) -> str:
        return self.key(MOOD)

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


class ID3Fields(Fields):
    def __init__(self, tags, audio=None, had_tag=True):
        super().__init__(tags, audio, had_tag)
        major, minor = tags.version[:2]
        self.version = minor if major == 2 else 4  # an ID3v1-only file gets a new v2.4 tag...
        self.had_tag = had_tag and major == 2  # ...which untag removes again
        self.kind = f"id3v2.{self.version}"

    def key(self, name=MOOD):
        return field_key("id3v2.4" if self.version == 4 else "id3v2.3", name)  # a v2.2 tag is read as v2.3

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
        # mutagen shows an ID3v1 tag's fields as frames: they stay in the v1 tag, the v2 tag was ours, unless
        # someone has put frames of their own in it since (then it stays, without the mood).
        if self.tags.unknown_frames or not self._only_id3v1_left():
            return False
        delete(self.audio.filename, delete_v1=False)
        return True

    def _only_id3v1_left(self) -> bool:
        """Whether every frame left is one of the file's ID3v1 tag, as mutagen reads that tag into frames."""
        from mutagen.id3 import ParseID3v1

        with open(self.audio.filename, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 128))
            tail = f.read()
        v1 = {frame.HashKey: frame for frame in (ParseID3v1(tail) or {}).values()} if tail[:3] == b"TAG" else {}
        return all(key in v1 and repr(v1[key]) == repr(frame) for key, frame in self.tags.items())  # encoding too


class VorbisFields(Fields):
    kind = "vorbis"

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


class MP4Fields(Fields):
    kind = "mp4"

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


class APEFields(Fields):
    kind = "apev2"

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


def open_audio(path: Path):
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


def fields_of(audio) -> Fields:
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
            raise TagError(f"{type(audio).__name__} files can't carry tags: {reason(exc)}") from None
    for tag_type, adapter in ((ID3, ID3Fields), (VComment, VorbisFields), (MP4Tags, MP4Fields), (APEv2, APEFields)):
        if isinstance(audio.tags, tag_type):
            return adapter(audio.tags, audio, had_tag)
    raise TagError(f"no mood field known for {type(audio.tags).__name__} tags")


def read_mood(path: str | Path) -> str | None:
    """The mood a player would show for this file, whatever spelling it uses; None when it has none."""
    return file_mood(Path(path), fields_of(open_audio(Path(path))))


def file_mood(path: Path, fields: Fields) -> str | None:
    from mutagen.apev2 import APEv2, error

    if fields.mood() or isinstance(fields, APEFields):
        return fields.mood()
    try:  # some MP3s carry an APEv2 tag besides (or instead of) ID3: read, never written
        return APEFields(APEv2(path)).mood()
    except error:
        return None
