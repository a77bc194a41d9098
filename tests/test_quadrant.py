"""The valence–arousal head: its arithmetic, its training (`train --quadrant-data`), its columns in a scan,
its scores in `eval` and `crossval -b quadrant`."""

import json

import numpy as np
import pytest

from mer_tag import bundle as bundle_io
from mer_tag.cli import main
from mer_tag.engines.predictor import PROB_DECIMALS
from mer_tag.labels import QUADRANT_WORDS
from mer_tag.models.quadrant import pool_track, valence_arousal
from mer_tag.scan import scan
from mer_tag.sinks import read_results
from mer_tag.train.evaluate import accuracy_by_coverage
from mer_tag.train.quadrant import _all_classes, fit_head, head_probs, quadrant_scores
from mer_tag.train.run import train


def test_valence_and_arousal_are_the_positive_and_energetic_quadrants_probabilities():
    probs = np.array([0.1, 0.2, 0.3, 0.4])  # Q1 positive/energetic, Q2 negative/energetic, Q3 …, Q4 positive/calm
    valence, arousal = valence_arousal(probs)
    assert valence == pytest.approx(0.1 + 0.4) and arousal == pytest.approx(0.1 + 0.2)
    assert valence_arousal(np.array([0.0, 0.0, 1.0, 0.0])) == (0.0, 0.0)  # all negative and calm


def test_a_track_is_pooled_over_every_window_of_every_chunk():
    embeddings = np.arange(2 * 3 * 4, dtype=np.float16).reshape(2, 3, 4)  # [chunks, windows, D]
    np.testing.assert_allclose(pool_track(embeddings), embeddings.astype(np.float32).mean(axis=(0, 1)))


def test_the_head_learns_separable_quadrants_and_keeps_its_standardisation():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (4, 16)) + 100  # far from 0: the stored mean must be applied
    y = np.repeat(np.arange(4), 20)
    pooled = (centres[y] + rng.normal(0, 0.5, (80, 16))).astype(np.float32)
    head = fit_head(pooled, y, {"C": 1.0})
    probs = head_probs(head, pooled)
    assert (probs.argmax(1) == y).mean() == 1.0
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(head.mean.numpy(), pooled.mean(0), rtol=1e-5)


def test_a_quadrant_missing_from_training_is_never_predicted():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 3], 10)  # no Q3
    classifier = LogisticRegression().fit(rng.normal(size=(30, 5)) + y[:, None], y)
    coef, intercept = _all_classes(classifier, 4)
    assert not coef[2].any() and intercept[2] < -20
    np.testing.assert_allclose(coef[[0, 1, 3]], classifier.coef_, rtol=1e-6)


def test_accuracy_against_coverage_reads_the_most_confident_songs_first():
    # confidence 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    truth = np.array([0, 0, 0, 0])
    points = {p["percent"]: p for p in accuracy_by_coverage(truth, probs, (0.25, 0.5, 0.75, 1.0))}
    assert [points[k]["accuracy"] for k in (25, 50, 75, 100)] == [1.0, 0.5, pytest.approx(2 / 3), 0.5]
    assert points[50]["n"] == 2 and points[50]["min_confidence"] == pytest.approx(0.8)


def test_quadrant_scores_count_valence_and_arousal_on_their_own():
    truth = np.array([0, 1, 2, 3])
    # Q1 → Q4 (valence right, arousal wrong); Q2 right; Q3 → Q2 (valence right, arousal wrong); Q4 right
    probs = np.array([[0.1, 0.05, 0.05, 0.8], [0.05, 0.8, 0.1, 0.05], [0.3, 0.6, 0.05, 0.05], [0.05, 0.05, 0.1, 0.8]])
    result = quadrant_scores(truth, probs)
    assert result["accuracy"] == 0.5 and result["valence_accuracy"] == 1.0 and result["arousal_accuracy"] == 0.5
    assert result["top2_accuracy"] == 0.75  # Q1's runner-up is right, Q3's is not


# ------------------------------------------------------------------ trained end to end on tiny sets


@pytest.fixture(scope="module")
def tiny_clusters(tmp_path_factory):
    """Ten generated 3-s songs, two per MIREX cluster, one folder per cluster (the folder layout)."""
    from media import tone, write_audio
    from mer_tag.labels import MIREX

    root = tmp_path_factory.mktemp("clusters") / "data"
    for c, name in enumerate(MIREX.names):
        for k in range(2):
            write_audio(root / name / f"{name}-{k}.wav", tone(3.0, freq=200.0 + 90 * c + 20 * k, seed=c * 10 + k))
    return root


