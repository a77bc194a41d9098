"""One trainer per branch: how its examples become batches, how its model is built from a preset section,
and how it predicts song-level probabilities. The recipe (recipe.py) treats them all the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_tag.models import FROZEN_FRONTENDS
from mer_tag.train.loop import LoopConfig, fit, predict_proba

LOOP_KEYS = set(LoopConfig.__dataclass_fields__)


def loop_config(section: dict, seed: int) -> LoopConfig:
    return LoopConfig(**{k: v for k, v in section.items() if k in LOOP_KEYS}, seed=seed)


@dataclass
class Branch:
    """A trainable branch: `dims` builds the model, `collate` batches items, `predict` gives song probabilities."""

    name: str
    dims: dict
    section: dict

    def build(self):
        from mer_tag import models

        return models.build(self.dims)

    def prepare(self, model, items: list) -> None:
        """Set data-dependent state (input statistics) from training items before the first epoch."""

    def collate(self, items, targets, train: bool):
        raise NotImplementedError

    def train(self, items, targets, val_items, val_targets, n_classes, seed, progress, epochs=None):
        import torch

        torch.manual_seed(seed)  # initial weights depend on the seed alone, not on what trained before
        model = self.build()
        self.rng = np.random.default_rng(seed)  # crops and augmentation: the same run gives the same model
        self.prepare(model, items)
        config = loop_config(self.section, seed)
        if epochs is not None:  # a refit for out-of-fold predictions: the epoch count found before, no val
            config.epochs, config.patience = epochs, 0
        history = fit(
            model,
            items,
            np.asarray(targets),
            self.collate,
            config,
            val_items,
            None if val_targets is None else np.asarray(val_targets),
            n_classes,
            progress,
            self.name,
            forward=self.forward(model),
        )
        return model, history

    def forward(self, model):
        """What a batch from `collate` is fed to: the model itself, unless its inputs need another entry."""
        return model

    def predict(self, model, items) -> np.ndarray:
        return predict_proba(model, items, self.collate, forward=self.forward(model))


# ------------------------------------------------------------------ audio


class AudioBranch(Branch):
    """Items: per song, its chunks' features [n_chunks, ...]; a random chunk per song per epoch in training,
    the mean of every chunk's probabilities at prediction (as `scan` does over a whole song)."""

    def prepare(self, model, items):
        import torch

        if hasattr(model, "norm") and hasattr(model.norm, "fit"):
            sample = np.concatenate([x[:4] for x in items[:200]]).astype(np.float32)
            model.norm.fit(torch.from_numpy(sample))

    def collate(self, items, targets, train):
        import torch

        rng = getattr(self, "rng", None) or np.random.default_rng(0)
        chunks = [x[rng.integers(len(x))] if train else x[0] for x in items]
        batch = np.stack([self._augment(c, rng) if train else c for c in chunks]).astype(np.float32)
        y = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        return (torch.from_numpy(batch),), y

    def _augment(self, x: np.ndarray, rng) -> np.ndarray:
        """Random crop in time, plus (log-mel only) gain and SpecAugment masks."""
        crop = int(self.section.get("crop_frames", 0))
        time_axis = x.ndim - 1 if self.dims["arch"] != "musicnn_crnn" else 0
        length = x.shape[time_axis]
        if crop and length > crop:
            start = rng.integers(length - crop + 1)
            x = np.take(x, np.arange(start, start + crop), axis=time_axis)
        if self.section.get("augment") and x.ndim == 2 and self.dims["arch"] != "musicnn_crnn":
            x = x.astype(np.float32) + rng.uniform(-6, 6)  # gain in dB
            f0 = rng.integers(0, x.shape[0] - 16)
            x[f0 : f0 + rng.integers(0, 16)] = x.mean()
            t0 = rng.integers(0, max(1, x.shape[1] - 40))
            x[:, t0 : t0 + rng.integers(0, 40)] = x.mean()
        return x

    def predict(self, model, items):
        return self.predict_excerpts(model, items)[0]

    def predict_excerpts(self, model, items) -> tuple[np.ndarray, list[np.ndarray]]:
        """(per song the mean of its chunks' probabilities [n, n_classes], as `scan` answers for a song; per
        song every chunk's own probabilities [n_chunks, n_classes])."""
        import torch

        model.eval()
        songs, excerpts = [], []
        with torch.inference_mode():
            for song in items:
                probs = torch.softmax(model(torch.from_numpy(np.asarray(song, dtype=np.float32))), -1)
                songs.append(probs.mean(0).numpy())
                excerpts.append(probs.numpy())
        return np.stack(songs), excerpts


