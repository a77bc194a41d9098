"""musicnn (Pons & Serra, 2019), MSD_musicnn, ported to PyTorch: a pretrained audio tagger / embedder.

Architecture and preprocessing follow the PyPI package ``musicnn`` 0.1.0 (musicnn/models.py,
``build_musicnn`` with num_filt_midend=64, num_units_backend=200; musicnn/extractor.py), in inference
mode (batch norm uses its running statistics, dropout is off). Weights are the package's
``MSD_musicnn`` checkpoint (trained on the Million Song Dataset, 50 tags), converted by
``tools/convert_musicnn.py``; see ``mer_tag/weights/musicnn/README.md`` (ISC licence).

Input: log-mel patches [B, T, 96] from :func:`logmel` / :func:`patches` (T = 187 frames = 3 s is what
the model was trained on; being fully convolutional with global pooling it accepts any T >= 1).

- front-end: batch norm on the input; timbral convs [7 x 38] and [7 x 67] (204 filters each, time padded
  3 + 3, valid in frequency) and temporal convs [128 x 1], [64 x 1], [32 x 1] (51 filters each, 'same'),
  each conv -> ReLU -> batch norm -> max over frequency; concatenated: 561 features per frame.
- mid-end: three [7 x features] convs (64 filters) -> ReLU -> batch norm, with residual connections on
  the 2nd and 3rd; densely concatenated with the front-end: 561 + 3 * 64 = 753 features per frame.
- back-end: max and mean over time (753 each), interleaved [max_0, mean_0, max_1, ...] as TF's flatten
  of [753, 2] gives, batch norm, dense 200 + ReLU, batch norm ("penultimate"), dense 50 (logits).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_tag import features

# musicnn's input is made in features.py, which decode workers load without torch; here under musicnn's names
SAMPLE_RATE = features.MUSICNN_SAMPLE_RATE
N_FFT = features.MUSICNN_N_FFT
HOP_LENGTH = features.MUSICNN_HOP_LENGTH
N_MELS = features.MUSICNN_N_MELS
PATCH_FRAMES = features.MUSICNN_PATCH_FRAMES
logmel = features.musicnn_logmel
patches = features.musicnn_patches

BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default epsilon
EMBED_DIM = 200  # penultimate dense units
POOL_DIM = 753  # mid-end features per frame, pooled by mean and by max

WEIGHTS_PATH = Path(__file__).parent.parent / "weights" / "musicnn" / "msd_musicnn.safetensors"

# Output order of the 50 MSD tags (musicnn/configuration.py MSD_LABELS).
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist",
    "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip


def embed_patches(model: Musicnn, patches: torch.Tensor) -> torch.Tensor:
    """[chunks, patches, 187, 96] mel patches → [chunks, patches, 200] frozen musicnn embeddings.

    The one place chunks are flattened into musicnn's patch batch and back: training's feature
    extraction and the scan engine both call it, so they cannot drift apart.
    """
    n_chunks, n_patches = patches.shape[:2]
    flat = patches.reshape(n_chunks * n_patches, *patches.shape[2:]).float()
    with torch.inference_mode():
        return model(flat)["penultimate"].reshape(n_chunks, n_patches, -1)


@functools.cache
def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(path: str | Path | None = None) -> str:
    """sha256 of the weights file (default: the shipped one); feature caches key on it."""
    return _sha256(str(Path(path) if path is not None else WEIGHTS_PATH))


def _bn2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class Musicnn(nn.Module):
    """MSD_musicnn in inference mode. forward(x [B, T, 96]) -> dict of tensors:

    tags [B, 50] sigmoid probabilities (order MSD_TAGS); logits [B, 50];
    penultimate [B, 200] (dense -> ReLU -> batch norm: musicnn's 'penultimate' feature);
    mean_pool, max_pool [B, 753] (temporal mean / max of the mid-end features, musicnn's names);
    pooled [B, 1506] = concat(mean_pool, max_pool).
    """

    def __init__(self) -> None:
        super().__init__()
        self.bn_input = _bn2d(1)
        # front-end: kernels (time, frequency); int(0.4 * 96) = 38, int(0.7 * 96) = 67, int(1.6 * 128) = 204
        self.timbral_74 = nn.Conv2d(1, 204, (7, 38))
        self.bn_timbral_74 = _bn2d(204)
        self.timbral_77 = nn.Conv2d(1, 204, (7, 67))
        self.bn_timbral_77 = _bn2d(204)
        self.temporal_128 = nn.Conv2d(1, 51, (128, 1))  # int(1.6 * 32) = 51
        self.bn_temporal_128 = _bn2d(51)
        self.temporal_64 = nn.Conv2d(1, 51, (64, 1))
        self.bn_temporal_64 = _bn2d(51)
        self.temporal_32 = nn.Conv2d(1, 51, (32, 1))
        self.bn_temporal_32 = _bn2d(51)
        # mid-end: each conv spans all features of 7 frames
        self.midend1 = nn.Conv2d(1, 64, (7, 561))
        self.bn_midend1 = _bn2d(64)
        self.midend2 = nn.Conv2d(1, 64, (7, 64))
        self.bn_midend2 = _bn2d(64)
        self.midend3 = nn.Conv2d(1, 64, (7, 64))
        self.bn_midend3 = _bn2d(64)
        # back-end
        self.bn_pool = nn.BatchNorm1d(2 * POOL_DIM, eps=BN_EPS)
        self.dense = nn.Linear(2 * POOL_DIM, EMBED_DIM)
        self.bn_dense = nn.BatchNorm1d(EMBED_DIM, eps=BN_EPS)
        self.output = nn.Linear(EMBED_DIM, len(MSD_TAGS))
        self.micro_batch = 2  # patches per internal slice in eval mode (see forward)
        self.eval()

    @classmethod
    def load(cls, path: str | Path | None = None, map_location: str = "cpu") -> Musicnn:
        """The model with pretrained weights from a safetensors file (default: the shipped one), in eval mode."""
        from safetensors.torch import load_file

        path = Path(path) if path is not None else WEIGHTS_PATH
        if not path.is_file():
            raise FileNotFoundError(f"musicnn weights not found: {path}")
        model = cls()
        tensors = load_file(str(path), device=map_location)
        expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
        missing, unexpected = expected - tensors.keys(), tensors.keys() - expected
        if missing or unexpected:
            raise ValueError(f"{path}: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        model.load_state_dict(tensors, strict=False)
        return model.to(map_location).eval()

    def _conv_bn(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        return bn(F.relu(conv(x)))

    def _conv_bn_freqmax(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        """max over frequency of bn(relu(conv(x))): [B, 1, T', F'] -> [B, C, T].

        In eval mode ReLU and batch norm act per channel and monotonically (increasing where
        gamma >= 0, decreasing where gamma < 0), so the max over frequency commutes with them: for
        gamma >= 0 take the max of the raw conv output, for gamma < 0 the min (computed as -max of the
        conv with negated weights), and normalise only [B, C, T]. Same result as the literal order
        (the training path below), with far less memory traffic on the largest tensors.
        """
        if bn.training:
            return bn(F.relu(conv(x))).amax(dim=3)
        sign = torch.where(bn.weight >= 0, 1.0, -1.0).to(conv.weight.dtype)
        bias = conv.bias * sign if conv.bias is not None else None
        z = F.conv2d(x, conv.weight * sign[:, None, None, None], bias)
        z = z.amax(dim=3) * sign[:, None]
        return F.batch_norm(F.relu(z), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    def _midend(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> [B, T, 64]: time padded 3 + 3, conv over (7 frames x all D), ReLU, batch norm."""
        y = self._conv_bn(conv, bn, F.pad(x, (0, 0, 3, 3)).unsqueeze(1))  # [B, 64, T, 1]
        return y.squeeze(3).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 3 or x.shape[2] != N_MELS:
            raise ValueError(f"Musicnn expects [B, T, {N_MELS}] log-mel patches, got {tuple(x.shape)}")
        if self.training or x.shape[0] <= self.micro_batch:
            return self._forward(x)
        # Eval mode treats every patch independently: run small slices so the front-end's large
        # intermediates (~9 MB per patch) stay in cache; same result, faster, bounded memory.
        outs = [self._forward(part) for part in x.split(self.micro_batch)]
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}

    def _forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.bn_input(x.unsqueeze(1))  # [B, 1, T, 96]
        pad7 = F.pad(x, (0, 0, 3, 3))
        front = [
            self._conv_bn_freqmax(self.timbral_74, self.bn_timbral_74, pad7),
            self._conv_bn_freqmax(self.timbral_77, self.bn_timbral_77, pad7),
        ]
        for conv, bn in (
            (self.temporal_128, self.bn_temporal_128),
            (self.temporal_64, self.bn_temporal_64),
            (self.temporal_32, self.bn_temporal_32),
        ):
            k = conv.kernel_size[0]
            same = F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))  # TF 'same': extra frame at the end
            front.append(self._conv_bn_freqmax(conv, bn, same))
        front_t = torch.cat(front, dim=1).transpose(1, 2)  # [B, T, 561]

        cnn1 = self._midend(self.midend1, self.bn_midend1, front_t)
        cnn2 = self._midend(self.midend2, self.bn_midend2, cnn1) + cnn1
        cnn3 = self._midend(self.midend3, self.bn_midend3, cnn2) + cnn2
        feats = torch.cat([front_t, cnn1, cnn2, cnn3], dim=2)  # [B, T, 753]

        max_pool = feats.amax(dim=1)
        mean_pool = feats.mean(dim=1)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # [B, 1506], interleaved as TF
        penultimate = self.bn_dense(F.relu(self.dense(self.bn_pool(flat))))
        logits = self.output(penultimate)
        return {
            "tags": torch.sigmoid(logits),
            "logits": logits,
            "penultimate": penultimate,
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "pooled": torch.cat([mean_pool, max_pool], dim=1),
        }

    @torch.inference_mode()
    def predict(self, x: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
        """forward() on a NumPy [n, T, 96] array in batches; float32 NumPy arrays out (n may be 0)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != N_MELS:
            raise ValueError(f"predict expects [n, T, {N_MELS}], got {x.shape}")
        dims = {
            "tags": len(MSD_TAGS),
            "logits": len(MSD_TAGS),
            "penultimate": EMBED_DIM,
            "mean_pool": POOL_DIM,
            "max_pool": POOL_DIM,
            "pooled": 2 * POOL_DIM,
        }
        device = next(self.parameters()).device
        parts: dict[str, list[np.ndarray]] = {k: [] for k in dims}
        for i in range(0, len(x), batch_size):
            out = self(torch.from_numpy(x[i : i + batch_size]).to(device))
            for k in dims:
                parts[k].append(out[k].float().cpu().numpy())
        return {k: np.concatenate(v) if v else np.zeros((0, dims[k]), np.float32) for k, v in parts.items()}


def top_tags(probs: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most likely tags of one [50] probability vector, as (tag, probability)."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(MSD_TAGS[i], float(probs[i])) for i in order]