@pytest.fixture(scope="module")
def va_run(tiny_clusters, tiny_4q, tmp_path_factory):
    """The default recipe on the tiny cluster set (audio alone), with the valence–arousal head from the tiny 4Q
    set: every part of `train --quadrant-data`, in seconds."""
    out = tmp_path_factory.mktemp("va-run")
    logged: list[str] = []
    result = train(
        tiny_clusters,
        preset="default",
        out=out,
        cache=out / "cache",
        jobs=1,
        epochs=1,
        progress=False,
        log=logged.append,
        quadrant_data=tiny_4q,
    )
    return result, logged


def test_training_with_quadrant_data_ships_the_head_and_scores_it(va_run):
    result, logged = va_run
    card = json.loads((result.model_dir / "card.json").read_text())
    # the default preset's head: musicnn's 50-tag prior and the 7 key/mode values, the tag layer in its weights
    assert card["models"]["quadrant"] == {
        "arch": "quadrant",
        "embed_dim": 57,
        "n_classes": 4,
        "inputs": ["tags", "key"],
    }
    assert card["preset"]["audio"]["features"]["tonal"] is True
    from safetensors.numpy import load_file

    weights = load_file(str(result.model_dir / "quadrant.safetensors"))
    assert weights["tag_weight"].shape == (50, 200) and np.abs(weights["tag_weight"]).sum() > 0
    assert card["quadrant"]["data"]["songs"] == 8 and card["quadrant"]["settings"]["C"] == 0.01
    # refit on every song ([final] refit_all): the card lists all 8, and all the cluster songs, for `eval`
    assert len(bundle_io.seen_songs(card["quadrant"])) == 8
    assert len(bundle_io.seen_songs(card)) == card["data"]["songs"]
    test = card["quadrant"]["metrics"]["test"]
    assert test["n"] == card["quadrant"]["data"]["split_sizes"]["test"] >= 1
    assert 0 <= test["valence_accuracy"] <= 1 and [p["percent"] for p in test["coverage"]] == [10, 25, 50, 75, 100]
    assert any(line.startswith("valence–arousal: 8 songs") for line in logged)
    model_card = (result.out / "model-card.md").read_text()
    assert "## Valence–arousal" in model_card and "## Accuracy against coverage" in model_card
    assert "musicnn tag prior" in model_card


def test_a_scan_with_the_head_fills_every_valence_arousal_column(va_run, tiny_4q, tmp_path):
    result, _ = va_run
    out = tmp_path / "moods.csv"
    files = sorted((tiny_4q / "Audio").iterdir())
    assert scan(files, out=out, model=result.model_dir, jobs=0, progress=False).ok == 8
    for row in read_results(out).iter_rows(named=True):
        probs = np.array([row[f"prob_quadrant_{k}"] for k in range(1, 5)])
        # each probability, valence and arousal rounded to PROB_DECIMALS on its own: up to half a step apiece
        step = 10**-PROB_DECIMALS
        assert probs.sum() == pytest.approx(1, abs=2 * step) and row["quadrant"] == probs.argmax() + 1
        assert row["quadrant_name"] == QUADRANT_WORDS[row["quadrant"] - 1]
        assert row["valence"] == pytest.approx(probs[0] + probs[3], abs=1.5 * step)
        assert row["arousal"] == pytest.approx(probs[0] + probs[1], abs=1.5 * step)
        clusters = np.array([row[f"prob_cluster_{k}"] for k in range(1, 6)])
        assert row["runner_up"] == np.argsort(-clusters)[1] + 1 != row["cluster"]
        assert row["runner_up_confidence"] == pytest.approx(clusters[row["runner_up"] - 1])


