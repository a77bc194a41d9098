import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/media.py: fixture writers

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mirex-mood"
DATASET_4Q = DATASET.parent / "4q-emotion"


@pytest.fixture(scope="session")
def mirex_dataset() -> Path:
    """The shared MIREX-like dataset; tests that need it skip cleanly where it is absent."""
    if not (DATASET / "clusters.txt").exists():
        pytest.skip(f"dataset not found at {DATASET}")
    return DATASET


@pytest.fixture(scope="session")
def fourq_dataset() -> Path:
    """The shared 4Q audio emotion dataset (640 clips); tests that need it skip cleanly where it is absent."""
    if not (DATASET_4Q / "metadata.csv").exists():
        pytest.skip(f"dataset not found at {DATASET_4Q}")
    return DATASET_4Q


@pytest.fixture(scope="session")
def tiny_4q(tmp_path_factory):
    """Eight generated 3-s songs in the 4Q layout (two a quadrant, one artist each): no lyrics, no MIDI."""
    from media import write_4q_dataset

    return write_4q_dataset(tmp_path_factory.mktemp("4q") / "data", per_quadrant=2, seconds=3.0)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """The random-weight bundle of tests/tiny_model.py: fast, for the machinery, never for numbers."""
    from tiny_model import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(1)
    yield