# ------------------------------------------------------------------ lyrics


class LyricsBranch(Branch):
    """Frozen encoder: items are song embeddings [hidden]. Fine-tuning: items are token windows."""

    @property
    def frozen(self) -> bool:
        return not self.dims.get("train_encoder", False)

    def build(self):
        model = super().build()
        if not self.frozen:
            model.attach_encoder()
        return model

    def collate(self, items, targets, train):
        import torch

        from mer_tag.models.lyrics import stack_windows

        y = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        if self.frozen:
            return (torch.from_numpy(np.stack(items).astype(np.float32)),), y
        return stack_windows(items), y

    def forward(self, model):
        return model if self.frozen else model.forward_tokens


# ------------------------------------------------------------------ MIDI


class MidiBranch(Branch):
    def prepare(self, model, items):
        """Standardise note statistics (models with `stats_norm`) with those of the training pieces."""
        if getattr(model, "stats_norm", None) is not None and items:
            from mer_tag.models.midi import midi_statistics

            (pitch, cont, lengths), _ = self.collate(items, None, train=False)
            model.stats_norm.fit(midi_statistics(pitch, cont, lengths))

    def collate(self, items, targets, train):
        import torch

        pitch = torch.from_numpy(np.stack([i[0] for i in items]))
        cont = torch.from_numpy(np.stack([i[1] for i in items]))
        lengths = torch.as_tensor([int(i[2]) for i in items])
        y = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        return (pitch, cont, lengths), y


# ------------------------------------------------------------------ fusion


class FusionBranch(Branch):
    """Items: (log-probabilities [branches, K], present [branches])."""

    def collate(self, items, targets, train):
        import torch

        log_probs = torch.from_numpy(np.stack([i[0] for i in items]).astype(np.float32))
        present = torch.from_numpy(np.stack([i[1] for i in items]))
        y = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        return (log_probs, present), y


def fusion_items(branch_probs: dict[str, list], branches: tuple[str, ...], n_classes: int, subsets: bool):
    """Fusion inputs per song, and (with `subsets`) extra copies with present modalities dropped, so every
    subset of modalities is seen in training. Returns (items, source index of each item)."""
    from itertools import combinations

    from mer_tag.models.fusion import fusion_input

    n = len(next(iter(branch_probs.values())))
    items, source = [], []
    for i in range(n):
        log_probs, present = fusion_input([branch_probs[b][i] for b in branches], n_classes)
        on = [j for j in range(len(branches)) if present[j]]
        masks = [present]
        if subsets:
            masks = [
                np.isin(np.arange(len(branches)), keep) for r in range(1, len(on) + 1) for keep in combinations(on, r)
            ]
        for mask in masks:
            items.append((log_probs * mask[:, None], mask))
            source.append(i)
    return items, np.asarray(source, dtype=int)


def make_branch(name: str, section: dict, n_classes: int, audio_frontend: str = "logmel") -> Branch:
    """The branch trainer for a preset section."""
    dims = dict(section.get("model", {}))
    dims["n_classes"] = n_classes
    if name == "audio":
        dims.setdefault("arch", "musicnn_crnn" if audio_frontend in FROZEN_FRONTENDS else "crnn")
        return AudioBranch(name, dims, section)
    if name == "lyrics":
        dims.setdefault("arch", "lyrics")
        dims["train_encoder"] = section.get("encoder", "frozen") == "finetune"
        return LyricsBranch(name, dims, section)
    if name == "midi":
        dims.setdefault("arch", "midi_bigru")
        return MidiBranch(name, dims, section)
    dims.setdefault("arch", "fusion")
    return FusionBranch(name, dims, section)
