"""Title, artist and album from an audio file's tags, via mutagen, and from the text chunks WAV and AIFF
carry of their own (which mutagen does not read); never raises."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

FIELDS = ("title", "artist", "album")

# mutagen's easy interfaces (EasyID3, EasyMP4, Vorbis comments, APEv2) all answer to FIELDS; two tag families
# do not, so they get their own keys, in FIELDS order: ID3 chunks in WAV and AIFF (an MP3 opens as EasyID3),
# and WMA's ASF attributes.
ID3_KEYS = ("TIT2", "TPE1", "TALB")
ASF_KEYS = ("Title", "Author", "WM/AlbumTitle")

# A WAV file's RIFF LIST/INFO chunk (what most rippers and editors write there) and an AIFF file's own text
# chunks, which have no album. Where a file also has ID3, its ID3 fields win and these fill the gaps.
RIFF_INFO_KEYS = {b"INAM": "title", b"IART": "artist", b"IPRD": "album"}
AIFF_TEXT_KEYS = {b"NAME": "title", b"AUTH": "artist"}
MAX_TEXT_BYTES = 64 * 1024  # one field; a longer "title" is not one
MAX_LIST_BYTES = 1024 * 1024  # a whole LIST/INFO chunk (every field of it, each under MAX_TEXT_BYTES)
MAX_CHUNKS = 10_000  # a walk over a damaged file stops here rather than seek through garbage


def read_tags(path: str | os.PathLike) -> dict[str, str | None]:
    """{"title", "artist", "album"}: each the tag's text (several values joined by "; ") or None."""
    tags = _mutagen_tags(path)
    missing = [field for field in FIELDS if tags[field] is None]
    if missing:
        native = _native_text(path)
        tags.update({field: native[field] for field in missing if native.get(field)})
    return tags


def _mutagen_tags(path: str | os.PathLike) -> dict[str, str | None]:
    empty = dict.fromkeys(FIELDS)
    try:
        import mutagen
        from mutagen.asf import ASFTags
        from mutagen.id3 import ID3

        audio = mutagen.File(os.fspath(path), easy=True)
        tags = audio.tags if audio is not None else None
        if tags is None:
            return empty
        keys = ID3_KEYS if isinstance(tags, ID3) else ASF_KEYS if isinstance(tags, ASFTags) else FIELDS
        return {field: _text(tags, key) for field, key in zip(FIELDS, keys)}
    except Exception:  # mutagen raises many types for damaged files; tags are optional
        return empty


def _text(tags, key: str) -> str | None:
    try:
        values = tags[key]
    except (KeyError, ValueError):  # absent, or not a valid key in this tag family
        return None
    if hasattr(values, "text"):  # an ID3 frame
        values = values.text
    values = values if isinstance(values, list) else [values]
    texts = [str(getattr(v, "value", v)).replace("\x00", "; ").strip() for v in values]  # APE: NUL-joined
    return "; ".join(t for t in texts if t) or None


# --- WAV and AIFF text chunks --------------------------------------------------------------------------


def _native_text(path: str | os.PathLike) -> dict[str, str]:
    """The fields a WAV's LIST/INFO chunk or an AIFF's NAME/AUTH chunks hold; {} for any other file, or a
    damaged one. Known by the file's first bytes, not its name."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12:
                return {}
            if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
                return _riff_info(handle)
            if header[:4] == b"FORM" and header[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_text(handle)
    except (OSError, struct.error, ValueError):  # unreadable or cut short: tags are optional
        pass
    return {}


def _chunks(handle: BinaryIO, byteorder: str):
    """(id, offset of the body, body size) for each chunk after the 12-byte file header, up to the end of the
    file; a body of odd size is followed by a pad byte (RIFF and IFF alike)."""
    fmt = "<4sI" if byteorder == "little" else ">4sI"
    end = os.fstat(handle.fileno()).st_size
    position = 12
    for _ in range(MAX_CHUNKS):
        if position + 8 > end:
            return
        handle.seek(position)
        header = handle.read(8)
        if len(header) < 8:
            return
        chunk_id, size = struct.unpack(fmt, header)
        yield chunk_id, position + 8, size
        position += 8 + size + (size & 1)


def _riff_info(handle: BinaryIO) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk_id, body, size in _chunks(handle, "little"):
        if chunk_id != b"LIST" or size < 4 or size > MAX_LIST_BYTES:
            continue
        handle.seek(body)
        data = handle.read(size)
        if data[:4] != b"INFO":
            continue
        offset = 4
        while offset + 8 <= len(data):
            key, length = struct.unpack("<4sI", data[offset : offset + 8])
            field = RIFF_INFO_KEYS.get(key)
            if field and field not in found and length <= MAX_TEXT_BYTES:
                text = _decode(data[offset + 8 : offset + 8 + length])
                if text:
                    found[field] = text
            offset += 8 + length + (length & 1)
    return found


def _aiff_text(handle: BinaryIO) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk_id, body, size in _chunks(handle, "big"):
        field = AIFF_TEXT_KEYS.get(chunk_id)
        if field and field not in found and size <= MAX_TEXT_BYTES:
            handle.seek(body)
            text = _decode(handle.read(size))
            if text:
                found[field] = text
    return found


def _decode(raw: bytes) -> str:
    """Text of a chunk: NUL-terminated, in no declared encoding. UTF-8 where it is valid (what current tools
    write), else Windows-1252 (what older Windows tools wrote), else Latin-1, which decodes any byte."""
    raw = raw.split(b"\x00", 1)[0]
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding).strip()
        except UnicodeDecodeError:
            continue
    return ""
