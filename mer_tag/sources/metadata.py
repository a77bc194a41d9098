"""Title, artist and album from an audio file's tags, via mutagen; never raises."""

from __future__ import annotations

import os

FIELDS = ("title", "artist", "album")

# mutagen's easy interfaces (EasyID3, EasyMP4, Vorbis comments, APEv2) all answer to FIELDS; two tag families
# do not, so they get their own keys, in FIELDS order: ID3 chunks in WAV and AIFF (an MP3 opens as EasyID3),
# and WMA's ASF attributes.
ID3_KEYS = ("TIT2", "TPE1", "TALB")
ASF_KEYS = ("Title", "Author", "WM/AlbumTitle")


def read_tags(path: str | os.PathLike) -> dict[str, str | None]:
    """{"title", "artist", "album"}: each the tag's text (several values joined by "; ") or None."""
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
