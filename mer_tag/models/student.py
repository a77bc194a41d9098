"""A small student of musicnn: a 1-D CNN over coarse log-mel frames that imitates musicnn's 200-d
embeddings of 3-second patches at a small fraction of the cost.

musicnn is 1.40 GMAC per 3-s patch (466 MMAC per second of audio, 112 GMAC for a 4-minute track; its
timbral convs are most of it); the shipped student is 8.0 MMAC per second (1.9 GMAC for the same track,
1/58 of musicnn: `macs_per_second`, checked against torch's flop counter in tests/test_student.py), and
its input is a 64-band mel at 31 frames/s instead of 96 bands at 62. It is trained once, by
`tools/distill_musicnn.py`, to regress musicnn's penultimate embedding of every 3-s window of the training
clips; the mood head (`crnn.MusicnnCRNN`) then runs on its embeddings exactly as on musicnn's.

Input: log-mel chunks [B, n_mels, frames] (`features.logmel` at 16 kHz, n_fft 1024, hop 512) and window
bounds in output steps; output: [B, windows, 200].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mer_tag.features import MUSICNN_PATCH_SECONDS

WEIGHTS_DIR = Path(__file__).parent.parent / "weights" / "musicnn_student"
WEIGHTS_FILE = "student.safetensors"
DIMS_FILE = "student.json"  # the dimensions and feature settings the weights were trained with


def conv_block(c_in: int, c_out: int, kernel: int, pool: bool) -> nn.Sequential:
    layers = [
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool1d(2, ceil_mode=True))
    return nn.Sequential(*layers)


class MusicnnStudent(nn.Module):
    """Conv1d blocks over time (mel bands as channels), three of them halving the frame rate (stride 8),
    then mean and max over each 3-s window, and a linear map to musicnn's embedding space."""

    mel_mean: torch.Tensor  # buffers, registered in __init__
    mel_std: torch.Tensor
    embed_mean: torch.Tensor
    embed_std: torch.Tensor

    def __init__(
        self,
        n_mels: int = 64,
        channels=(256, 256, 256, 256),
        kernels=(5, 3, 3, 3),
        embed_dim: int = 200,
        frame_seconds: float = 512 / 16000,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dims: dict[str, Any] = {
            "n_mels": n_mels,
            "channels": list(channels),
            "kernels": list(kernels),
            "embed_dim": embed_dim,
            "frame_seconds": frame_seconds,
            "dropout": dropout,
        }
        self.frame_seconds = frame_seconds
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        blocks, c_in = [], n_mels
        for i, (c_out, k) in enumerate(zip(channels, kernels)):
            blocks.append(conv_block(c_in, c_out, k, pool=i < len(channels) - 1))
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self.stride = 2 ** (len(channels) - 1)  # input frames per output step
        self.step_seconds = frame_seconds * self.stride  # 0.256 s at 16 kHz, hop 512
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * c_in, embed_dim)
        # musicnn's embedding statistics: the loss is taken on standardised targets, outputs are in musicnn's units
        self.register_buffer("embed_mean", torch.zeros(embed_dim))
        self.register_buffer("embed_std", torch.ones(embed_dim))

    def steps(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, frames] → [B, C, frames / stride] features over time."""
        return self.cnn((mel - self.mel_mean[:, None]) / self.mel_std[:, None])

    def window_bounds(self, starts_s, n_steps: int, length_s: float = MUSICNN_PATCH_SECONDS) -> list[tuple[int, int]]:
        """Output-step ranges [a, b) of windows starting at `starts_s` seconds, each at least one step long."""
        bounds = []
        for start in starts_s:
            a = min(int(start / self.step_seconds), n_steps - 1)
            b = min(max(a + 1, int(round((start + length_s) / self.step_seconds))), n_steps)
            bounds.append((a, b))
        return bounds

    def pool(self, feats: torch.Tensor, bounds: list[tuple[int, int]]) -> torch.Tensor:
        """[B, C, S] features, P windows → [B, P, embed_dim] embeddings in musicnn's units."""
        pooled = torch.stack([torch.cat([feats[:, :, a:b].mean(2), feats[:, :, a:b].amax(2)], 1) for a, b in bounds], 1)
        return self.out(self.drop(pooled)) * self.embed_std + self.embed_mean

    def forward(self, mel: torch.Tensor, starts_s=None) -> torch.Tensor:
        """Embeddings of the 3-s windows starting at `starts_s` (default: back to back, as musicnn's patches)."""
        feats = self.steps(mel)
        if starts_s is None:
            n_windows = max(1, int(mel.shape[2] * self.frame_seconds // MUSICNN_PATCH_SECONDS))
            starts_s = [i * MUSICNN_PATCH_SECONDS for i in range(n_windows)]
        return self.pool(feats, self.window_bounds(starts_s, feats.shape[2]))

    def macs_per_second(self) -> float:
        """Multiply-accumulates of the convolutions per second of audio (the pooling and linear map are negligible)."""
        macs, rate = 0.0, 1.0 / self.frame_seconds
        c_in = self.dims["n_mels"]
        for c_out, k in zip(self.dims["channels"], self.dims["kernels"]):
            macs += c_in * c_out * k * rate
            c_in, rate = c_out, rate / 2
        return macs

    @classmethod
    def load(cls, folder: str | Path | None = None) -> MusicnnStudent:
        """The trained student (default: the shipped one), in eval mode, rebuilt from its dims file."""
        from safetensors.torch import load_file

        folder = Path(folder) if folder is not None else WEIGHTS_DIR
        if not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"musicnn student weights not found in {folder}")
        meta = json.loads((folder / DIMS_FILE).read_text(encoding="utf-8"))
        model = cls(**meta["dims"])
        tensors = load_file(str(folder / WEIGHTS_FILE))
        expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
        if expected != tensors.keys():
            raise ValueError(
                f"{folder / WEIGHTS_FILE}: missing {sorted(expected - tensors.keys())}, "
                f"unexpected {sorted(tensors.keys() - expected)}"
            )
        model.load_state_dict(tensors, strict=False)
        return model.eval()

    def save(self, folder: str | Path, meta: dict) -> Path:
        """Weights and a dims file (plus `meta`: provenance) into `folder`; the weights land atomically."""
        from safetensors.torch import save_file

        from mer_tag import _fs

        folder = Path(folder)
        with _fs.atomic_file(folder / WEIGHTS_FILE) as tmp:  # made readable by all, as weights are meant to be
            state = {k: v.contiguous() for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}
            save_file(state, str(tmp))
        _fs.write_text(folder / DIMS_FILE, json.dumps({"dims": self.dims, **meta}, indent=1) + "\n")
        return folder


FEATURE_KEYS = ("sample_rate", "n_fft", "hop_length", "n_mels")  # the log-mel the weights were distilled on


def feature_mismatch(audio_config, folder: str | Path | None = None) -> str | None:
    """Why `audio_config` would feed the student (default: the shipped one) a log-mel it never learned,
    from the settings its dims file records; None when they agree."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    trained = json.loads((folder / DIMS_FILE).read_text(encoding="utf-8")).get("features", {})
    wrong = [
        f"{k} {getattr(audio_config, k)} (distilled on {trained[k]})"
        for k in FEATURE_KEYS
        if k in trained and getattr(audio_config, k) != trained[k]
    ]
    return f"the musicnn student cannot read this log-mel: {', '.join(wrong)}" if wrong else None


def embed_chunks(model: MusicnnStudent, mel: torch.Tensor) -> torch.Tensor:
    """[chunks, n_mels, frames] log-mel → [chunks, windows, 200] student embeddings (frozen)."""
    with torch.inference_mode():
        return model(mel.float())
