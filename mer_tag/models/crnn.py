"""Audio models: log-mel or musicnn patches of one chunk in, class logits out.

All take a batch of chunks and return [B, n_classes] logits; `embed` returns the pooled representation.
Input standardisation (per-mel-band mean and std from the training set) lives in buffers, so it is
saved with the weights and a bundle needs no separate statistics file.
"""

from __future__ import annotations

import torch
from torch import nn


def dense_layers(n_in: int, dense: int, dropout: float) -> list[nn.Module]:
    """The Wijaya et al. networks' two dense layers (ReLU, dropout between), as a Sequential's layers."""
    return [
        nn.Linear(n_in, dense),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(dense, dense),
        nn.ReLU(inplace=True),
    ]


class Standardise(nn.Module):
    """(x - mean) / std per mel band; statistics set once from training data, then saved as buffers."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, n_bands: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_bands))
        self.register_buffer("std", torch.ones(n_bands))

    def fit(self, x: torch.Tensor) -> None:
        """x: [N, bands, frames]"""
        self.mean.copy_(x.mean(dim=(0, 2)))
        self.std.copy_(x.std(dim=(0, 2)).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, bands, frames]
        return (x - self.mean[:, None]) / self.std[:, None]


def conv_block(c_in: int, c_out: int, pool: tuple[int, int], kernel=(3, 3)) -> nn.Sequential:
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool, ceil_mode=True),
    )


class AttentionPool(nn.Module):
    """Softmax-weighted mean over time: lets the model listen to the frames that carry the mood."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # x [B, T, D]
        scores = self.score(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return (torch.softmax(scores, dim=1).unsqueeze(-1) * x).sum(dim=1)


class CRNN(nn.Module):
    """Conv blocks over frequency × time, a bidirectional GRU over time, attention pooling, a linear head."""

    def __init__(self, n_mels=128, n_classes=5, channels=(16, 32, 64, 64), gru_hidden=64, dropout=0.3):
        super().__init__()
        self.norm = Standardise(n_mels)
        blocks, c_in = [], 1
        for c_out in channels:
            blocks.append(conv_block(c_in, c_out, pool=(2, 2)))
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(c_in, gru_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * gru_hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * gru_hidden, n_classes))

    def embed(self, mel: torch.Tensor) -> torch.Tensor:  # mel [B, n_mels, frames]
        x = self.cnn(self.norm(mel).unsqueeze(1))  # [B, C, F', T']
        x = x.mean(dim=2).transpose(1, 2)  # frequency averaged out: [B, T', C]
        x, _ = self.gru(x)
        return self.pool(x)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(mel))


class WijayaCNN(nn.Module):
    """Wijaya et al. 2021, Table 2: four 3×3 convs (16/32/64/112), 2×2 max-pooling, dense 128-128."""

    def __init__(self, n_mels=128, n_classes=3, channels=(16, 32, 64, 112), dense=128, frames=256, dropout=0.0):
        super().__init__()
        self.norm = Standardise(n_mels)
        layers, c_in = [], 1
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((4, 8))  # any chunk length gives the same dense input size
        self.dense = nn.Sequential(nn.Flatten(), *dense_layers(c_in * 32, dense, dropout))
        self.head = nn.Linear(dense, n_classes)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        return self.dense(self.pool(self.cnn(self.norm(mel).unsqueeze(1))))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(mel))


class ConvLSTM1d(nn.Module):
    """A convolutional LSTM stepping over time, its state a [C, F] map convolved along frequency."""

    def __init__(self, c_in: int, c_hidden: int, kernel: int = 3):
        super().__init__()
        self.c_hidden = c_hidden
        self.gates = nn.Conv1d(c_in + c_hidden, 4 * c_hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, F, T] → [B, H, F, T]
        b, _, f, t = x.shape
        h = x.new_zeros(b, self.c_hidden, f)
        c = x.new_zeros(b, self.c_hidden, f)
        outputs = []
        for step in range(t):
            i, g_f, o, g = self.gates(torch.cat([x[..., step], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(g_f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=-1)


class WijayaCRNN(nn.Module):
    """Wijaya et al. 2021, Table 3: conv 16 → ConvLSTM 30 → conv 36 → ConvLSTM 50, 2×3 kernels, dense 128-128."""

    def __init__(self, n_mels=128, n_classes=3, dense=128, frames=256, dropout=0.0):
        super().__init__()
        self.norm = Standardise(n_mels)
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, (2, 3), padding=(0, 1)), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.lstm1 = ConvLSTM1d(16, 30)
        self.conv2 = nn.Sequential(nn.Conv2d(30, 36, (2, 3), padding=(0, 1)), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.lstm2 = ConvLSTM1d(36, 50)
        self.dense = nn.Sequential(*dense_layers(50, dense, dropout))
        self.head = nn.Linear(dense, n_classes)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.lstm1(self.conv1(self.norm(mel).unsqueeze(1)))
        x = self.lstm2(self.conv2(x))
        return self.dense(x.mean(dim=(2, 3)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(mel))


class MusicnnCRNN(nn.Module):
    """The recurrent half of a CRNN whose CNN half is the pretrained musicnn (frozen, run separately).

    Input: musicnn embeddings of the 3-second patches of one chunk, [B, patches, embed_dim].
    """

    def __init__(self, embed_dim=200, n_classes=5, gru_hidden=64, dropout=0.3, input_dropout=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.drop_in = nn.Dropout(input_dropout)
        self.gru = nn.GRU(embed_dim, gru_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * gru_hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * gru_hidden, n_classes))

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        x, _ = self.gru(self.drop_in(self.norm(patches)))
        return self.pool(x)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(patches))
