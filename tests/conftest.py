import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/media.py: fixture writers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mirex-mood"


@pytest.fixture(scope="session")
def mirex_dataset() -> Path:
    """The shared MIREX-like dataset; tests that need it skip cleanly where it is absent."""
    if not (DATASET / "clusters.txt").exists():
        pytest.skip(f"dataset not found at {DATASET}")
    return DATASET


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(1)
    yield
