"""MIDI model: note events → a bidirectional GRU → attention pooling → class logits."""

from __future__ import annotations

import torch
from torch import nn

from mer_tag.features import MIDI_PAD_PITCH
from mer_tag.models.crnn import AttentionPool


class MidiBiGRU(nn.Module):
    """inputs='pitch': a pitch embedding only (the reference baseline); 'events': plus duration, velocity, IOI."""

    def __init__(self, n_classes=5, inputs="events", embed_dim=64, gru_hidden=64, pooling="attention", dropout=0.3):
        super().__init__()
        self.inputs = inputs
        self.pooling = pooling
        self.pitch = nn.Embedding(MIDI_PAD_PITCH + 1, embed_dim, padding_idx=MIDI_PAD_PITCH)
        self.cont = nn.Linear(3, embed_dim) if inputs == "events" else None
        self.gru = nn.GRU(embed_dim, gru_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * gru_hidden) if pooling == "attention" else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * gru_hidden, n_classes))

    def forward(self, pitch: torch.Tensor, cont: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.pitch(pitch)
        if self.cont is not None:
            x = x + self.cont(cont)
        states, last = self.gru(x)
        if self.pool is None:  # the baseline: the final hidden states of both directions
            return self.head(torch.cat([last[0], last[1]], dim=-1))
        mask = torch.arange(pitch.shape[1], device=pitch.device)[None, :] < lengths.clamp_min(1)[:, None]
        return self.head(self.pool(states, mask))
