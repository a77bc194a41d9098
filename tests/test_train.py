"""Smoke training on a handful of real songs: every preset runs end to end and its model scans."""

import json

import pytest

from mer_tag import bundle as bundle_io
from mer_tag.cli import main
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.train.run import load_preset, preset_names, train


def test_presets_are_all_there():
    assert {"default", "mirex-baseline", "wijaya2021-cnn", "wijaya2021-crnn"} <= set(preset_names())
    baseline = load_preset("mirex-baseline")
    assert (baseline["audio"]["batch_size"], baseline["audio"]["lr"], baseline["audio"]["epochs"]) == (8, 1e-3, 20)
    assert (baseline["lyrics"]["batch_size"], baseline["lyrics"]["lr"], baseline["lyrics"]["epochs"]) == (16, 2e-5, 10)
    assert baseline["lyrics"]["features"]["max_tokens"] == 256
    assert (baseline["midi"]["features"]["seq_len"], baseline["midi"]["batch_size"], baseline["midi"]["epochs"]) == (500, 32, 30)
    wijaya = load_preset("wijaya2021-cnn")
    assert wijaya["audio"]["model"]["channels"] == [16, 32, 64, 112]
    assert (wijaya["audio"]["features"]["n_mels"], wijaya["audio"]["features"]["hop_length"]) == (128, 4096)


def test_unknown_preset_is_a_usage_error(mirex_dataset, tmp_path):
    assert main(["train", "--data", str(mirex_dataset), "--preset", "nope", "-o", str(tmp_path / "r"), "-q"]) == 2


