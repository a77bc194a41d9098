import json

import numpy as np
import pytest
import torch

from mer_tag import bundle as bundle_io
from tiny_model import make_tiny_bundle


def test_bundle_rebuilds_its_models_from_the_card(tmp_path):
    folder = make_tiny_bundle(tmp_path / "m")
    loaded = bundle_io.load(folder)
    assert loaded.ref == "tiny@0.0.1"
    assert set(loaded.models) == {"audio", "lyrics", "midi", "fusion"}
    assert loaded.audio_config.n_mels == 32 and loaded.lyrics_config.max_windows == 2
    mel = torch.randn(2, 32, 100)
    again = bundle_io.load(folder)
    assert torch.allclose(loaded.models["audio"](mel), again.models["audio"](mel))


def test_frozen_lyrics_encoder_is_not_copied_into_the_bundle(tmp_path):
    from safetensors.torch import load_file

    folder = make_tiny_bundle(tmp_path / "m")
    keys = load_file(str(folder / "lyrics.safetensors")).keys()
    assert keys and not [k for k in keys if k.startswith("encoder.")]
    assert (folder / "lyrics.safetensors").stat().st_size < 100_000


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path):
    folder = make_tiny_bundle(tmp_path / "m")
    card = json.loads((folder / "card.json").read_text())
    card["models"]["audio"]["gru_hidden"] = 16
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(bundle_io.BundleError, match="do not fit"):
        bundle_io.load(folder)


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(bundle_io.BundleError) as info:
        bundle_io.load(tmp_path / "nothing")
    assert "\n" not in str(info.value)


def test_saving_over_a_model_replaces_it_whole(tmp_path):
    folder = make_tiny_bundle(tmp_path / "m", seed=0)
    first = (folder / "audio.safetensors").read_bytes()
    make_tiny_bundle(tmp_path / "m", seed=1)
    assert (folder / "audio.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or old folders left behind


def test_pickle_is_never_loaded(tmp_path):
    folder = make_tiny_bundle(tmp_path / "m")
    (folder / "audio.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(bundle_io.BundleError, match="audio"):
        bundle_io.load(folder)
