"""Smoke training on a handful of real songs: every preset runs end to end and its model scans."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from mer_tag import bundle as bundle_io
from mer_tag.cli import main
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.train.recipe import load_preset, preset_names
from mer_tag.train.run import train


def research_script(name: str):
    """research/NAME.py, imported from its file (research/ is scripts run as `python research/NAME.py`)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "research" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_presets_are_all_there():
    assert {"default", "mirex-baseline", "wijaya2021-cnn", "wijaya2021-crnn"} <= set(preset_names())
    baseline = load_preset("mirex-baseline")
    assert (baseline["audio"]["batch_size"], baseline["audio"]["lr"], baseline["audio"]["epochs"]) == (8, 1e-3, 20)
    assert (baseline["lyrics"]["batch_size"], baseline["lyrics"]["lr"], baseline["lyrics"]["epochs"]) == (16, 2e-5, 10)
    assert baseline["lyrics"]["features"]["max_tokens"] == 256
    assert (baseline["midi"]["features"]["seq_len"], baseline["midi"]["batch_size"], baseline["midi"]["epochs"]) == (
        500,
        32,
        30,
    )
    wijaya = load_preset("wijaya2021-cnn")
    assert wijaya["audio"]["model"]["channels"] == [16, 32, 64, 112]
    features = wijaya["audio"]["features"]
    # the paper's 128 x 256 image; over our 30-s clips its frames are 2592 samples apart, not 4096
    # (docs/reproductions.md)
    assert (features["n_mels"], features["hop_length"], features["chunk_seconds"]) == (128, 2592, 30.0)
    assert (wijaya["audio"]["optimizer"], wijaya["audio"]["lr"]) == ("adam", 1e-3)


def test_unknown_preset_is_a_usage_error(mirex_dataset, tmp_path):
    assert main(["train", "--data", str(mirex_dataset), "--preset", "nope", "-o", str(tmp_path / "r"), "-q"]) == 2


