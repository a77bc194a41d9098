"""basic-pitch (Spotify's polyphonic note transcriber, Bittner et al., ICASSP 2022) ported to PyTorch.

The network of `basic_pitch/models.py` (basic-pitch 0.4.0, Apache-2.0; its `nmp.onnx` converted by
tools/convert_basic_pitch.py into mer_tag/weights/basic_pitch/, with its LICENSE and NOTICE), in inference
form (batch norms folded into the convolutions, as in the ONNX file):

- input: 2-s windows of mono audio at 22.05 kHz (43,844 samples), each giving 172 frames (256-sample hop);
- a constant-Q transform (nnAudio's CQT2010v2: one octave of 36 complex kernels at 3 bins per semitone,
  applied to the signal halved 8 times by a low-pass filter; 309 bins from 27.5 Hz), its magnitude in dB
  scaled to 0–1 per window, a batch norm;
- harmonic stacking: the CQT shifted by the harmonics 0.5, 1 … 7, 8 channels of 264 bins;
- three small conv heads: pitch contours [172, 264] (3 bins per semitone), notes [172, 88] and onsets
  [172, 88] (one bin per piano key, A0 first), each a sigmoid posterior.

`transcribe` runs a whole signal in overlapping windows, as basic-pitch's `run_inference` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "basic_pitch"
WEIGHTS_FILE = "basic_pitch.safetensors"

SAMPLE_RATE = 22050  # Hz
HOP = 256  # samples per output frame (86.13 frames a second)
WINDOW_SAMPLES = 43844  # 2 s at 22.05 kHz less one hop: the model's fixed input length
WINDOW_FRAMES = 172  # output frames per window
OVERLAP_FRAMES = 30  # frames shared by neighbouring windows; half of them trimmed on each side
OVERLAP_SAMPLES = OVERLAP_FRAMES * HOP  # 7,680
WINDOW_HOP = WINDOW_SAMPLES - OVERLAP_SAMPLES  # 36,164 samples between window starts
FRAMES_PER_SECOND = SAMPLE_RATE // HOP  # 86: basic-pitch's own (floored) rate for the output length

CQT_BINS_PER_OCTAVE = 36  # 3 per semitone
CQT_OCTAVES = 9  # ceil(309 / 36)
CQT_BINS = 309  # 103 semitones from 27.5 Hz (the highest that fits under 11.025 kHz)
CQT_KERNEL = 256  # samples per CQT kernel and per low-pass filter
HARMONIC_SHIFTS = (-36, 0, 36, 57, 72, 84, 93, 101)  # round(36 * log2(h)) bins, h = 0.5, 1, 2 … 7
CONTOUR_BINS = 264  # 88 keys × 3
NOTE_BINS = 88  # piano keys, MIDI 21 (A0) to 108 (C8)
LOWEST_MIDI = 21


class BasicPitch(nn.Module):
    """[B, 43844] audio at 22.05 kHz → {'contour': [B, 172, 264], 'note': [B, 172, 88], 'onset': [B, 172, 88]}."""

    cqt_real: torch.Tensor  # buffers, registered in __init__
    cqt_imag: torch.Tensor
    lowpass: torch.Tensor
    cqt_scale: torch.Tensor
    input_scale: torch.Tensor
    input_shift: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("cqt_real", torch.zeros(CQT_BINS_PER_OCTAVE, 1, CQT_KERNEL))
        self.register_buffer("cqt_imag", torch.zeros(CQT_BINS_PER_OCTAVE, 1, CQT_KERNEL))
        self.register_buffer("lowpass", torch.zeros(1, 1, CQT_KERNEL))
        self.register_buffer("cqt_scale", torch.ones(CQT_BINS))  # sqrt of each bin's kernel length
        self.register_buffer("input_scale", torch.ones(1))  # the batch norm after the CQT, folded
        self.register_buffer("input_shift", torch.zeros(1))
        channels = len(HARMONIC_SHIFTS)
        self.contour_conv = nn.Conv2d(channels, 8, (3, 39), padding=(1, 19))
        self.contour_out = nn.Conv2d(8, 1, 5, padding=2)
        self.note_conv = nn.Conv2d(1, 32, 7, stride=(1, 3), padding=(3, 2))
        self.note_out = nn.Conv2d(32, 1, (7, 3), padding=(3, 1))
        self.onset_conv = nn.Conv2d(channels, 32, 5, stride=(1, 3), padding=(2, 1))
        self.onset_out = nn.Conv2d(33, 1, 3, padding=1)

    def cqt(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, samples] → [B, frames, 309] CQT magnitude: the top octave at the full rate, each lower one on
        the signal low-passed and halved once more, with a hop halved to match."""
        x = audio[:, None, :]
        hop = HOP
        octaves: list[torch.Tensor] = []
        for octave in range(CQT_OCTAVES):
            if octave:
                hop //= 2
                x = F.conv1d(F.pad(x, ((CQT_KERNEL - 1) // 2, (CQT_KERNEL - 1) // 2)), self.lowpass, stride=2)
            padded = F.pad(x, (CQT_KERNEL // 2, CQT_KERNEL // 2), mode="reflect")
            real = F.conv1d(padded, self.cqt_real, stride=hop)
            imag = F.conv1d(padded, self.cqt_imag, stride=hop)
            octaves.insert(0, torch.stack([real, imag], -1))  # lower octaves first
        cqt = torch.cat(octaves, 1)[:, -CQT_BINS:] * self.cqt_scale[:, None, None]
        return cqt.pow(2).sum(-1).sqrt().transpose(1, 2)

    @staticmethod
    def normalized_log(magnitude: torch.Tensor) -> torch.Tensor:
        """dB of the power, shifted and scaled to 0–1 within each window (a flat window gives 0)."""
        db = 10.0 * torch.log10(magnitude.pow(2) + 1e-10)
        db = db - db.amin((1, 2), keepdim=True)
        top = db.amax((1, 2), keepdim=True)
        return torch.where(top == 0, torch.zeros_like(db), db / torch.where(top == 0, torch.ones_like(top), top))

    @staticmethod
    def harmonic_stack(x: torch.Tensor) -> torch.Tensor:
        """[B, T, 309] → [B, 8, T, 264]: bin k of channel h holds bin k + shift(h) of the input (0 outside)."""
        bins = x.shape[-1]
        channels = []
        for shift in HARMONIC_SHIFTS:
            if shift >= 0:
                channels.append(F.pad(x[..., shift:], (0, shift)))
            else:
                channels.append(F.pad(x[..., : bins + shift], (-shift, 0)))
        return torch.stack(channels, 1)[..., :CONTOUR_BINS]

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalized_log(self.cqt(audio)) * self.input_scale + self.input_shift
        x = self.harmonic_stack(x)
        contour = torch.sigmoid(self.contour_out(F.relu(rowwise_conv(x, self.contour_conv))))
        note_pre = torch.sigmoid(self.note_out(F.relu(self.note_conv(contour))))
        onset_in = torch.cat([note_pre, F.relu(self.onset_conv(x))], 1)
        onset = torch.sigmoid(self.onset_out(onset_in))
        return {"contour": contour[:, 0], "note": note_pre[:, 0], "onset": onset[:, 0]}

    @classmethod
    def load(cls, folder: str | Path | None = None) -> BasicPitch:
        from safetensors.torch import load_file

        folder = Path(folder) if folder else WEIGHTS_DIR
        meta = json.loads((folder / "basic_pitch.json").read_text())
        if meta.get("window_samples") != WINDOW_SAMPLES or meta.get("contour_bins") != CONTOUR_BINS:
            raise ValueError(f"{folder}: weights for another basic-pitch shape ({meta})")
        model = cls()
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return model.eval()


def rowwise_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(x)` for a stride-1 'same' convolution whose kernel is a few frames tall and wide in frequency
    (the contour layer's 3 × 39), as one 1-D convolution along frequency per kernel row, shifted in time and
    summed: the same numbers within float rounding, 2.7 × faster on one CPU thread than the 2-D kernel
    (0.25 against 0.67 CPU-s for 30 s of audio), which was two thirds of the whole network's time."""
    rows = conv.kernel_size[0]
    pad_t, pad_f = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
    assert conv.bias is not None
    batch, _, frames, bins = x.shape
    padded = F.pad(x, (pad_f, pad_f, pad_t, pad_t))
    lines = padded.permute(0, 2, 1, 3).reshape(batch * (frames + 2 * pad_t), x.shape[1], bins + 2 * pad_f)
    per_row = [
        F.conv1d(lines, conv.weight[:, :, row, :]).reshape(batch, frames + 2 * pad_t, -1, bins)[:, row : row + frames]
        for row in range(rows)
    ]
    out = torch.stack(per_row).sum(0)
    return out.permute(0, 2, 1, 3) + conv.bias[None, :, None, None]


def windows(audio: np.ndarray) -> np.ndarray:
    """[n, 43844] overlapping windows of a 22.05 kHz signal, as basic-pitch cuts them: half an overlap of
    silence first, window starts 36,164 samples apart, the last one zero-padded."""
    signal = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, np.float32), np.asarray(audio, np.float32)])
    starts = range(0, max(1, signal.size), WINDOW_HOP)
    out = np.zeros((len(starts), WINDOW_SAMPLES), np.float32)
    for i, start in enumerate(starts):
        piece = signal[start : start + WINDOW_SAMPLES]
        out[i, : piece.size] = piece
    return out


def transcribe(model: BasicPitch, audio: np.ndarray, batch_size: int = 8) -> dict[str, np.ndarray]:
    """Posteriors of a whole 22.05 kHz mono signal: {'contour': [frames, 264], 'note': [frames, 88],
    'onset': [frames, 88]}, frames = floor(seconds × 86); the overlapping frames of neighbouring windows are
    trimmed (15 on each side) and the rest joined."""
    chunks = windows(audio)
    trim = OVERLAP_FRAMES // 2
    parts: dict[str, list[np.ndarray]] = {"contour": [], "note": [], "onset": []}
    with torch.inference_mode():
        for start in range(0, len(chunks), batch_size):
            out = model(torch.from_numpy(chunks[start : start + batch_size]))
            for key, value in out.items():
                parts[key].append(value[:, trim:-trim].reshape(-1, value.shape[-1]).numpy())
    n_frames = int(np.floor(len(audio) * FRAMES_PER_SECOND / SAMPLE_RATE))
    return {key: np.concatenate(value)[:n_frames] for key, value in parts.items()}
