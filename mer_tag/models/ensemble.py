"""An ensemble of one branch's models: the mean of their log-probabilities (a geometric mean).

With a few hundred songs, one network's result swings with its initialisation and the songs it held out;
averaging the fold models and the full model steadies it at the cost of a few small heads.
"""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, members: list[dict]):
        super().__init__()
        from mer_tag import models

        self.members = nn.ModuleList([models.build(dims) for dims in members])

    def forward(self, *inputs) -> torch.Tensor:
        return torch.stack([torch.log_softmax(m(*inputs), dim=-1) for m in self.members]).mean(0)


def combine(models: list[nn.Module]) -> nn.Module:
    """One module predicting like the mean of `models` (their weights copied, dims kept for the card)."""
    from mer_tag import models as model_zoo

    if len(models) == 1:
        return models[0]
    ensemble = model_zoo.build({"arch": "ensemble", "members": [m.dims for m in models]})
    for target, source in zip(ensemble.members, models):
        target.load_state_dict(source.state_dict())
    return ensemble.eval()
