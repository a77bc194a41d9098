"""MIDI models: note events → class logits.

`MidiBiGRU` reads the sequence (a bidirectional GRU, attention or last-state pooling); `MidiStats` pools it
into a few musical statistics first (key and mode through the pitch-class histogram, register, articulation,
dynamics, tempo, density), which a hundred-odd training pieces can fit without memorising them.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_tag.features import MIDI_PAD_PITCH
from mer_tag.models.crnn import AttentionPool

N_PITCH_CLASSES = 12  # C, C#, …, B
MIDI_STATS = N_PITCH_CLASSES + 11  # pitch-class histogram + the 11 summary statistics of `midi_statistics`


def midi_statistics(pitch: torch.Tensor, cont: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, MIDI_STATS] per-piece statistics of the real (unpadded) events.

    pitch [B, L] (MIDI_PAD_PITCH past the end), cont [B, L, 3] = (log1p duration s, velocity / 127,
    log1p inter-onset s). The pitch-class histogram is rotated to start at the most frequent class, so it
    describes the mode (major/minor colour) whatever the key.
    """
    mask = (torch.arange(pitch.shape[1], device=pitch.device)[None, :] < lengths[:, None]).float()
    count = mask.sum(1).clamp_min(1.0)

    def mean(x):
        return (x * mask).sum(1) / count

    def std(x):
        return (((x - mean(x)[:, None]) ** 2 * mask).sum(1) / count).sqrt()

    notes = pitch.clamp_max(127).float()
    histogram = torch.zeros(pitch.shape[0], N_PITCH_CLASSES, device=pitch.device)
    histogram.scatter_add_(1, (pitch % N_PITCH_CLASSES) * (pitch < MIDI_PAD_PITCH), mask)
    histogram = histogram / count[:, None]
    tonic = histogram.argmax(1, keepdim=True)
    rotate = (tonic + torch.arange(N_PITCH_CLASSES, device=pitch.device)[None, :]) % N_PITCH_CLASSES
    mode_profile = histogram.gather(1, rotate)
    duration, velocity, ioi = cont.unbind(-1)
    chords = mean((ioi < 0.01).float())  # share of notes struck with the previous one
    span = (
        torch.where(mask.bool(), notes, torch.full_like(notes, -1.0)).amax(1)
        - torch.where(mask.bool(), notes, torch.full_like(notes, 128.0)).amin(1)
    ).clamp_min(0.0)
    summary = torch.stack(
        [
            mean(notes) / 127,
            std(notes) / 127,
            span / 127,
            mean(duration),
            std(duration),
            mean(velocity),
            std(velocity),
            mean(ioi),
            std(ioi),
            chords,
            torch.log1p(lengths.float()) / 7,  # how many events (up to the sequence length)
        ],
        dim=1,
    )
    return torch.cat([mode_profile, summary], dim=1)


class StatsNorm(nn.Module):
    """(x - mean) / std per statistic; set once from the training pieces (`fit`), saved as buffers."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, dim: int = MIDI_STATS):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, stats: torch.Tensor) -> None:  # [N, dim]
        self.mean.copy_(stats.mean(0))
        self.std.copy_(stats.std(0, unbiased=False).clamp_min(1e-3))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return (stats - self.mean) / self.std


class MidiBiGRU(nn.Module):
    """inputs='pitch': a pitch embedding only (the reference baseline); 'events': plus duration, velocity, IOI.

    `stats=True` also hands the head the piece's standardised `midi_statistics`, beside the pooled GRU states.
    """

    def __init__(
        self, n_classes=5, inputs="events", embed_dim=64, gru_hidden=64, pooling="attention", dropout=0.3, stats=False
    ):
        super().__init__()
        self.inputs = inputs
        self.pooling = pooling
        self.pitch = nn.Embedding(MIDI_PAD_PITCH + 1, embed_dim, padding_idx=MIDI_PAD_PITCH)
        self.cont = nn.Linear(3, embed_dim) if inputs == "events" else None
        self.gru = nn.GRU(embed_dim, gru_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * gru_hidden) if pooling == "attention" else None
        self.stats_norm = StatsNorm() if stats else None
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * gru_hidden + (MIDI_STATS if stats else 0), n_classes)
        )

    def forward(self, pitch: torch.Tensor, cont: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.pitch(pitch)
        if self.cont is not None:
            x = x + self.cont(cont)
        states, last = self.gru(x)
        if self.pool is None:  # the baseline: the final hidden states of both directions
            pooled = torch.cat([last[0], last[1]], dim=-1)
        else:
            mask = torch.arange(pitch.shape[1], device=pitch.device)[None, :] < lengths.clamp_min(1)[:, None]
            pooled = self.pool(states, mask)
        if self.stats_norm is not None:
            pooled = torch.cat([pooled, self.stats_norm(midi_statistics(pitch, cont, lengths))], dim=-1)
        return self.head(pooled)


class MidiStats(nn.Module):
    """Pooled note statistics → standardised → a small MLP. Same inputs as MidiBiGRU."""

    def __init__(self, n_classes=5, hidden=32, dropout=0.3):
        super().__init__()
        self.stats_norm = StatsNorm()
        self.head = nn.Sequential(
            nn.Linear(MIDI_STATS, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, pitch: torch.Tensor, cont: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.stats_norm(midi_statistics(pitch, cont, lengths)))
