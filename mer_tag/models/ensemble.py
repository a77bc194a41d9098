"""An ensemble of one branch's models: the mean of their log-probabilities (a geometric mean).

With a few hundred songs, one network's result swings with its initialisation and the songs it held out;
averaging the fold models and the full model steadies it at the cost of a few small heads.
"""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    """`members`: the branch's models, built (models.build builds them from the card's dims, models.combine
    from trained ones)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *inputs) -> torch.Tensor:
        return torch.stack([torch.log_softmax(m(*inputs), dim=-1) for m in self.members]).mean(0)
