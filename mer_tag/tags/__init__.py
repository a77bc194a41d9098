"""Mood tags written into the audio files themselves: safely, and undoably.

One module a job, each importing only those below it in this list:

- drivers.py: `write_tags` and `untag`, and their per-file steps
- replace.py: copy -> write -> verify -> replace, the temp copy beside the file with its lock, `clear_leftovers`
- journal.py: the records `tag` writes before each replace and `untag` reads back
- delta.py: the byte recipe in each record that rebuilds the original from the tagged file
- checksum.py: a checksum of the audio alone (payload bytes or demuxed packets), so no edit touches it
- fields.py: a file's tag as text fields, one adapter per tag family (ID3, Vorbis, MP4, APEv2); `read_mood`;
  `field_key`: the key `tag` writes the mood (or one of its own fields) under in each family
- templates.py: the mood's text from a result row (presets, `mood_text`), and the fields beside it
- outcome.py: `TagError`, `FileResult`, `TagSummary`

Every error raised on purpose is a MerTagError: `TemplateError` and `JournalError` stop a run before a file
is touched; `TagError` is one file's reason, reported in its `FileResult` while the run goes on.
"""

from __future__ import annotations

from mer_tag.tags.checksum import audio_checksum
from mer_tag.tags.drivers import read_rows, untag, write_tags
from mer_tag.tags.fields import WRITTEN, field_key, read_mood
from mer_tag.tags.journal import JournalError
from mer_tag.tags.outcome import FileResult, Progress, TagError, TagSummary
from mer_tag.tags.replace import clear_leftovers
from mer_tag.tags.templates import (
    SAMPLE_ROW,
    SURE_ENOUGH,
    TEMPLATE_FIELDS,
    TemplateError,
    mood_text,
    presets,
    template_text,
)

__all__ = [
    "SAMPLE_ROW",
    "SURE_ENOUGH",
    "TEMPLATE_FIELDS",
    "WRITTEN",
    "FileResult",
    "JournalError",
    "Progress",
    "TagError",
    "TagSummary",
    "TemplateError",
    "audio_checksum",
    "clear_leftovers",
    "field_key",
    "mood_text",
    "presets",
    "read_mood",
    "read_rows",
    "template_text",
    "untag",
    "write_tags",
]
