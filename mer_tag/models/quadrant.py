"""The valence–arousal head: a track's mean frozen-front-end embedding → Russell's four quadrants.

A standardised logistic regression. On the 4Q emotion dataset it matched everything heavier tried on the
same embeddings (a BiGRU over the windows, an SVM, separate valence and arousal heads) within the spread of
artist-grouped cross-validation (docs/model-card.md), and it costs one 200 × 4 matrix product per track.
Valence and arousal are read from its quadrant probabilities, so all three come from one opinion (though
the likeliest quadrant need not lie on the likelier half of both axes: Q1 0.4, Q2 0.3, Q3 0.3 is quadrant 1
with valence 0.4).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

TAG_COUNT = 50  # musicnn's MSD tags
WINDOW_DIM = 200  # musicnn's (and its student's) window embedding

# Quadrant index → (positive?, energetic?): Q1 positive/energetic, Q2 negative/energetic, Q3 negative/calm,
# Q4 positive/calm (the 4Q dataset's numbering, counter-clockwise from the top right of the plane).
POSITIVE = (1.0, 0.0, 0.0, 1.0)
ENERGETIC = (1.0, 1.0, 0.0, 0.0)


class QuadrantHead(nn.Module):
    """[B, embed_dim] song features → [B, 4] quadrant logits. The standardisation statistics live in
    buffers, so they travel with the weights.

    `inputs` names the blocks of the song features, in order (mer_tag.valence.head_features): the 0.3 head
    reads the mean window embedding alone ('embedding'); the 0.4 head reads musicnn's tag prior and the
    key/mode features ('tags', 'key'). With 'tags' the head keeps musicnn's output layer (its 50 × 200
    weights, frozen) in buffers too, so a bundle computes its own tag prior."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor
    tag_weight: torch.Tensor
    tag_bias: torch.Tensor

    def __init__(self, embed_dim: int = 200, n_classes: int = 4, inputs: list[str] | tuple[str, ...] | None = None):
        super().__init__()
        self.inputs = tuple(inputs) if inputs else ("embedding",)
        self.register_buffer("mean", torch.zeros(embed_dim))
        self.register_buffer("std", torch.ones(embed_dim))
        self.linear = nn.Linear(embed_dim, n_classes)
        if "tags" in self.inputs:
            self.register_buffer("tag_weight", torch.zeros(TAG_COUNT, WINDOW_DIM))
            self.register_buffer("tag_bias", torch.zeros(TAG_COUNT))

    def tag_probabilities(self, windows: np.ndarray) -> np.ndarray:
        """[50] musicnn tag probabilities averaged over a song's window embeddings [..., 200]."""
        from mer_tag.valence import tag_probabilities

        return tag_probabilities(windows, self.tag_weight.numpy(), self.tag_bias.numpy())

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear((pooled - self.mean) / self.std)

    def set_weights(self, mean: np.ndarray, std: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        """Take a fitted standardiser's statistics and a logistic regression's coefficients."""
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
            self.linear.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))


def pool_track(embeddings: np.ndarray) -> np.ndarray:
    """[chunks, windows, D] window embeddings of one track → [D]: their mean over the whole song."""
    return np.asarray(embeddings, dtype=np.float32).reshape(-1, embeddings.shape[-1]).mean(0)


def valence_arousal(quadrant_probs: np.ndarray) -> tuple[float, float]:
    """(valence, arousal) in 0–1 from the four quadrant probabilities: how likely the song is positive
    (P(Q1) + P(Q4)) and how likely it is energetic (P(Q1) + P(Q2))."""
    probs = np.asarray(quadrant_probs, dtype=np.float64)
    return float(probs @ np.asarray(POSITIVE)), float(probs @ np.asarray(ENERGETIC))
