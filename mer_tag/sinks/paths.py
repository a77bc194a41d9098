"""How a result row spells a file's path, so that every name on disk survives CSV, JSON lines and Parquet.

Paths are bytes on disk. Python hands a name that is not valid UTF-8 (a Latin-1 `Mot\\xf6rhead/caf\\xe9.mp3` from
an old disk or a Samba share) over as text with stand-ins for the odd bytes (PEP 383), which no UTF-8 file or
Parquet string can hold. Such a path is written as a file URI of its bytes, `file:///Music/Mot%F6rhead/caf%E9.mp3`
(RFC 8089: every byte but letters, digits, `/` and `-._~` percent-encoded); every other path is written as it
is. Rows hold absolute paths, which never start with `file://`, so the two spellings cannot be confused: resume,
`tag`/`untag`, the report's links and the playlists find the very file scanned (docs/output.md).
"""

from __future__ import annotations

import os
from typing import overload
from urllib.parse import quote, unquote_to_bytes

URI_PREFIX = "file://"


@overload
def path_text(path: str | os.PathLike) -> str: ...
@overload
def path_text(path: None) -> None: ...
def path_text(path: str | os.PathLike | None) -> str | None:
    """`path` as a result row spells it: itself, or the file URI of its bytes when it is not valid UTF-8."""
    if path is None:
        return None
    text = os.fsdecode(os.fspath(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # stand-ins for bytes that are not UTF-8
        return URI_PREFIX + quote(os.fsencode(text), safe="/")
    return text


def path_of(text: str) -> str:
    """The file a result row's path names, as the filesystem calls it (the inverse of `path_text`)."""
    if text.startswith(URI_PREFIX):
        return os.fsdecode(unquote_to_bytes(text[len(URI_PREFIX) :]))
    return text


def shown(text: str) -> str:
    """A result row's path for people to read: the odd bytes of a name that is not UTF-8 shown as '�'."""
    if text.startswith(URI_PREFIX):
        return unquote_to_bytes(text[len(URI_PREFIX) :]).decode("utf-8", "replace")
    return text
