"""A BERT encoder in plain torch, enough to run all-MiniLM-L6-v2 from its package folder.

transformers would build the same network, but importing its BERT costs about 2.5 s of CPU on every scan
(0.1 s for this file). The parameter names are BertModel's, so the package's `model.safetensors` loads
as it is, and tests/test_lyrics_encoder.py holds this module to transformers' outputs on real lyrics.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class Embeddings(nn.Module):
    def __init__(
        self, vocab_size: int, hidden: int, max_positions: int, type_vocab_size: int, eps: float, dropout: float
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden)
        self.position_embeddings = nn.Embedding(max_positions, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query, self.key, self.value = (
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
        )

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, tokens, hidden = x.shape

        def split(t):  # [B, T, H] → [B, heads, T, H / heads]
            return t.view(batch, tokens, self.heads, hidden // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)),
            split(self.key(x)),
            split(self.value(x)),
            attn_mask=keep,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return out.transpose(1, 2).reshape(batch, tokens, hidden)


class Layer(nn.Module):
    """Post-norm transformer block, named as BertLayer's parts are (attention.self/output, intermediate, output)."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float, dropout: float):
        super().__init__()
        self.attention = _Attention(hidden, heads, eps, dropout)
        self.intermediate = _Intermediate(hidden, intermediate)
        self.output = _DenseNorm(intermediate, hidden, eps, dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, keep), x)
        return self.output(F.gelu(self.intermediate.dense(x)), x)  # exact (erf) GELU, as BERT's "gelu"


class _Attention(nn.Module):  # holders of BertLayer's parameter names, so its weights load as they are
    def __init__(self, hidden: int, heads: int, eps: float, dropout: float):
        super().__init__()
        self.self = SelfAttention(hidden, heads, dropout)
        self.output = _DenseNorm(hidden, hidden, eps, dropout)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.dense = nn.Linear(hidden, intermediate)


class _Layers(nn.Module):
    def __init__(self, layers: list[Layer]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class _DenseNorm(nn.Module):
    """dense → dropout → + residual → LayerNorm."""

    def __init__(self, d_in: int, d_out: int, eps: float, dropout: float):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Output:
    """What `encoder(...)` returns: the last layer's token states (the attribute transformers names so)."""

    def __init__(self, last_hidden_state: torch.Tensor):
        self.last_hidden_state = last_hidden_state


@contextmanager
def _without_random_init():
    """Build layers without drawing their random initial weights, which `load_state_dict` then replaces
    all of (strict): 0.09-0.25 CPU-s off loading MiniLM, at the same peak RSS. Not the meta device: a scan's
    first use of meta tensors imports torch._dynamo (1.1 CPU-s; docs/performance.md, #18). Swaps the
    classes' `reset_parameters` for the duration, so build on one thread (the engines load models so)."""
    kinds = (nn.Linear, nn.Embedding, nn.LayerNorm)
    saved = {kind: kind.__dict__["reset_parameters"] for kind in kinds}
    for kind in kinds:
        kind.reset_parameters = _keep_parameters
    try:
        yield
    finally:
        for kind, reset in saved.items():
            kind.reset_parameters = reset


def _keep_parameters(self) -> None:
    """What `reset_parameters` does while `_without_random_init` holds: nothing (the memory stays as allocated)."""


class BertEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_hidden_layers: int,
        num_attention_heads: int,
        intermediate_size: int,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        hidden_dropout_prob: float = 0.1,
        **_unused,
    ):
        super().__init__()
        self.embeddings = Embeddings(
            vocab_size, hidden_size, max_position_embeddings, type_vocab_size, layer_norm_eps, hidden_dropout_prob
        )
        self.encoder = _Layers(
            [
                Layer(hidden_size, num_attention_heads, intermediate_size, layer_norm_eps, hidden_dropout_prob)
                for _ in range(num_hidden_layers)
            ]
        )

    @classmethod
    def from_folder(cls, folder: Path) -> BertEncoder:
        """The encoder described by `folder/config.json`, with the weights of `folder/model.safetensors`."""
        from safetensors.torch import load_file

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{folder} is not a BERT encoder with GELU ({config.get('model_type')!r})")
        with _without_random_init():
            model = cls(**config)
        state = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and "position_ids" not in k}
        model.load_state_dict(state, strict=True)
        return model.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Output:
        """[B, T] token ids and mask (1 = token, 0 = padding) → Output with [B, T, hidden] states."""
        x = self.embeddings(input_ids)
        keep = attention_mask[:, None, None, :].bool()  # [B, 1, 1, T]: no query attends to padding
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return Output(x)
