"""Notes from basic-pitch's posteriors and what they say about how the music is played (mer_tag.expressive).

Posteriors are built by hand here (the port itself is held to the ONNX model in test_basic_pitch.py), and
one end-to-end check runs the port on the vibrato clip."""

from __future__ import annotations

import numpy as np

from media import vibrato_chord
from mer_tag import expressive as E

FPS = E.FRAMES_PER_SECOND


def posteriors(notes, n_frames: int = 300, vibrato_hz: float = 0.0, extent: float = 0.0):
    """Hand-made posteriors: each (start, end, midi) a note with an onset; the contour follows its pitch,
    with an optional vibrato (extent in semitones)."""
    note = np.zeros((n_frames, 88))
    onset = np.zeros((n_frames, 88))
    contour = np.zeros((n_frames, 264))
    for start, end, midi in notes:
        key = midi - E.LOWEST_MIDI
        note[start:end, key] = 0.8
        onset[start, key] = 0.9
        t = np.arange(start, end) / FPS
        bins = key * 3 + 1 + 3 * extent * np.sin(2 * np.pi * vibrato_hz * t)
        grid = np.arange(264)[None, :]
        contour[start:end] = np.maximum(contour[start:end], np.exp(-0.5 * ((grid - bins[:, None]) / 0.7) ** 2))
    return {"note": note, "onset": onset, "contour": contour}


def named(values: np.ndarray) -> dict[str, float]:
    return dict(zip(E.FEATURE_NAMES, values.tolist(), strict=True))


def test_notes_are_found_where_they_were_put():
    post = posteriors([(10, 60, 60), (70, 150, 64), (70, 150, 67)])
    found = sorted((n.start, n.pitch) for n in E.transcribe_notes(post))
    assert found == [(10, 60), (70, 64), (70, 67)]


def test_short_blips_are_not_notes():
    assert E.transcribe_notes(posteriors([(10, 15, 60)])) == []


def test_vibrato_is_measured_and_a_plain_note_has_none():
    plain = named(E.expressive_features(E.transcribe_notes(p := posteriors([(0, 200, 69)])), 300, p["note"]))
    sung = posteriors([(0, 200, 69)], vibrato_hz=6.0, extent=0.5)
    wavy = named(E.expressive_features(E.transcribe_notes(sung), 300, sung["note"]))
    assert plain["vibrato_share"] == 0.0 and wavy["vibrato_share"] == 1.0
    assert abs(wavy["vibrato_rate"] - 6.0) < 0.6
    assert 0.2 < wavy["vibrato_extent"] < 0.8


def test_texture_counts_the_notes_sounding_at_once():
    chordal = posteriors([(0, 200, 60), (0, 200, 64), (0, 200, 67)])
    values = named(E.expressive_features(E.transcribe_notes(chordal), 300, chordal["note"]))
    assert values["layers_mean"] == 3.0 and values["layers_max"] == 3.0
    assert abs(values["silence_share"] - 100 / 300) < 0.02


def test_melody_contour_and_range():
    line = posteriors([(i * 25, i * 25 + 20, p) for i, p in enumerate([60, 62, 64, 65, 67, 72])], n_frames=160)
    values = named(E.expressive_features(E.transcribe_notes(line), 160, line["note"]))
    assert values["melody_up_share"] == 1.0 and values["melody_down_share"] == 0.0
    assert 8 <= values["melody_range"] <= 12 and values["staccato_share"] == 0.0
    assert abs(values["note_density"] - 6 / (160 / FPS)) < 0.01


def test_no_notes_gives_zeros_and_full_silence():
    values = named(E.expressive_features([], 100))
    assert values["silence_share"] == 1.0 and values["note_density"] == 0.0


def test_the_port_hears_vibrato_in_a_sung_note():
    from mer_tag.models.basic_pitch import BasicPitch, transcribe

    post = transcribe(BasicPitch.load(), vibrato_chord(seconds=3.0))
    notes = E.transcribe_notes(post)
    assert 69 in {n.pitch for n in notes}
    values = named(E.expressive_features(notes, len(post["note"]), post["note"]))
    assert values["vibrato_share"] > 0 and 5.0 < values["vibrato_rate"] < 7.0
