"""Late fusion: a meta-classifier over each branch's log-probabilities and a modality-present mask.

An absent branch contributes zeros and a 0 in the mask, so "no lyrics" is an input, not an exception,
and every subset of modalities gets its own learned offset (calibrated on out-of-fold predictions).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

BRANCHES = ("audio", "lyrics", "midi")
PROB_FLOOR = 1e-6  # probabilities are clipped here before the log: a branch's 0 never becomes -inf


def fusion_input(probs: list, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each branch's class probabilities, in the fusion's branch order (None: the branch is absent) →
    (log-probabilities [branches, K] float32, zeros where absent; present [branches] bool). The one
    place they are made: training's fusion items and every engine call it."""
    present = np.array([p is not None for p in probs])
    log_probs = np.zeros((len(probs), n_classes), dtype=np.float32)
    for j, p in enumerate(probs):
        if p is not None:
            log_probs[j] = np.log(np.clip(np.asarray(p, dtype=np.float32), PROB_FLOOR, 1))
    return log_probs, present


class LateFusion(nn.Module):
    def __init__(self, n_classes=5, branches=BRANCHES, hidden=0):
        super().__init__()
        self.branches = tuple(branches)
        n_in = len(self.branches) * (n_classes + 1)
        self.net = (
            nn.Linear(n_in, n_classes)
            if not hidden
            else nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        )

    @staticmethod
    def inputs(log_probs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """log_probs [B, branches, K], present [B, branches] bool → [B, branches * (K + 1)]."""
        masked = log_probs * present.unsqueeze(-1)
        return torch.cat([masked, present.float().unsqueeze(-1)], dim=-1).flatten(1)

    def forward(self, log_probs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(log_probs, present))
