"""MIDI files to note events of the pitched (non-drum) instruments; robust to garbage.

The notes are pretty_midi's (on mido's lenient parse), to the bit. Most files take a direct reader of the
standard MIDI file format that applies pretty_midi's rules itself (tempo map from track 0, note-on/off
pairing per track and channel, channel 10 as drums) without building mido's and pretty_midi's objects:
14 ms of CPU a file instead of 71 (the mean over the dataset's 152 files). Anything it does not handle
exactly as they do (SMPTE time, running status after system messages, malformed meta events, a truncated
file...) goes through mido and pretty_midi themselves, so results and error messages stay theirs.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from mer_tag.errors import MerTagError

if TYPE_CHECKING:
    import numpy as np

MAX_MIDI_BYTES = 10_000_000  # a dense orchestral score is ~1 MB; larger is not a song's MIDI


class MidiError(MerTagError):
    """A MIDI file that gives no notes; the message is one line a user can read."""


def read_midi_notes(path: str | os.PathLike) -> np.ndarray:
    """Every non-drum note as float32 rows (pitch, start_s, duration_s, velocity), by start then pitch.

    Raises MidiError for an unreadable, oversized, non-MIDI or corrupt file, or one with no pitched notes.
    """
    import numpy as np

    notes = _read_notes(path)
    if not notes:
        raise MidiError("no notes (only drums, or an empty file)")
    rows = np.asarray(notes, dtype=np.float32)
    return rows[np.lexsort((rows[:, 0], rows[:, 1]))]


def _read_notes(path: str | os.PathLike) -> list[tuple]:
    """(pitch, start_s, duration_s, velocity) of every non-drum note, in pretty_midi's order."""
    data = _checked_bytes(path)
    try:
        return _fast_notes(data)
    except (_Unusual, IndexError):  # IndexError: the bytes end mid-event
        pass
    midi = _parse(path)
    return [
        (n.pitch, n.start, n.end - n.start, n.velocity)
        for instrument in midi.instruments
        if not instrument.is_drum
        for n in instrument.notes
    ]


def _checked_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, or MidiError for one that is unreadable, empty, oversized or not MIDI."""
    try:
        size = os.path.getsize(path)
        data = b""
        if 0 < size <= MAX_MIDI_BYTES:
            with open(path, "rb") as file:
                data = file.read()
    except OSError as exc:
        raise MidiError(f"cannot read file ({(exc.strerror or str(exc)).lower()})") from exc
    if size == 0:
        raise MidiError("empty file (0 bytes)")
    if size > MAX_MIDI_BYTES:
        raise MidiError(f"too large for a MIDI file ({size / 1e6:.1f} MB)")
    if data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    return data


class _Unusual(Exception):
    """Something `_fast_notes` leaves to mido and pretty_midi, so that it is handled exactly as they do."""


MAX_TICK = 10_000_000  # pretty_midi's MAX_TICK: a larger last tick is refused as corrupt
MAX_MESSAGE_BYTES = 1_000_000  # mido's MAX_MESSAGE_LENGTH for meta and sysex data
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
# Meta events whose data mido decodes by position (a shorter one raises), with the bytes each needs.
_META_MIN_BYTES = {0x20: 1, 0x51: 3, 0x54: 5, 0x58: 4, 0x59: 2}


def _fast_notes(data: bytes) -> list[tuple]:
    """`_read_notes` for a well-formed file, straight from its bytes; raises _Unusual for anything else."""
    import numpy as np

    tracks, resolution = _smf_tracks(data)
    tick_scales = [(0, 60.0 / (120.0 * resolution))]  # pretty_midi's tempo map: track 0's tempo events
    for tick, tempo in tracks[0][1]:
        if tempo == 0:
            raise _Unusual
        scale = 60.0 / ((6e7 / tempo) * resolution)
        if tick == 0:
            tick_scales = [(0, scale)]
        elif scale != tick_scales[-1][1]:
            tick_scales.append((tick, scale))
    max_tick = max(track[2] for track in tracks) + 1
    if max_tick > MAX_TICK:
        raise _Unusual
    tick_to_time = _tick_to_time(tick_scales, max_tick, np)
    instruments: dict[tuple, list] = {}  # (program, channel, track) → notes, in pretty_midi's order
    for index, (events, _, _) in enumerate(tracks):
        _pair_notes(events, index, tick_to_time, instruments)
    return [note for (_, channel, _), notes in instruments.items() if channel != DRUM_CHANNEL for note in notes]


def _tick_to_time(tick_scales, max_tick: int, np):
    """pretty_midi's `_update_tick_to_time`, the same float64 arithmetic, so times match to the bit."""
    max_tick = max(max_tick, max(tick for tick, _ in tick_scales))
    times = np.zeros(max_tick + 1)
    last_end_time = 0
    for (start_tick, scale), (end_tick, _) in zip(tick_scales[:-1], tick_scales[1:]):
        times[start_tick : end_tick + 1] = last_end_time + scale * np.arange(end_tick - start_tick + 1)
        last_end_time = times[end_tick]
    start_tick, scale = tick_scales[-1]
    times[start_tick:] = last_end_time + scale * np.arange(max_tick + 1 - start_tick)
    return times