@pytest.fixture(scope="module")
def smoke_run(mirex_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train(
        mirex_dataset,
        preset="default",
        out=out,
        cache=out / "cache",
        jobs=2,
        limit=20,
        epochs=1,
        progress=False,
        log=lambda msg: None,
    )
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
    assert card["encoder_precision"] == "fp32"  # the default: the shipped recipe's


def test_the_saved_model_loads_and_predicts(smoke_run, mirex_dataset, tmp_path):
    model = bundle_io.load(smoke_run.model_dir)
    assert model.audio_config.frontend == "musicnn_student" and model.audio_config.sample_rate == 16000
    out = tmp_path / "moods.csv"
    summary = scan([mirex_dataset / "Audio" / "002.mp3"], out=out, model=smoke_run.model_dir, jobs=0, progress=False)
    assert summary.ok == 1
    row = read_results(out).row(0, named=True)
    assert 1 <= row["cluster"] <= 5 and row["model"] == model.ref
    # Its own name, not the shipped model's: a scan or `beet mood` redoes what another model did.
    from mer_tag import __version__
    from mer_tag.train.run import weights_digest

    assert model.ref == f"{model.name}@{__version__}+{weights_digest(model.models)}" != bundle_io.read_card().ref
    again = scan([mirex_dataset / "Audio" / "002.mp3"], out=out, model="default", jobs=0, progress=False)
    assert again.ok == 1 and again.skipped == 0


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


def test_the_baseline_preset_trains_and_reloads(mirex_dataset, tmp_path):
    """(The Wijaya presets: test_wijaya_presets_train_one_tiny_epoch_then_load_and_predict, on generated songs.)"""
    result = train(
        mirex_dataset,
        preset="mirex-baseline",
        out=tmp_path,
        cache=None,
        jobs=1,
        limit=24,
        epochs=1,
        progress=False,
        log=lambda msg: None,
    )  # 24: enough songs with lyrics for that branch to train
    model = bundle_io.load(result.model_dir)
    assert model.card["preset"]["name"] == "mirex-baseline"
    lyrics = model.models["lyrics"]
    assert lyrics.train_encoder and lyrics.pooling == "cls"
    assert any(k.startswith("encoder.") for k in lyrics.state_dict())  # a fine-tuned encoder is saved


def test_crossval_scores_grouped_folds_on_the_dev_artists_only(mirex_dataset, tmp_path, capsys):
    """`mer-tag crossval`: per-fold macro-F1 and accuracy of a branch, test artists of the preset split left out."""
    import numpy as np

    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.splits import make_split

    report = tmp_path / "cv.json"
    code = main(
        [
            "crossval",
            "--data",
            str(mirex_dataset),
            "--branch",
            "midi",
            "--folds",
            "2",
            "--set",
            "midi.epochs=1",
            "--set",
            "midi.model={'arch': 'midi_stats'}",
            "--json",
            str(report),
            "--cache",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    result = json.loads(report.read_text())
    midi = result["branches"]["midi"]
    assert len(midi["fold_macro_f1"]) == 2 and all(0 <= s <= 1 for s in midi["fold_macro_f1"] + midi["fold_accuracy"])
    assert midi["mean"] == pytest.approx(np.mean(midi["fold_macro_f1"]))
    assert (
        "grouped CV macro-F1" in capsys.readouterr().out
        and result["overrides"][1] == "midi.model={'arch': 'midi_stats'}"
    )

    dataset = load_dataset(mirex_dataset)
    y = np.array([e.label for e in dataset.examples])
    groups = np.array([artist_group(e.artist, e.id) for e in dataset.examples])
    split = make_split(y, groups, 0.2, 0.1, 0)
    with_midi = {i for i, e in enumerate(dataset.examples) if e.midi_path is not None}
    assert midi["songs"] <= len(with_midi - set(split["test"])) < len(with_midi)


def test_crossval_usage_errors_are_one_line_and_exit_2(tmp_path, capsys):
    from media import write_4q_dataset

    root = write_4q_dataset(tmp_path / "4q", per_quadrant=1, seconds=1.0)
    assert main(["crossval", "--data", str(root), "--branch", "video"]) == 2
    assert main(["crossval", "--data", str(root), "--branch", "audio", "--set", "audio.epochs"]) == 2
    assert main(["crossval", "--data", str(root), "--branch", "audio", "--label-map", "Q1=A"]) == 2
    assert main(["crossval", "--data", str(root), "--branch", "audio", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and "Traceback" not in err
    assert "unknown precision 'fp16': use auto, fp32, bf16" in err


@pytest.mark.parametrize(
    "args, said",
    [
        (["--folds", "0"], "Invalid value for '--folds': Input should be greater than or equal to 2"),
        (["--folds", "1"], "Invalid value for '--folds': Input should be greater than or equal to 2"),
        (["--seeds", "0"], "Invalid value for '--seeds': Input should be greater than or equal to 1"),
        (["--jobs", "-1"], "Invalid value for '--jobs'"),
        (["--limit", "-3"], "Invalid value for '--limit'"),
        (["--folds", "9"], "--folds 9: these "),  # more folds than the dev songs' artists
        (["-b", "quadrant", "--folds", "9"], "--folds 9: these "),
        (["--probs", "cv.npz"], "--probs saves the fused answer's probabilities: it needs --branch fused"),
        (["--json", "."], "--json . is a folder: give a file, e.g. crossval.json"),
        (["--cache", "taken.txt"], "--cache taken.txt: taken.txt is a file, not a folder"),
    ],
)
def test_crossval_bad_counts_and_outputs_are_one_line_before_any_feature_is_extracted(tmp_path, args, said):
    """`crossval --folds 1` was a 96-line scikit-learn traceback after a minute of feature extraction."""
    import os
    import subprocess
    import sys

    from media import write_4q_dataset

    root = write_4q_dataset(tmp_path / "4q", per_quadrant=2, seconds=1.0)
    (tmp_path / "taken.txt").write_text("mine")
    branch = [] if "-b" in args else ["-b", "audio"]
    cache = tmp_path / "cache"
    caching = [] if "--cache" in args else ["--cache", str(cache)]
    run = subprocess.run(
        [sys.executable, "-m", "mer_tag", "crossval", "--data", str(root), *branch, *args, *caching],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ") and said in run.stderr, run.stderr
    assert not cache.exists()  # nothing extracted, nothing cached


@pytest.mark.parametrize("option", ["--out", "--cache"])
def test_train_refuses_a_file_where_it_needs_a_folder_before_any_work(tiny_4q, tmp_path, capsys, option):
    """`train -o moods.csv` ended in a FileExistsError traceback (--cache: NotADirectoryError), after the work."""
    taken = tmp_path / "moods.csv"
    taken.write_text("mine")
    folders = {"--out": str(tmp_path / "run"), "--cache": str(tmp_path / "cache"), option: str(taken)}
    assert main(["train", "--data", str(tiny_4q), *[x for kv in folders.items() for x in kv], "-q"]) == 2
    assert capsys.readouterr().err == f"error: {option} {taken}: {taken} is a file, not a folder\n"
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["moods.csv"]


def test_train_refuses_a_negative_seed_before_any_work(tiny_4q, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_4q), "--seed", "-1", "-o", str(tmp_path / "run"), "-q"]) == 2
    assert capsys.readouterr().err.startswith("error: Invalid value for '--seed'")  # numpy's traceback before
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_unknown_precision_before_any_work(tiny_4q, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_4q), "--precision", "fp16", "-o", str(tmp_path / "run"), "-q"]) == 2
    assert "error: unknown precision 'fp16': use auto, fp32, bf16" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_crossval_of_the_whole_recipe_keeps_each_folds_artists_out_of_its_training(mirex_dataset, tmp_path, capsys):
    """`mer-tag crossval --branch fused`: branches and fusion per fold; a held song is never in that fold's
    fusion training rows, and every song is held exactly once."""
    import numpy as np

    run_probes = research_script("probe_features").run_probes

    report, probs = tmp_path / "cv.json", tmp_path / "cv.npz"
    quick = ["audio.epochs=1", "lyrics.epochs=1", "midi.epochs=1", "fusion.folds=2"]
    code = main(
        [
            "crossval",
            "--data",
            str(mirex_dataset),
            "--branch",
            "fused",
            "--folds",
            "2",
            "--limit",
            "40",
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(report),
            "--probs",
            str(probs),
            *[a for q in quick for a in ("--set", q)],
        ]
    )
    assert code == 0
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

    # the fusion probe refits the fusion from the saved probabilities: the same fused scores
    capsys.readouterr()
    run_probes(None, str(probs), None, 1, 1)
    refit = next(line for line in capsys.readouterr().out.splitlines() if "shipped fusion (refit)" in line)
    assert f"macro-F1 {branches['fused:fused']['mean']:.3f} ± {branches['fused:fused']['std']:.3f}" in refit


# ------------------------------------------------------------------ 4Q layout, label maps, the Wijaya presets


def train_tiny_valence(data, preset: str, out):
    """One epoch of `preset` on the tiny 4Q set, relabelled to valence."""
    return train(
        data,
        preset=preset,
        out=out,
        cache=None,
        jobs=1,
        epochs=1,
        progress=False,
        log=lambda msg: None,
        label_map="valence",
    )


@pytest.mark.parametrize("preset", ["wijaya2021-cnn", "wijaya2021-crnn"])
def test_wijaya_presets_train_one_tiny_epoch_then_load_and_predict(preset, tiny_4q, tmp_path):
    result = train_tiny_valence(tiny_4q, preset, tmp_path / "run")
    model = bundle_io.load(result.model_dir)
    assert model.card["preset"]["name"] == preset and model.card["preset"]["labels"]["map"] == "valence"
    assert model.labels.names == ("Positive", "Negative") and set(model.models) == {"audio", "fusion"}
    assert (model.audio_config.n_mels, model.audio_config.chunk_frames) == (128, 256)  # the paper's image
    out = tmp_path / "moods.csv"
    summary = scan([tiny_4q / "Audio" / "MT00000.wav"], out=out, model=result.model_dir, jobs=0, progress=False)
    assert summary.ok == 1
    row = read_results(out).row(0, named=True)
    assert row["cluster"] in (1, 2) and row["cluster_name"] in ("Positive", "Negative")


def test_the_default_recipe_trains_on_audio_alone_when_songs_have_no_lyrics_or_midi(tiny_4q, tmp_path):
    """Also: the card names the encoders' precision, and the call leaves torch's thread count as it found it."""
    import torch

    logged = []
    torch.set_num_threads(3)
    result = train(
        tiny_4q,
        preset="default",
        out=tmp_path / "run",
        cache=None,
        jobs=1,
        epochs=1,
        progress=False,
        log=logged.append,
        precision="bf16",
    )
    assert torch.get_num_threads() == 3
    model = bundle_io.load(result.model_dir)
    assert set(model.models) == {"audio", "fusion"} and len(model.labels) == 4
    assert any(line.startswith("lyrics: only 0 training songs have it") for line in logged)
    assert result.metrics["fusion"]["test"]["n"] >= 1
    assert model.card["encoder_precision"] == "bf16"
    assert "The frozen encoders ran in bf16" in (tmp_path / "run" / "model-card.md").read_text()


def test_eval_relabels_the_data_with_the_models_own_map(tiny_4q, tmp_path):
    from mer_tag.evaluate import evaluate

    result = train_tiny_valence(tiny_4q, "wijaya2021-cnn", tmp_path / "run")
    card = bundle_io.read_card(result.model_dir).card
    learned = len(bundle_io.seen_songs(card))  # train + val: this preset does not refit on all
    assert learned == 8 - card["data"]["split_sizes"]["test"] < 8
    held_out = evaluate(tiny_4q, model=result.model_dir, jobs=0)
    assert held_out["fusion"]["n"] == 8 - learned  # only the songs it did not learn from
    metrics = evaluate(tiny_4q, model=result.model_dir, jobs=0, include_training_songs=True)  # quadrant labels
    assert metrics["fusion"]["n"] == 8 and len(metrics["fusion"]["confusion"]) == 2
    assert sum(metrics["fusion"]["confusion"][0]) == 4  # Q1 + Q4 songs are the positive row


def test_crossval_scores_every_excerpt_as_well_as_every_song(tiny_4q, tmp_path):
    """Excerpts shorter than the clips: each song's excerpts scored alone (the paper's 'clip' setting) beside
    the song's answer (their mean)."""
    from mer_tag.train.crossval import crossval

    excerpt = [
        "audio.features.chunk_seconds=1.0",
        "audio.features.chunk_hop_seconds=1.0",
        "audio.features.hop_length=128",
        "audio.epochs=1",
    ]
    report = crossval(
        tiny_4q,
        preset="wijaya2021-cnn",
        branches=("audio",),
        overrides=excerpt,
        folds=2,
        cache=None,
        jobs=1,
        log=lambda line: None,
    )
    audio = report["branches"]["audio"]
    assert audio["songs"] == 6 and report["labels"][0].startswith("Q1")  # 8 less the split's 20 % test artists
    assert len(audio["fold_excerpt_accuracy"]) == len(audio["fold_accuracy"]) == 2
    assert sum(audio["fold_held_songs"]) == 6
    assert audio["fold_held_excerpts"] == [3 * n for n in audio["fold_held_songs"]]  # 3-s songs, 1-s excerpts
    assert all(0 <= s <= 1 for s in audio["fold_excerpt_macro_f1"] + audio["fold_excerpt_accuracy"])


def test_set_refuses_what_cannot_be_the_presets_value_before_any_work():
    from mer_tag.train.crossval import CrossvalError, override
    from mer_tag.train.recipe import load_preset

    assert load_preset("default")["audio"]["features"]["dissonance"] is True  # so `--set` checks its kind

    config = {"audio": {"epochs": 40, "lr": 0.001, "features": {"tonal": True, "dissonance": True}}, "fusion": {}}
    for assignment, message in (
        ("audio.epochs=ten", "'epochs' is int in the preset (40), not 'ten'"),
        ("audio=5", "'audio' is a section in the preset"),
        ("audio.epohcs=1", "the preset has no 'epohcs'; did you mean 'epochs'?"),
        ("audio.features.tonal=0", "'tonal' is bool in the preset (True), not 0"),
        ("audio.features.dissonance=false", "'dissonance' is bool in the preset (True), not 'false'"),
    ):
        with pytest.raises(CrossvalError, match=re.escape(message)):
            override(config, assignment)
    override(config, "audio.epochs=3")
    override(config, "audio.lr=1")  # a number for a number
    override(config, "fusion.folds=2")  # a key the preset leaves to the code's default
    override(config, "audio={'epochs': 1}")  # a section for a section
    assert config["audio"] == {"epochs": 1} and config["fusion"] == {"folds": 2}


def test_a_preset_that_is_a_folder_or_broken_toml_is_one_line(tmp_path):
    from mer_tag.train.recipe import TrainError, load_preset

    (tmp_path / "folder").mkdir()
    with pytest.raises(TrainError, match="no preset"):
        load_preset(tmp_path / "folder")
    (tmp_path / "bad.toml").write_text("[audio\nepochs = 1\n", encoding="utf-8")
    with pytest.raises(TrainError, match=r"preset .*bad.toml: Expected"):
        load_preset(tmp_path / "bad.toml")


def test_a_dataset_without_usable_audio_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    (tmp_path / "songs.csv").write_text("path,label\nnope.wav,happy\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "songs.csv"), "-o", str(out), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: none of the 1 songs in ") and "nope.wav: cannot read file" in err[-1]
    assert not out.exists()


def test_a_run_into_a_folder_of_an_earlier_one_leaves_no_plot_of_the_earlier_model(mirex_dataset, smoke_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / "confusion-quadrant-test.png"  # an earlier run's, with --quadrant-data
    stale.write_bytes(b"an earlier model's")
    train(mirex_dataset, preset="default", out=out, cache=smoke_run.out / "cache", jobs=2, limit=20, epochs=1,
          progress=False, log=lambda msg: None)  # fmt: skip
    assert not stale.exists() and (out / "confusion-fusion-test.png").exists() and (out / "split.json").exists()
