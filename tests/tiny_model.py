"""A tiny random-weight model bundle: the whole scan path runs in seconds without trained weights."""

from __future__ import annotations

from pathlib import Path

from mer_tag import bundle as bundle_io
from mer_tag import models
from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig
from mer_tag.labels import MIREX


def make_tiny_bundle(
    folder: Path, chunk_seconds: float = 5.0, lyrics: bool = True, midi: bool = True, seed: int = 0
) -> Path:
    import torch

    torch.manual_seed(seed)
    k = len(MIREX)
    parts = {"audio": models.build({"arch": "crnn", "n_mels": 32, "n_classes": k, "channels": [4, 8], "gru_hidden": 8})}
    if lyrics:
        parts["lyrics"] = models.build({"arch": "lyrics", "n_classes": k})
    if midi:
        parts["midi"] = models.build({"arch": "midi_bigru", "n_classes": k, "embed_dim": 8, "gru_hidden": 8})
    parts["fusion"] = models.build({"arch": "fusion", "n_classes": k, "branches": ["audio", "lyrics", "midi"]})
    bundle = bundle_io.Bundle(
        name="tiny",
        labels=MIREX,
        audio_config=AudioConfig(n_mels=32, chunk_seconds=chunk_seconds, chunk_hop_seconds=chunk_seconds),
        lyrics_config=LyricsConfig(max_tokens=64, max_windows=2),
        midi_config=MidiConfig(seq_len=50),
        models=parts,
        card={"version": "0.0.1"},
    )
    return bundle_io.save(bundle, folder)


def edit_card(folder: Path, edit) -> None:
    """Rewrite a saved bundle's card.json through `edit(card)`, as a hand-edited or stale model would be."""
    import json

    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))
