"""The basic-pitch port: shipped weights, shapes, and agreement with the original ONNX model.

The reference (tests/data/basic_pitch_reference.npz) is basic-pitch 0.4.0's own nmp.onnx run by
onnxruntime on media.vibrato_chord (tools/convert_basic_pitch.py --reference), every 4th frame kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from media import vibrato_chord
from mer_tag.models import basic_pitch as B

REFERENCE = Path(__file__).parent / "data" / "basic_pitch_reference.npz"


@pytest.fixture(scope="module")
def model():
    return B.BasicPitch.load()


def test_weights_ship_with_their_licence():
    folder = B.WEIGHTS_DIR
    assert "Apache License" in (folder / "LICENSE").read_text()[:200]
    assert "Spotify" in (folder / "NOTICE").read_text()
    meta = json.loads((folder / "basic_pitch.json").read_text())
    assert meta["window_samples"] == B.WINDOW_SAMPLES and len(meta["onnx_sha256"]) == 64


def test_port_matches_the_onnx_reference(model):
    expected = np.load(REFERENCE)
    batch = torch.from_numpy(B.windows(vibrato_chord())[:1])
    with torch.inference_mode():
        out = model(batch)
    step = int(expected["step"])
    for key in ("contour", "note", "onset"):
        got = out[key][0, ::step].numpy()
        assert got.shape == expected[key].shape
        np.testing.assert_allclose(got, expected[key], atol=1e-4, err_msg=key)
    # the reference is not trivially flat: the held A4 (MIDI 69) is a note, a silent key is not
    assert expected["note"][:, 69 - B.LOWEST_MIDI].max() > 0.5
    assert expected["note"][:, 100 - B.LOWEST_MIDI].max() < 0.3  # below the note-tracking threshold


def test_windows_cover_the_signal_with_basic_pitchs_overlap():
    audio = np.arange(100_000, dtype=np.float32)
    chunks = B.windows(audio)
    assert chunks.shape[1] == B.WINDOW_SAMPLES
    assert np.all(chunks[0, : B.OVERLAP_SAMPLES // 2] == 0)  # half an overlap of silence first
    assert chunks[0, B.OVERLAP_SAMPLES // 2] == 0.0 and chunks[0, B.OVERLAP_SAMPLES // 2 + 1] == 1.0
    assert chunks[1, 0] == B.WINDOW_HOP - B.OVERLAP_SAMPLES // 2  # the next window starts one hop later
    assert len(chunks) == -(-(audio.size + B.OVERLAP_SAMPLES // 2) // B.WINDOW_HOP)


def test_transcribe_gives_one_frame_per_86th_of_a_second(model):
    audio = vibrato_chord(seconds=3.0)
    post = B.transcribe(model, audio)
    n = int(np.floor(audio.size * B.FRAMES_PER_SECOND / B.SAMPLE_RATE))
    assert post["note"].shape == (n, 88) and post["onset"].shape == (n, 88) and post["contour"].shape == (n, 264)
    held = post["note"][:, 69 - B.LOWEST_MIDI]
    assert held[n // 4 : 3 * n // 4].mean() > 0.5  # the A4 sounds across the joins of the windows
