"""MIDI files to note events of the pitched (non-drum) instruments, via pretty_midi; robust to garbage."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAX_MIDI_BYTES = 10_000_000  # a dense orchestral score is ~1 MB; larger is not a song's MIDI
NOTE_COLUMNS = ("pitch", "start_s", "duration_s", "velocity")


class MidiError(Exception):
    """A MIDI file that gives no notes; the message is one line a user can read."""


def read_midi_notes(path: str | os.PathLike) -> np.ndarray:
    """Every non-drum note as float32 rows (pitch, start_s, duration_s, velocity), by start then pitch.

    Raises MidiError for an unreadable, oversized, non-MIDI or corrupt file, or one with no pitched notes.
    """
    import numpy as np

    midi = _parse(path)
    notes = [(n.pitch, n.start, n.end - n.start, n.velocity)
             for instrument in midi.instruments if not instrument.is_drum for n in instrument.notes]
    if not notes:
        raise MidiError("no notes (only drums, or an empty file)")
    rows = np.asarray(notes, dtype=np.float32)
    return rows[np.lexsort((rows[:, 0], rows[:, 1]))]


def _parse(path: str | os.PathLike):
    """pretty_midi's view of the file; mido parses it leniently (clip=True keeps sloppy data bytes)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise MidiError(f"cannot read file ({(exc.strerror or str(exc)).lower()})") from exc
    if size == 0:
        raise MidiError("empty file (0 bytes)")
    if size > MAX_MIDI_BYTES:
        raise MidiError(f"too large for a MIDI file ({size / 1e6:.1f} MB)")
    if magic != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    import mido
    import pretty_midi

    try:
        with warnings.catch_warnings():  # pretty_midi warns about odd but usable files
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(mido_object=mido.MidiFile(os.fspath(path), clip=True))
    except Exception as exc:  # mido and pretty_midi raise many types: EOFError, ValueError, KeyError...
        reason = "file ends early" if isinstance(exc, EOFError) else " ".join(str(exc).split())[:120]
        raise MidiError(f"corrupt MIDI ({reason or type(exc).__name__})") from exc
