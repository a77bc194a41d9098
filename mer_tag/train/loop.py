"""The epoch loop shared by every branch: minibatches, class-weighted cross-entropy, early stopping.

A branch hands in its examples as a list of items and a `collate(items, train) -> (inputs, targets)`
function; the loop knows nothing about audio, lyrics or MIDI.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoopConfig:
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    optimizer: str = "adam"  # 'adam' or 'adamw'
    weight_decay: float = 0.0
    patience: int = 0  # epochs without val improvement before stopping; 0 = run every epoch
    class_weights: bool = False  # weight the loss by inverse class frequency
    label_smoothing: float = 0.0
    schedule: str = "none"  # 'none' or 'cosine'
    seed: int = 0


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # per epoch: train_loss, train_acc, val_loss, val_acc, val_f1
    best_epoch: int = 0


def fit(
    model,
    items: list,
    targets: np.ndarray,
    collate,
    config: LoopConfig,
    val_items=None,
    val_targets=None,
    n_classes: int | None = None,
    progress=None,
    desc: str = "train",
    forward=None,
) -> History:
    """Train `model` in place; with validation data, keep the weights of the best epoch (macro-F1, then loss).

    `forward` is what a batch's inputs are fed to (default: the model itself), e.g. a fine-tuned lyrics
    model's `forward_tokens`.
    """
    import torch

    from mer_tag.train.evaluate import macro_f1

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n_classes = n_classes or int(targets.max()) + 1
    weight = _class_weights(targets, n_classes) if config.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    forward = forward or model
    params = [p for p in model.parameters() if p.requires_grad]
    opt_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_class(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(items) / config.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
        if config.schedule == "cosine"
        else None
    )
    history, best_score, best_state, stale = History(), None, None, 0
    epochs = range(1, config.epochs + 1)
    for epoch in progress(epochs, total=config.epochs, desc=desc) if progress else epochs:
        model.train()
        order = rng.permutation(len(items))
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            inputs, y = collate([items[i] for i in batch], targets[batch], train=True)
            logits = forward(*inputs)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            if scheduler:
                scheduler.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == y).sum())
        record = {"epoch": epoch, "train_loss": total_loss / len(items), "train_acc": correct / len(items)}
        if val_items is not None and len(val_items):
            probs = predict_proba(model, val_items, collate, forward=forward)
            val_pred = probs.argmax(1)
            record.update(
                val_loss=float(-np.log(np.clip(probs[np.arange(len(val_targets)), val_targets], 1e-9, 1)).mean()),
                val_acc=float((val_pred == val_targets).mean()),
                val_f1=macro_f1(val_targets, val_pred, n_classes),
            )
            score = (record["val_f1"], -record["val_loss"])
            if best_score is None or score > best_score:
                best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
                history.best_epoch = epoch
            else:
                stale += 1
        history.epochs.append(record)
        if config.patience and stale >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.epochs)
    model.eval()
    return history


def predict_proba(model, items: list, collate, batch_size: int = 32, forward=None) -> np.ndarray:
    """[n, n_classes] softmax probabilities in eval mode."""
    import torch

    forward = forward or model
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            inputs, _ = collate(items[start : start + batch_size], None, train=False)
            out.append(torch.softmax(forward(*inputs), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _class_weights(targets: np.ndarray, n_classes: int):
    import torch

    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)
