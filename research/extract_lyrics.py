"""Lyrics embeddings of the MIREX-like songs for the lyrics-valence study (issue #28).

The shipped lyrics path exactly (mer_tag.train.extract.extract_branch('lyrics') with the default model's
settings: the frozen MiniLM, mean pooling, 256 tokens, one window), one 384-d vector per song with lyrics.

    .venv/bin/python research/extract_lyrics.py ../shared/datasets/mirex-mood research/out/mirex_lyrics.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(data: str, out: str) -> None:
    import torch

    from mer_tag.train.datasets import load_dataset
    from mer_tag.train.extract import FeatureCache, extract_branch

    torch.set_num_threads(1)
    preset = json.loads((ROOT / "mer_tag/weights/default/card.json").read_text())["preset"]
    dataset = load_dataset(data)
    lyrics, problems = extract_branch(
        "lyrics", preset, dataset.examples, FeatureCache(ROOT / ".cache/features"), 1, lambda it, **_: it
    )
    keep = [i for i, x in enumerate(lyrics) if x is not None]
    np.savez(
        out,
        id=np.asarray([dataset.examples[i].id for i in keep]),
        lyrics=np.stack([lyrics[i] for i in keep]),
    )
    print(f"{len(keep)} songs with lyrics → {out}; {len(problems)} problems")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
