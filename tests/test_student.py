"""The musicnn student: shapes, windows, save/load, cost, and that the shipped one imitates musicnn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_tag.features import AudioConfig, chunk_features, cut_chunks
from mer_tag.models.student import WEIGHTS_DIR, MusicnnStudent, embed_chunks
from tiny_model import edit_card

STUDENT_FEATURES = AudioConfig(frontend="musicnn_student", sample_rate=16000, n_fft=1024, hop_length=512, n_mels=64)


def small_student(seed: int = 0) -> MusicnnStudent:
    torch.manual_seed(seed)
    return MusicnnStudent(n_mels=64, channels=(8, 8, 12, 16)).eval()


def test_a_30_second_chunk_gives_ten_3_second_windows():
    mel = torch.randn(2, 64, STUDENT_FEATURES.chunk_frames)
    out = embed_chunks(small_student(), mel)
    assert out.shape == (2, 10, 200)
    assert torch.isfinite(out).all()


def test_windows_are_back_to_back_and_inside_the_output():
    model = small_student()
    n_steps = -(-STUDENT_FEATURES.chunk_frames // model.stride)
    bounds = model.window_bounds([3.0 * i for i in range(10)], n_steps)
    assert bounds[0][0] == 0 and bounds[-1][1] <= n_steps
    assert all(b > a for a, b in bounds)
    # no gap; neighbours share at most the one output step (256 ms) that straddles their boundary
    assert all(0 <= bounds[i][1] - bounds[i + 1][0] <= 1 for i in range(9))


def test_a_chunk_shorter_than_3_seconds_still_gives_one_window():
    out = embed_chunks(small_student(), torch.randn(1, 64, 40))
    assert out.shape == (1, 1, 200)


def test_each_window_hears_its_own_time():
    """Changing the last 3 s of a chunk changes the last window's embedding far more than the first's."""
    model = small_student()
    mel = torch.randn(1, 64, STUDENT_FEATURES.chunk_frames)
    louder = mel.clone()
    louder[:, :, -90:] += 5.0
    delta = (embed_chunks(model, louder) - embed_chunks(model, mel)).norm(dim=2)[0]
    assert delta[-1] > 10 * delta[0]


def test_save_and_load_give_the_same_model(tmp_path):
    model = small_student(seed=3)
    model.mel_mean.fill_(-40.0)
    model.save(tmp_path, {"note": "test"})
    again = MusicnnStudent.load(tmp_path)
    mel = torch.randn(1, 64, 300)
    assert again.dims == model.dims
    assert torch.allclose(embed_chunks(again, mel), embed_chunks(model, mel))


def test_load_refuses_weights_that_do_not_fit(tmp_path):
    from safetensors.torch import save_file

    small_student().save(tmp_path, {})
    save_file({"out.weight": torch.zeros(200, 32)}, str(tmp_path / "student.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        MusicnnStudent.load(tmp_path)


def _counted_macs_per_second(model, x: torch.Tensor, seconds: float) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 2 / seconds  # a multiply-accumulate is two flops


def test_the_shipped_student_costs_a_small_fraction_of_musicnn():
    from mer_tag.features import MUSICNN_PATCH_FRAMES, MUSICNN_PATCH_SECONDS
    from mer_tag.models.musicnn import Musicnn

    student = MusicnnStudent.load()
    counted = _counted_macs_per_second(student, torch.zeros(1, 64, STUDENT_FEATURES.chunk_frames), 30.0)
    assert counted == pytest.approx(student.macs_per_second(), rel=0.05)  # the card's number is the real cost
    teacher = _counted_macs_per_second(Musicnn(), torch.zeros(1, MUSICNN_PATCH_FRAMES, 96), MUSICNN_PATCH_SECONDS)
    assert counted * 50 < teacher


def test_the_shipped_student_carries_its_feature_settings():
    import json

    meta = json.loads((WEIGHTS_DIR / "student.json").read_text())
    assert {k: meta["features"][k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels")} == {
        "sample_rate": 16000,
        "n_fft": 1024,
        "hop_length": 512,
        "n_mels": 64,
    }
    assert MusicnnStudent.load().dims["n_mels"] == 64


@pytest.mark.dataset
def test_the_shipped_student_hears_what_musicnn_hears(mirex_dataset):
    """On real songs the student's windows sit close to musicnn's patches, and musicnn's own tag layer
    reads the same top tags from both."""
    from mer_tag.features import musicnn_logmel, musicnn_patches
    from mer_tag.models.musicnn import Musicnn
    from mer_tag.sources.audio import load_audio

    teacher, student = Musicnn.load(), MusicnnStudent.load()
    cosines, same_top = [], []
    for name in ("002.mp3", "378.mp3", "815.mp3"):
        chunk = cut_chunks(load_audio(mirex_dataset / "Audio" / name, sr=16000), STUDENT_FEATURES)[:1]
        with torch.inference_mode():
            want = teacher(torch.from_numpy(musicnn_patches(musicnn_logmel(chunk[0]))))
            got = embed_chunks(student, torch.from_numpy(chunk_features(chunk, STUDENT_FEATURES)))[0]
            got_tags = torch.sigmoid(teacher.output(got)).mean(0)
        cosines.append(torch.nn.functional.cosine_similarity(got, want["penultimate"], dim=1).mean().item())
        top = set(want["tags"].mean(0).topk(3).indices.tolist())
        same_top.append(len(top & set(got_tags.topk(3).indices.tolist())))
    assert np.mean(cosines) > 0.8, cosines
    assert sum(same_top) >= 6, same_top  # of 9 top-3 tags over three songs


def test_a_decode_worker_for_the_student_imports_neither_torch_nor_librosa(tmp_path):
    """Workers decode and make the log-mel only: no torch, no librosa (and its scipy.signal and numba)."""
    import subprocess
    import sys

    from media import tone, write_audio

    song = write_audio(tmp_path / "song.wav", tone(4.0))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mer_tag.features import AudioConfig, MidiConfig\n"
        "from mer_tag.library import Track\n"
        "from mer_tag.prepare import init_worker, prepare\n"
        "init_worker()\n"
        f"item = prepare(Track(Path({str(song)!r}), None, None), AudioConfig(frontend='musicnn_student', "
        "sample_rate=16000, n_fft=1024, hop_length=512, n_mels=64), MidiConfig())\n"
        "print(item.error, item.audio.shape, sorted(m for m in ('torch', 'librosa', 'numba') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "None (1, 64, 938) []"


def _student_bundle(folder):
    from mer_tag import bundle as bundle_io
    from mer_tag import models
    from mer_tag.features import LyricsConfig, MidiConfig
    from mer_tag.labels import MIREX

    torch.manual_seed(0)
    parts = {
        "audio": models.build({"arch": "musicnn_crnn", "embed_dim": 200, "n_classes": 5, "gru_hidden": 8}),
        "fusion": models.build({"arch": "fusion", "n_classes": 5, "branches": ["audio", "lyrics", "midi"]}),
    }
    bundle = bundle_io.Bundle(
        name="student-tiny",
        labels=MIREX,
        audio_config=STUDENT_FEATURES,
        lyrics_config=LyricsConfig(),
        midi_config=MidiConfig(),
        models=parts,
        card={},
    )
    return bundle_io.save(bundle, folder)


def test_a_model_on_the_student_scans_a_song_through_the_shipped_student(tmp_path):
    from media import tone, write_audio
    from mer_tag.scan import scan
    from mer_tag.sinks import read_results

    song = write_audio(tmp_path / "lib" / "song.flac", tone(40.0))
    summary = scan(
        [song.parent],
        out=tmp_path / "moods.csv",
        model=_student_bundle(tmp_path / "model"),
        jobs=0,
        progress=False,
        timeline=True,
    )
    row = read_results(tmp_path / "moods.csv").row(0, named=True)
    assert summary.ok == 1 and row["status"] == "ok" and 1 <= row["cluster"] <= 5
    assert '"start_s": 30.0' in row["timeline"]  # two 30-s chunks, each heard through the student's 3-s windows


def test_a_model_trained_on_another_student_is_refused(tmp_path):
    import json

    from mer_tag import bundle as bundle_io

    folder = _student_bundle(tmp_path / "model")
    card = json.loads((folder / "card.json").read_text())
    from mer_tag.models import frontend_sha256

    assert card["frontend_weights"] == frontend_sha256("musicnn_student")
    edit_card(folder, lambda card: card.update(frontend_weights="0" * 64))
    with pytest.raises(bundle_io.BundleError, match="retrain"):
        bundle_io.load(folder)


def test_a_model_that_would_feed_the_student_another_log_mel_is_refused(tmp_path):
    from mer_tag import bundle as bundle_io
    from mer_tag.features import AudioConfig
    from mer_tag.train.extract import extract_audio

    folder = _student_bundle(tmp_path / "model")
    edit_card(folder, lambda card: card["features"]["audio"].update(n_mels=96))
    with pytest.raises(bundle_io.BundleError, match="n_mels 96 \\(distilled on 64\\)"):
        bundle_io.load(folder)
    preset = AudioConfig(frontend="musicnn_student", sample_rate=22050, n_fft=1024, hop_length=512, n_mels=64)
    with pytest.raises(ValueError, match="sample_rate 22050"):  # training refuses it before any feature is made
        extract_audio([], preset, cache=None, jobs=1, progress=None)


def test_distillation_views_move_the_teachers_windows_with_the_audio():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from distill_musicnn import augment, teacher_starts

    starts = teacher_starts(28)
    assert starts[1] == pytest.approx(62 * 256 / 16000) and starts[-1] + 3.0 <= 30.0  # every patch inside the clip
    x = torch.zeros(3, 64, STUDENT_FEATURES.chunk_frames)
    for seed in range(20):
        view, keep, moved = augment(x, starts, np.random.default_rng(seed), 512 / 16000)
        shift = x.shape[2] - view.shape[2]
        assert 0 <= shift < 32  # at most ~1 s dropped at the start
        assert keep == [i for i, s in enumerate(starts) if s >= shift * 512 / 16000]
        assert moved == pytest.approx([starts[i] - shift * 512 / 16000 for i in keep])
        assert float(view.abs().max()) <= 6.0  # gain only: a silent clip stays within ±6 dB of itself
