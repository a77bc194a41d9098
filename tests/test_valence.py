"""One valence per track: the head's inputs, the lyrics' tilt of the quadrants, and the lyrics valence
learned through the clusters (mer_tag.valence, models/valence.py, train/valence.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mer_tag import valence as V


def test_tag_probabilities_average_the_windows_sigmoids():
    weight = np.zeros((50, 200), np.float32)
    weight[0, 0] = 1.0
    windows = np.zeros((2, 3, 200), np.float32)
    windows[0, :, 0] = 10.0  # three windows sure of tag 0, three sure against
    windows[1, :, 0] = -10.0
    probs = V.tag_probabilities(windows, weight, np.zeros(50))
    assert probs.shape == (50,)
    assert abs(probs[0] - 0.5) < 1e-4 and abs(probs[1] - 0.5) < 1e-6  # not sigmoid of the mean logit alone


def test_head_features_follow_the_inputs_order():
    tags = np.full(50, 0.5)
    tags[3] = 0.9
    tonal_values = np.arange(22, dtype=np.float32)
    x = V.head_features(("tags", "key"), tag_probs=tags, tonal_values=tonal_values)
    assert x.shape == (V.input_size(("tags", "key")),) == (57,)
    assert abs(x[3] - np.log(9.0)) < 1e-5 and x[0] == 0.0
    assert x[50:].tolist() == list(range(3, 10))  # the key/mode block of the tonal features
    with pytest.raises(ValueError, match="'embedding'"):
        V.head_features(("embedding",), tag_probs=tags)
    with pytest.raises(ValueError, match="unknown"):
        V.input_size(("tags", "loudness"))


def test_tilt_moves_valence_log_odds_by_the_shift_and_keeps_proportions_within_a_half():
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    tilted = V.tilt_quadrants(probs, 1.5)
    valence = probs @ V.POSITIVE_QUADRANTS
    assert abs(V.log_odds(tilted @ V.POSITIVE_QUADRANTS) - V.log_odds(valence) - 1.5) < 1e-9
    assert abs(tilted.sum() - 1.0) < 1e-12
    assert abs(tilted[0] / tilted[3] - 4.0) < 1e-9 and abs(tilted[1] / tilted[2] - 1.5) < 1e-9


def test_lyrics_shift_is_the_fused_minus_the_audio_log_odds():
    # fusion that ignores the audio and trusts the words: the fused log-odds are the lyrics'
    shift = V.lyrics_shift(0.8, 0.1, np.array([0.0, 1.0, 0.0]))
    assert abs(V.log_odds(0.8) + shift - V.log_odds(0.1)) < 1e-9
    assert V.lyrics_shift(0.7, 0.2, np.array([1.0, 0.0, 0.0])) == pytest.approx(0.0)  # audio alone


def test_disagreement_counts_only_clusters_with_a_side():
    valence = np.array([0.9, 0.2, 0.8, 0.6, 0.3])
    clusters = np.array([2, 3, 3, 1, 5])  # Cheerful ok, Wistful ok, Wistful wrong, Passionate none, Aggressive ok
    share, n = V.disagreement_share(valence, clusters)
    assert n == 4 and share == 0.25


def songs_with_words(n: int = 120, seed: int = 0):
    """Sided songs whose lyrics embedding carries the side in one direction, audio valence noisy."""
    from mer_tag.train.valence import ValenceSongs

    rng = np.random.default_rng(seed)
    clusters = rng.choice([1, 2, 3, 4], n)  # 0-based: Cheerful, Wistful, Humorous, Aggressive
    side = np.isin(clusters, [1, 3]).astype(float)
    lyrics = [rng.normal(0, 1, 8) + 1.5 * (2 * s - 1) * np.eye(8)[0] for s in side]
    lyrics[0] = None  # a song without words
    audio = np.clip(0.5 + 0.15 * (2 * side - 1) + rng.normal(0, 0.2, n), 0.01, 0.99)
    groups = np.array([f"artist{i % 30}" for i in range(n)])
    return ValenceSongs.from_clusters(audio, lyrics, clusters, groups)


def test_lyrics_valence_is_learned_and_fused():
    from mer_tag.train.valence import fit_valence, fused_valence, valence_scores

    songs = songs_with_words()
    head = fit_valence(songs, {})
    scores = valence_scores(head, songs)
    assert scores["lyrics_auc"] > 0.9 and scores["fused_auc"] > scores["audio_auc"]
    assert head.fusion[1] > 0  # the fusion trusts the words' direction
    lyrics, fused = fused_valence(head, songs)
    assert np.isnan(lyrics[0]) and fused[0] == songs.audio_valence[0]  # no words: the audio's valence


def test_lyrics_valence_round_trips_through_its_state():
    from mer_tag import models
    from mer_tag.train.valence import fit_valence

    head = fit_valence(songs_with_words(), {})
    clone = models.build({"arch": "lyrics_valence", "embed_dim": 8})
    clone.load_state_dict(head.state_dict())
    import torch

    x = torch.randn(3, 8)
    assert torch.allclose(clone(x), head(x)) and torch.equal(clone.fusion, head.fusion)


def test_too_few_sung_songs_is_a_clear_error():
    from mer_tag.train.valence import fit_valence

    songs = songs_with_words(n=12)
    songs.lyrics = [None] * len(songs.lyrics)
    with pytest.raises(ValueError, match="too few songs with lyrics"):
        fit_valence(songs, {})


def test_a_scan_row_hears_the_words_through_the_fusion():
    """The predictor's valence columns: the head on the sound, then the words' tilt; valence is the fused
    value, and quadrant, valence and arousal still come from one distribution."""
    import types

    import torch

    from mer_tag import models
    from mer_tag.engines.predictor import Predictor
    from mer_tag.prepare import Prepared

    torch.manual_seed(0)
    head = models.build({"arch": "quadrant", "embed_dim": 57, "n_classes": 4, "inputs": ["tags", "key"]})
    with torch.no_grad():
        head.linear.weight.normal_()
    words = models.build({"arch": "lyrics_valence", "embed_dim": 8})
    words.fusion.copy_(torch.tensor([0.5, 1.0, -0.2]))
    predictor = object.__new__(Predictor)
    predictor.torch = torch
    predictor.bundle = types.SimpleNamespace(models={"quadrant": head, "lyrics_valence": words})
    item = Prepared(track=None, tonal=np.linspace(0, 1, 22, dtype=np.float32))  # type: ignore[arg-type]
    sound = {"embedding": np.zeros(200), "tags": np.linspace(0.05, 0.95, 50)}
    alone = predictor.valence_columns(item, sound, None)
    heard = predictor.valence_columns(item, sound, 0.1)
    expected = 1 / (1 + np.exp(-(0.5 * V.log_odds(alone["valence"]) + V.log_odds(0.1) - 0.2)))
    assert heard["valence"] == pytest.approx(expected, abs=1e-4)
    probs = np.array([heard[f"prob_quadrant_{k}"] for k in range(1, 5)])
    assert heard["valence"] == pytest.approx(probs[0] + probs[3], abs=1e-4)
    assert heard["arousal"] == pytest.approx(probs[0] + probs[1], abs=1e-4)


def test_agreement_counts_fused_valence_against_predicted_clusters():
    from mer_tag.train.valence import agreement, fit_valence

    songs = songs_with_words()
    head = fit_valence(songs, {})
    n = len(songs.side)
    test = list(range(n))
    audio = np.full(n, 0.55)  # the sound leans positive for every song
    probs = np.zeros((n, 5))
    probs[np.arange(n), np.where(songs.side > 0, 1, 2)] = 1.0  # clusters: Cheerful or Wistful by the truth
    lyrics = list(songs.lyrics)
    result = agreement(head, lyrics, test, probs, audio)
    assert result["n_sided_clusters"] == n
    assert result["disagree_audio"] == pytest.approx(np.mean(songs.side == 0))  # every Wistful one disagrees
    assert result["disagree_fused"] < result["disagree_audio"]  # the words pull the sad songs back


def test_the_engines_compute_the_roughness_only_for_a_head_that_reads_it(tmp_path):
    """The shipped head reads the tag prior and key/mode: a scan's workers skip dissonance's peak pairs
    (#27). A model whose head reads it gets it, as training computed it."""
    import json
    import shutil

    from mer_tag.bundle import resolve
    from mer_tag.engines import EngineSettings

    _, shipped, _ = EngineSettings("default").read()
    card = json.loads((resolve("default") / "card.json").read_text())
    assert shipped.tonal and "dissonance" not in card["models"]["quadrant"]["inputs"]
    assert not shipped.dissonance
    folder = tmp_path / "reads-roughness"
    folder.mkdir()
    shutil.copy(resolve("default") / "card.json", folder / "card.json")
    card["models"]["quadrant"]["inputs"] = ["tags", "key", "dissonance"]
    (folder / "card.json").write_text(json.dumps(card))
    _, reading, _ = EngineSettings(folder).read()
    assert reading.tonal and reading.dissonance
