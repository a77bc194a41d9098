"""The lyrics' valence (issue #28): a standardised logistic regression on the frozen lyrics encoder's song
embedding, learned from the MIREX-like songs through their clusters (Cheerful and Humorous positive,
Wistful and Aggressive negative), and the three numbers that fuse it with the audio's valence
(`mer_tag.valence.lyrics_shift`). Buffers only beside one linear layer: the bundle carries everything.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LyricsValence(nn.Module):
    """[B, embed_dim] song embeddings → [B] probability that the words are positive."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor
    fusion: torch.Tensor

    def __init__(self, embed_dim: int = 384):
        super().__init__()
        self.register_buffer("mean", torch.zeros(embed_dim))
        self.register_buffer("std", torch.ones(embed_dim))
        self.register_buffer("fusion", torch.tensor([1.0, 0.0, 0.0]))  # audio alone until fitted
        self.linear = nn.Linear(embed_dim, 1)

    def forward(self, songs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear((songs - self.mean) / self.std))[:, 0]

    def set_weights(self, mean, std, coef, intercept, fusion) -> None:
        """A fitted standardiser, the logistic regression's coefficients [embed_dim] and intercept, and the
        fusion's [audio weight, lyrics weight, bias]."""
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            self.std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32))
            self.linear.weight.copy_(torch.as_tensor(np.asarray(coef).reshape(1, -1), dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(np.asarray(intercept).reshape(1), dtype=torch.float32))
            self.fusion.copy_(torch.as_tensor(np.asarray(fusion), dtype=torch.float32))
