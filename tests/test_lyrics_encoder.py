"""Our plain-torch MiniLM and tokenizer wrapper (mer_tag.models.bert, models.lyrics) against transformers,
which builds the same network from the same package folder. transformers is only the reference here."""

import numpy as np
import pytest
import torch

from mer_tag.features import LyricsConfig, lyrics_windows
from mer_tag.models.lyrics import encoder_dir, load_encoder, load_tokenizer

TEXTS = [
    "I walk alone down the empty street, the rain keeps falling on my feet",
    "Ça ira, ça ira! Über den Wolken — naïve café, ¿qué pasa? 東京 🎸 [Chorus] x2",
    "la la la " * 150,  # longer than one 256-token window
    "",
]


@pytest.fixture(scope="module")
def reference_tokenizer():
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(encoder_dir()), local_files_only=True)


def test_tokens_are_transformers_tokens(reference_tokenizer):
    ours = load_tokenizer()
    for text in TEXTS:
        expected = reference_tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        assert ours(text, add_special_tokens=False)["input_ids"] == expected
    for name in ("pad_token_id", "unk_token_id", "cls_token_id", "sep_token_id"):
        assert getattr(ours, name) == getattr(reference_tokenizer, name)


def test_dataset_lyrics_tokenise_as_transformers_does(reference_tokenizer, mirex_dataset):
    from mer_tag.sources.lyrics import clean_lyrics, read_lyrics_file

    ours = load_tokenizer()
    for path in sorted((mirex_dataset / "Lyrics").glob("*.txt"))[::10]:
        text = clean_lyrics(read_lyrics_file(path))
        assert (
            ours(text, add_special_tokens=False)["input_ids"]
            == reference_tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        ), path.name


def test_encoder_matches_transformers_bert():
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoModel.from_pretrained(str(encoder_dir()), local_files_only=True).eval()
    ours = load_encoder()
    tokenizer = load_tokenizer()
    windows = [lyrics_windows(t, tokenizer, LyricsConfig(max_tokens=128, max_windows=3)) for t in TEXTS]
    ids = torch.from_numpy(np.concatenate([w["input_ids"] for w in windows]))
    mask = torch.from_numpy(np.concatenate([w["attention_mask"] for w in windows]))
    assert mask.sum(1).min() < mask.shape[1]  # some windows are padded: the mask is exercised
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()  # padded positions' states are never pooled
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def test_padding_does_not_change_a_windows_states():
    encoder = load_encoder()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    padded = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], 1)
    with torch.inference_mode():
        alone = encoder(ids, torch.ones_like(ids)).last_hidden_state
        with_pad = encoder(padded, (padded != 0).long()).last_hidden_state[:, :4]
    assert torch.allclose(alone, with_pad, atol=1e-5)


def test_fine_tuning_reaches_the_encoder():
    encoder = load_encoder().train()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    encoder(ids, torch.ones_like(ids)).last_hidden_state.sum().backward()
    assert encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_encoder_holds_the_files_weights_and_layers_init_again_afterwards():
    """MiniLM is built without its random init (`bert._without_random_init`): every parameter must still be
    the package file's, and torch's layers must draw random weights again once it is built."""
    import torch
    from safetensors.torch import load_file

    encoder = load_encoder()
    stored = {k.removeprefix("bert."): v for k, v in load_file(str(encoder_dir() / "model.safetensors")).items()}
    state = encoder.state_dict()
    assert len(state) > 100  # 6 layers of 16, and the embeddings
    for name, value in state.items():
        assert torch.equal(value, stored[name]), name
    for kind in (torch.nn.Linear, torch.nn.Embedding, torch.nn.LayerNorm):
        assert kind.reset_parameters.__module__.startswith("torch."), kind
    torch.manual_seed(0)
    assert torch.nn.Linear(8, 8).weight.abs().sum() > 0