@pytest.fixture(scope="module")
def smoke_run(mirex_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train(mirex_dataset, preset="default", out=out, cache=out / "cache", jobs=2, limit=20, epochs=1,
                   progress=False, log=lambda msg: None)
    return result


def test_a_run_leaves_model_metrics_plots_and_card(smoke_run):
    out = smoke_run.out
    for name in ("metrics.json", "model-card.md", "split.json", "curves-audio.png", "confusion-fusion-test.png"):
        assert (out / name).exists(), name
    split = json.loads((out / "split.json").read_text())
    assert sum(len(v) for v in split.values()) == 20
    card = json.loads((smoke_run.model_dir / "card.json").read_text())
    assert card["preset"]["name"] == "default" and card["data"]["songs"] == 20
    assert set(card["models"]) >= {"audio", "lyrics", "fusion"}
    assert 0 <= card["metrics"]["fusion"]["test"]["macro_f1"] <= 1


def test_the_saved_model_loads_and_predicts(smoke_run, mirex_dataset, tmp_path):
    model = bundle_io.load(smoke_run.model_dir)
    assert model.audio_config.frontend == "musicnn_student" and model.audio_config.sample_rate == 16000
    out = tmp_path / "moods.csv"
    summary = scan([mirex_dataset / "Audio" / "002.mp3"], out=out, model=smoke_run.model_dir, jobs=0, progress=False)
    assert summary.ok == 1
    row = read_results(out).row(0, named=True)
    assert 1 <= row["cluster"] <= 5 and row["model"] == model.ref


def test_the_cache_holds_one_entry_per_song(smoke_run):
    assert len(list((smoke_run.out / "cache" / "audio").glob("*.npz"))) == 20


def test_cache_keys_change_with_the_file_and_the_settings(tmp_path):
    import os

    from mer_tag.train.extract import FeatureCache

    cache = FeatureCache(tmp_path)
    song = tmp_path / "song.mp3"
    song.write_bytes(b"x")
    key = cache.key("audio", song, {"n_mels": 128})
    assert cache.key("audio", song, {"n_mels": 128}) == key
    assert cache.key("audio", song, {"n_mels": 96}) != key
    os.utime(song, (1, 1))
    assert cache.key("audio", song, {"n_mels": 128}) != key
    cache.save("audio", key, {"x": __import__("numpy").ones(3)})
    assert cache.load("audio", key)["x"].sum() == 3
    (tmp_path / "audio" / f"{key}.npz").write_bytes(b"torn")
    assert cache.load("audio", key) is None  # a torn entry is recomputed, not trusted


@pytest.mark.parametrize("preset", ["mirex-baseline", "wijaya2021-cnn", "wijaya2021-crnn"])
def test_other_presets_train_and_reload(preset, mirex_dataset, tmp_path):
    limit = 24 if preset == "mirex-baseline" else 12  # enough songs with lyrics for that branch to train
    result = train(mirex_dataset, preset=preset, out=tmp_path, cache=None, jobs=1, limit=limit, epochs=1,
                   progress=False, log=lambda msg: None)
    model = bundle_io.load(result.model_dir)
    assert model.card["preset"]["name"] == preset
    if preset == "mirex-baseline":
        lyrics = model.models["lyrics"]
        assert lyrics.train_encoder and lyrics.pooling == "cls"
        assert any(k.startswith("encoder.") for k in lyrics.state_dict())  # a fine-tuned encoder is saved
    else:
        assert set(model.models) == {"audio", "fusion"}
        assert model.audio_config.hop_length == 4096


def test_crossval_scores_grouped_folds_on_the_dev_artists_only(mirex_dataset, tmp_path):
    """tools/crossval.py: per-fold macro-F1 of a branch, test artists of the preset split left out."""
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.splits import make_split

    tool = Path(__file__).resolve().parent.parent / "tools" / "crossval.py"
    report = tmp_path / "cv.json"
    proc = subprocess.run([sys.executable, str(tool), "--data", str(mirex_dataset), "--branch", "midi", "--folds", "2",
                           "--set", "midi.epochs=1", "--set", "midi.model={'arch': 'midi_stats'}", "--json", str(report)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(report.read_text())
    midi = result["branches"]["midi"]
    assert len(midi["fold_macro_f1"]) == 2 and all(0 <= s <= 1 for s in midi["fold_macro_f1"])
    assert "grouped CV macro-F1" in proc.stdout and result["overrides"][1] == "midi.model={'arch': 'midi_stats'}"

    dataset = load_dataset(mirex_dataset)
    y = np.array([e.label for e in dataset.examples])
    groups = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = make_split(y, groups, 0.2, 0.1, 0)
    with_midi = {i for i, e in enumerate(dataset.examples) if e.midi_path is not None}
    assert midi["songs"] <= len(with_midi - set(split["test"])) < len(with_midi)


def test_crossval_of_the_whole_recipe_keeps_each_folds_artists_out_of_its_training(mirex_dataset, tmp_path):
    """tools/crossval.py --branch fused: branches and fusion per fold; a held song is never in that fold's
    fusion training rows, and every song is held exactly once."""
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    tool = Path(__file__).resolve().parent.parent / "tools" / "crossval.py"
    report, probs = tmp_path / "cv.json", tmp_path / "cv.npz"
    quick = ["audio.epochs=1", "lyrics.epochs=1", "midi.epochs=1", "fusion.folds=2"]
    proc = subprocess.run([sys.executable, str(tool), "--data", str(mirex_dataset), "--branch", "fused", "--folds", "2",
                           "--limit", "40", "--cache", str(tmp_path / "cache"), "--json", str(report),
                           "--probs", str(probs), *[a for q in quick for a in ("--set", q)]],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    branches = json.loads(report.read_text())["branches"]
    assert len(branches["fused:fused"]["fold_macro_f1"]) == 2 and branches["fused:fused"]["songs"] == 40
    assert all(0 <= s <= 1 for s in branches["fused:fused"]["fold_macro_f1"] + branches["fused:audio"]["fold_macro_f1"])
    saved = np.load(probs)
    held = [set(saved[f"s0f{k}_fused_held"][:, 0].astype(int)) for k in range(2)]
    assert held[0].isdisjoint(held[1]) and len(held[0] | held[1]) == len(saved["labels"]) == 40
    for k in range(2):
        oof = saved[f"s0f{k}_audio_oof"]
        assert held[k].isdisjoint(oof[:, 0].astype(int)) and len(oof) == 40 - len(held[k])
        np.testing.assert_allclose(saved[f"s0f{k}_fused_held"][:, 1:].sum(1), 1, atol=1e-4)

    # tools/probe_features.py refits the fusion from the saved probabilities: the same fused scores
    probe = subprocess.run([sys.executable, str(tool.parent / "probe_features.py"), "--fusion-probs", str(probs)],
                           capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stderr[-2000:]
    refit = next(line for line in probe.stdout.splitlines() if "shipped fusion (refit)" in line)
    assert f"macro-F1 {branches['fused:fused']['mean']:.3f} ± {branches['fused:fused']['std']:.3f}" in refit