def test_the_scan_answers_as_the_head_did_on_trainings_features(va_run, tiny_4q, tmp_path):
    """Training pools the cached float16 embeddings; a scan pools its own: the same quadrant probabilities."""
    from mer_tag.train.datasets import load_dataset
    from mer_tag.train.extract import FeatureCache, extract_branch
    from mer_tag.train.quadrant import song_features, song_tonal
    from mer_tag.train.recipe import load_preset

    result, _ = va_run
    examples = load_dataset(tiny_4q).examples
    preset = load_preset("default")
    features, _ = extract_branch("audio", preset, examples, FeatureCache(None), 1, lambda x, **_: x)
    tonal = song_tonal(preset, examples, FeatureCache(None), 1, lambda x, **_: x, "fp32")
    head = bundle_io.load(result.model_dir).models["quadrant"]
    assert head.inputs == ("tags", "key")  # the default preset's: musicnn's tag prior and key/mode
    expected = head_probs(head, song_features(head.inputs, features, tonal))
    out = tmp_path / "moods.csv"
    scan([e.audio_path for e in examples], out=out, model=result.model_dir, jobs=0, progress=False, precision="fp32")
    rows = {row["path"]: row for row in read_results(out).iter_rows(named=True)}
    got = np.array([[rows[str(e.audio_path)][f"prob_quadrant_{k}"] for k in range(1, 5)] for e in examples])
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float16 cache against float32


def test_eval_on_quadrant_data_scores_the_head(va_run, tiny_4q, tmp_path):
    from mer_tag.evaluate import EvalError, evaluate

    result, _ = va_run
    with pytest.raises(EvalError, match="trained on all 8 of these songs"):  # the head learned every one
        evaluate(tiny_4q, model=result.model_dir, jobs=0)
    metrics = evaluate(tiny_4q, model=result.model_dir, jobs=0, out=tmp_path / "eval", include_training_songs=True)
    assert set(metrics) == {"quadrant"} and metrics["quadrant"]["n"] == 8
    assert np.asarray(metrics["quadrant"]["confusion"]).sum(1).tolist() == [2, 2, 2, 2]
    assert 0 <= metrics["quadrant"]["arousal_accuracy"] <= 1 and (tmp_path / "eval" / "confusion-quadrant.png").exists()


def test_eval_on_quadrant_data_without_a_head_is_a_one_line_error(tiny_model, tiny_4q, capsys):
    code = main(["eval", "--data", str(tiny_4q), "--model", str(tiny_model), "-j", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "no valence–arousal head" in err and len(err.strip().splitlines()) == 1


def test_crossval_of_the_head_reports_folds_and_coverage(tiny_4q, tmp_path, capsys):
    report = tmp_path / "cv.json"
    code = main(
        [
            "crossval",
            "--data",
            str(tiny_4q),
            "-b",
            "quadrant",
            "--folds",
            "2",
            "--json",
            str(report),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    entry = json.loads(report.read_text())["branches"]["quadrant"]
    assert 4 <= entry["songs"] < 8 and len(entry["fold_macro_f1"]) == 2  # the split's test artists left out
    assert 0 <= entry["valence_accuracy_mean"] <= 1 and len(entry["fold_accuracy_of_top_50pct"]) == 1
    assert "most confident right: 10 %" in capsys.readouterr().out


def test_quadrant_data_with_other_labels_is_a_usage_error(tiny_clusters, tmp_path, capsys):
    data = str(tiny_clusters)
    code = main(
        [
            "train",
            "--data",
            data,
            "--quadrant-data",
            data,
            "-o",
            str(tmp_path / "r"),
            "-q",
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "labelled with their quadrant" in err and len(err.strip().splitlines()) == 1


def test_quadrant_data_needs_a_frozen_front_end(tiny_4q, tmp_path, capsys):
    code = main(
        ["train", "--data", str(tiny_4q), "--quadrant-data", str(tiny_4q), "--preset", "wijaya2021-cnn"]
        + ["-o", str(tmp_path / "r"), "-q", "--epochs", "1", "--cache", str(tmp_path / "cache")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "frozen front-end" in err and len(err.strip().splitlines()) == 1


def test_a_head_that_reads_dissonance_a_preset_leaves_out_is_a_usage_error(tiny_4q, tmp_path, capsys):
    from mer_tag.train.recipe import PRESETS_DIR

    preset = (PRESETS_DIR / "default.toml").read_text()
    preset = preset.replace('inputs = ["tags", "key"]', 'inputs = ["tags", "key", "dissonance"]')
    preset = preset.replace("dissonance = true", "dissonance = false", 1)
    assert "dissonance = false" in preset
    (tmp_path / "rough.toml").write_text(preset)
    code = main(
        ["train", "--data", str(tiny_4q), "--quadrant-data", str(tiny_4q), "--preset", str(tmp_path / "rough.toml")]
        + ["-o", str(tmp_path / "r"), "-q", "--epochs", "1", "--cache", str(tmp_path / "cache")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "dissonance = false" in err and len(err.strip().splitlines()) == 1