def _pair_notes(events, track: int, tick_to_time, instruments: dict) -> None:
    """pretty_midi's `_load_instruments` for notes: a note-off closes every open note of its channel and
    pitch begun at an earlier tick; the instrument is the channel's program when the note closes."""
    program = [0] * 16
    open_notes: dict[tuple, list] = {}
    for tick, status, pitch, velocity in events:
        kind, channel = status & 0xF0, status & 0x0F
        if kind == 0xC0:
            program[channel] = pitch
        elif kind == 0x90 and velocity > 0:
            open_notes.setdefault((channel, pitch), []).append((tick, velocity))
        elif (kind == 0x80 or kind == 0x90) and (channel, pitch) in open_notes:
            waiting = open_notes[(channel, pitch)]
            close = [(start, vel) for start, vel in waiting if start != tick]
            keep = [(start, vel) for start, vel in waiting if start == tick]
            if close:
                notes = instruments.setdefault((program[channel], channel, track), [])
                end = tick_to_time[tick]
                for start, vel in close:
                    begin = tick_to_time[start]
                    notes.append((pitch, begin, end - begin, vel))
            if close and keep:
                open_notes[(channel, pitch)] = keep
            else:
                del open_notes[(channel, pitch)]


def _smf_tracks(data: bytes) -> tuple[list, int]:
    """Each track's (note and program events [(tick, status, byte 1, byte 2)], tempo events [(tick, µs per
    beat)], last tick) and the ticks per beat, read as mido reads with clip=True."""
    if len(data) < 14 or data[4:8] != b"\x00\x00\x00\x06":
        raise _Unusual
    n_tracks = int.from_bytes(data[10:12], "big", signed=True)
    resolution = int.from_bytes(data[12:14], "big", signed=True)
    if n_tracks < 1 or resolution <= 0:  # no tracks, or SMPTE time
        raise _Unusual
    pos, tracks = 14, []
    for index in range(n_tracks):
        if data[pos : pos + 4] != b"MTrk" or pos + 8 > len(data):
            raise _Unusual
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        start, end = pos + 8, pos + 8 + size
        if end > len(data):
            raise _Unusual
        tracks.append(_smf_track(data, start, end, first=index == 0))
        pos = end
    return tracks, resolution


def _smf_track(data: bytes, pos: int, end: int, first: bool) -> tuple[list, list, int]:
    events, tempos, tick, last_status = [], [], 0, None
    if pos == end:
        raise _Unusual  # an empty track: pretty_midi fails on it
    while pos < end:
        delta, pos = _varint(data, pos)
        tick += delta
        status = data[pos]
        pos += 1
        if status < 0x80:  # running status: this byte is the first data byte
            if last_status is None or last_status >= 0xF0:
                raise _Unusual
            status, pos = last_status, pos - 1
        elif status != 0xFF:
            last_status = status
        if status == 0xFF:
            kind = data[pos]
            length, pos = _varint(data, pos + 1)
            body = data[pos : pos + length]
            pos += length
            if length > MAX_MESSAGE_BYTES or len(body) < _META_MIN_BYTES.get(kind, 0) or (kind == 0 and length == 1):
                raise _Unusual
            if kind == 0x51 and first:
                tempos.append((tick, int.from_bytes(body[:3], "big")))
            elif kind == 0x54 and body[0] >> 5 > 3:
                raise _Unusual  # mido knows no such SMPTE frame rate
            elif kind == 0x58 and first and body[0] == 0:
                raise _Unusual  # pretty_midi refuses a zero numerator
            elif kind == 0x59 and not (-7 <= int.from_bytes(body[:1], "big", signed=True) <= 7 and body[1] in (0, 1)):
                raise _Unusual  # mido refuses an unknown key
        elif status in (0xF0, 0xF7):
            length, pos = _varint(data, pos)
            if length > MAX_MESSAGE_BYTES:
                raise _Unusual
            pos += length
        elif status >= 0xF0:
            raise _Unusual  # system common and real-time messages: rare in files
        else:
            n_data = 1 if 0xC0 <= status < 0xE0 else 2
            first_byte = min(data[pos], 127)
            second = min(data[pos + 1], 127) if n_data == 2 else 0
            pos += n_data
            if status >= 0xC0 and status < 0xD0 or status < 0xA0:
                events.append((tick, status, first_byte, second))
    if pos != end:
        raise _Unusual  # the last event runs past the track's end (mido would read on into the next chunk)
    return events, tempos, tick


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos


def _parse(path: str | os.PathLike):
    """pretty_midi's view of the file; mido parses it leniently (clip=True keeps sloppy data bytes)."""
    import mido
    import pretty_midi

    try:
        with warnings.catch_warnings():  # pretty_midi warns about odd but usable files
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(mido_object=mido.MidiFile(os.fspath(path), clip=True))
    except Exception as exc:  # mido and pretty_midi raise many types: EOFError, ValueError, KeyError...
        reason = "file ends early" if isinstance(exc, EOFError) else " ".join(str(exc).split())[:120]
        raise MidiError(f"corrupt MIDI ({reason or type(exc).__name__})") from exc
