"""Lyrics as plain text: from a sidecar file (.txt, .lrc) in whatever encoding, or from the audio's tags.

`read_lyrics_file` and `embedded_lyrics` return the text as found (LRC timing removed); pass it through
`clean_lyrics` before use. Training and scanning both do, so a model always sees the same normal form.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from mer_tag.errors import MerTagError

MAX_LYRICS_BYTES = 1_000_000  # a long song is ~5 kB; anything near 1 MB is a wrongly matched file
MAX_CONTROL_FRACTION = 0.01  # text has almost no control characters; binary data has ~15%

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab, newlines, form feed

# LRC: "[01:02.50]" line timestamps (several may share a line), "<01:02.50>" word timestamps, and
# "[ar:Artist]" ID-tag lines (ar, ti, al, au, by, offset, length, re, ve, #...).
_LRC_TIME = re.compile(r"[\[<]\d+:\d{1,2}(?:[.:]\d{1,3})?[\]>]")
_LRC_LINE = re.compile(r"^\s*\[\d+:\d{1,2}(?:[.:]\d{1,3})?\]", re.MULTILINE)  # a timed line: this is LRC
_LRC_ID_TAG = re.compile(r"^\s*\[[A-Za-z#]+:[^\]]*\]\s*$")

# Tag keys that hold unsynchronised lyrics, per tag family (Vorbis comment and APEv2 keys are
# case-insensitive in mutagen; MP4 and ASF keys are exact).
_LYRICS_KEYS = ("LYRICS", "UNSYNCEDLYRICS", "\xa9lyr", "WM/Lyrics")
_ID3_TXXX_LYRICS = frozenset({"LYRICS", "UNSYNCEDLYRICS"})


class LyricsError(MerTagError):
    """A lyrics file that gives no text; the message is one line a user can read."""


def read_lyrics_file(path: str | os.PathLike) -> str:
    """The text of a lyrics file: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252/Latin-1.

    LRC (an `.lrc` file, or any text with timed lines) loses its timestamps and ID tags. Raises
    LyricsError for an unreadable, binary, oversized or empty file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LYRICS_BYTES:
            raise LyricsError(f"too large for lyrics ({size / 1e6:.1f} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise LyricsError(f"cannot read file ({(exc.strerror or str(exc)).lower()})") from exc
    text = _decode(data)
    if path.suffix.lower() == ".lrc" or _LRC_LINE.search(text):
        text = _strip_lrc(text)
    if not text.strip():
        raise LyricsError("no lyrics text (empty file)")
    return text


def _decode(data: bytes) -> str:
    """Bytes to text; UTF-8 is tried strictly first, since Latin-1 would accept (and garble) anything."""
    if data.startswith(_UTF16_BOMS):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data:
        raise LyricsError("binary data, not text (NUL bytes)")
    else:
        text = _decode_8bit(data)
    controls = len(_CONTROL.findall(text))
    if controls > MAX_CONTROL_FRACTION * len(text):
        raise LyricsError(f"binary data, not text ({controls} control characters)")
    return text


def _decode_8bit(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):  # utf-8-sig also reads UTF-8 without a BOM
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # cp1252 leaves five bytes undefined; Latin-1 maps every byte


def plain_lyrics(text: str) -> str:
    """Lyrics text as plain lines: an LRC's timestamps and ID tags dropped when it has timed lines (beets'
    lyrics plugin stores synced lyrics so)."""
    return _strip_lrc(text) if _LRC_LINE.search(text) else text


def _strip_lrc(text: str) -> str:
    """LRC to plain lines: drop ID-tag lines and every line or word timestamp."""
    lines = (line for line in text.splitlines() if not _LRC_ID_TAG.match(line))
    return "\n".join(_LRC_TIME.sub("", line).strip() for line in lines)


def clean_lyrics(text: str) -> str:
    """The one normal form of lyrics: NFC, \\n newlines, single spaces, no blank-line runs.

    Each line has its whitespace runs collapsed to one space and is stripped; runs of blank lines
    become one blank line (verse breaks survive); leading and trailing blank lines go. Punctuation
    and case are kept. Idempotent.
    """
    lines = [" ".join(line.split()) for line in unicodedata.normalize("NFC", text).splitlines()]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def embedded_lyrics(path: str | os.PathLike) -> str | None:
    """Unsynchronised lyrics from the file's tags, or None (no tags, no lyrics, unreadable file).

    Reads ID3 USLT (any language and description; also ID3 in WAV and AIFF) or TXXX:LYRICS, Vorbis
    comments LYRICS / UNSYNCEDLYRICS (FLAC, Ogg, Opus), MP4 ©lyr, APEv2 Lyrics and ASF WM/Lyrics.
    """
    try:
        import mutagen
        from mutagen.id3 import ID3

        audio = mutagen.File(os.fspath(path))
        tags = audio.tags if audio is not None else None
        if tags is None:
            return None
        text = _id3_lyrics(tags) if isinstance(tags, ID3) else _keyed_lyrics(tags)
    except Exception:  # mutagen raises many types for damaged files; lyrics are optional
        return None
    if not text or not text.strip():
        return None
    return _strip_lrc(text) if _LRC_LINE.search(text) else text  # some taggers store synced LRC


def _id3_lyrics(tags) -> str | None:
    """The first non-empty USLT frame (others are usually translations), else a TXXX:LYRICS."""
    uslt = [frame.text for frame in tags.getall("USLT")]
    txxx = ["\n".join(f.text) for f in tags.getall("TXXX") if f.desc.upper() in _ID3_TXXX_LYRICS]
    return next((text for text in uslt + txxx if text.strip()), None)


def _keyed_lyrics(tags) -> str | None:
    for key in _LYRICS_KEYS:
        try:
            values = tags[key]
        except (KeyError, ValueError):  # absent, or not even a valid key in this tag family
            continue
        values = values if isinstance(values, list) else [values]
        return "\n".join(_tag_text(v) for v in values)
    return None


def _tag_text(value) -> str:
    """One tag value as text: str for Vorbis and MP4, APETextValue (values joined by NUL), ASF attribute."""
    text = value.value if hasattr(value, "value") else value
    return str(text).replace("\x00", "\n")
