import numpy as np
import pytest
import torch

from mer_tag import bundle as bundle_io
from tiny_model import edit_card, make_tiny_bundle


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
    edit_card(folder, lambda card: card["models"]["audio"].update(gru_hidden=16))
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


def _notes(pitches, seq_len=32):
    """(pitch, cont, length) as features.midi_sequence makes them, for `pitches` a quarter-second apart."""
    from mer_tag.features import MidiConfig, midi_sequence

    notes = np.array([[p, 0.25 * i, 0.2, 90] for i, p in enumerate(pitches)], dtype=np.float32)
    pitch, cont, n = midi_sequence(notes, MidiConfig(seq_len=seq_len))
    return torch.from_numpy(pitch)[None], torch.from_numpy(cont)[None], torch.tensor([n])


def test_midi_statistics_hear_the_mode_in_any_key_and_ignore_padding():
    from mer_tag.models.midi import N_PITCH_CLASSES, midi_statistics

    c_major = [60, 62, 64, 65, 67, 69, 71, 72, 64, 67, 60, 60]
    c_minor = [60, 62, 63, 65, 67, 68, 70, 72, 63, 67, 60, 60]
    major = midi_statistics(*_notes(c_major))
    transposed = midi_statistics(*_notes([p + 5 for p in c_major]))
    minor = midi_statistics(*_notes(c_minor))
    profile = slice(0, N_PITCH_CLASSES)
    assert torch.allclose(major[:, profile], transposed[:, profile])  # same mode, another key
    assert not torch.allclose(major[:, profile], minor[:, profile])
    assert major[0, profile].sum().item() == pytest.approx(1.0)
    assert torch.allclose(major, midi_statistics(*_notes(c_major, seq_len=200)), atol=1e-6)  # padding ignored


@pytest.mark.parametrize(
    "dims",
    [{"arch": "midi_stats", "hidden": 8}, {"arch": "midi_bigru", "embed_dim": 8, "gru_hidden": 8, "stats": True}],
)
def test_midi_models_with_statistics_train_save_and_rebuild(dims):
    from mer_tag import models

    model = models.build({**dims, "n_classes": 5})
    from mer_tag.models.midi import midi_statistics

    batch = [torch.cat(parts) for parts in zip(_notes([60, 64, 67] * 4), _notes([50, 53, 57, 62] * 3))]
    model.stats_norm.fit(midi_statistics(*batch))  # what MidiBranch.prepare does with the training pieces
    assert model.stats_norm(midi_statistics(*batch)).mean(0).abs().max() < 1e-5
    model.train()
    model(*[b[:1] for b in batch]).sum().backward()  # a batch of one piece trains too
    model.eval()
    rebuilt = models.build(model.dims)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    assert torch.allclose(model(*batch), rebuilt(*batch))
    assert model(*batch).shape == (2, 5)
