import numpy as np
import pytest

from mer_tag.features import (
    MIDI_PAD_PITCH,
    AudioConfig,
    LyricsConfig,
    MidiConfig,
    chunk_features,
    chunk_starts,
    cut_chunks,
    is_silent,
    logmel,
    midi_sequence,
    stream_chunks,
)

SMALL = AudioConfig(sample_rate=100, chunk_seconds=30, chunk_hop_seconds=30)  # 3000-sample chunks


def test_constants_derive_from_each_other():
    config = AudioConfig()
    assert config.chunk_samples == 661500
    assert config.chunk_frames == 1292


@pytest.mark.parametrize(
    "n, expected", [(50, [0]), (3000, [0]), (3050, [0]), (3100, [0, 3000]), (9000, [0, 3000, 6000])]
)
def test_chunk_starts_keep_a_tail_only_when_it_holds_a_second(n, expected):
    assert chunk_starts(n, SMALL) == expected


def test_overlapping_chunks_do_not_add_a_tail_already_covered():
    config = AudioConfig(sample_rate=100, chunk_seconds=30, chunk_hop_seconds=10)
    assert chunk_starts(6000, config) == [0, 1000, 2000, 3000]
    assert chunk_starts(6150, config) == [0, 1000, 2000, 3000, 4000]


@pytest.mark.parametrize("hop", [30.0, 10.0, 7.0])
@pytest.mark.parametrize("n", [50, 2999, 3000, 3101, 6150, 12345])
@pytest.mark.parametrize("block", [7, 1000, 5000])
def test_streamed_chunks_equal_cut_chunks(hop, n, block):
    config = AudioConfig(sample_rate=100, chunk_seconds=30, chunk_hop_seconds=hop)
    signal = np.random.default_rng(n).random(n).astype(np.float32)
    streamed = list(stream_chunks((signal[i : i + block] for i in range(0, n, block)), config))
    assert [s for s, _ in streamed] == chunk_starts(n, config)
    np.testing.assert_array_equal(np.stack([c for _, c in streamed]), cut_chunks(signal, config))


def test_last_partial_chunk_is_zero_padded():
    chunks = cut_chunks(np.ones(3500, dtype=np.float32), SMALL)
    assert chunks.shape == (2, 3000)
    assert chunks[1, :500].min() == 1 and chunks[1, 500:].max() == 0


def test_logmel_shape_and_that_louder_is_higher():
    config = AudioConfig()
    rng = np.random.default_rng(0)
    quiet = (0.01 * rng.standard_normal(config.chunk_samples)).astype(np.float32)
    mel = logmel(quiet, config)
    assert mel.shape == (128, 1292) and mel.dtype == np.float32
    assert logmel(quiet * 10, config).mean() == pytest.approx(mel.mean() + 20, abs=0.5)  # 10x amplitude = +20 dB


@pytest.mark.parametrize(
    "config",
    [
        AudioConfig(),  # the log-mel CRNN presets: 22.05 kHz, 128 bands
        AudioConfig(frontend="musicnn_student", sample_rate=16000, n_fft=1024, hop_length=512, n_mels=64),  # default
    ],
)
def test_logmel_is_librosas_melspectrogram_in_db(config):
    import librosa

    t = np.arange(config.chunk_samples) / config.sample_rate
    rng = np.random.default_rng(1)
    chunk = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    chunk[: config.sample_rate] = 0  # a silent second: the -100 dB floor
    want = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=chunk, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels
        ),
        ref=1.0,
        top_db=None,
    )
    np.testing.assert_allclose(logmel(chunk, config), np.maximum(want, -100.0), atol=1e-3)


def test_mel_filterbank_is_librosas():
    import librosa

    from mer_tag.features import mel_filterbank

    for sr, n_fft, n_mels in ((16000, 1024, 64), (22050, 1024, 128), (22050, 2048, 96)):
        np.testing.assert_allclose(
            mel_filterbank(sr, n_fft, n_mels), librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels), atol=1e-7
        )


def test_chunk_features_stack_per_chunk():
    config = AudioConfig(chunk_seconds=2.0)
    feats = chunk_features(np.zeros((3, config.chunk_samples), dtype=np.float32) + 0.1, config)
    assert feats.shape == (3, 128, config.chunk_frames)


def test_silence_is_detected():
    assert is_silent(np.zeros(100, dtype=np.float32))
    assert not is_silent(np.full(100, 0.1, dtype=np.float32))


def test_midi_sequence_pads_truncates_and_describes_events():
    notes = np.array([[60, 0.0, 0.5, 100], [64, 0.5, 0.25, 64], [67, 1.5, 1.0, 127]], dtype=np.float32)
    pitch, cont, length = midi_sequence(notes, MidiConfig(seq_len=5))
    assert length == 3
    assert pitch.tolist() == [60, 64, 67, MIDI_PAD_PITCH, MIDI_PAD_PITCH]
    assert cont[1, 0] == pytest.approx(np.log1p(0.25))  # duration
    assert cont[2, 1] == pytest.approx(1.0)  # velocity 127
    assert cont[2, 2] == pytest.approx(np.log1p(1.0))  # inter-onset interval
    assert midi_sequence(np.tile(notes, (4, 1)), MidiConfig(seq_len=5))[2] == 5


def test_long_lyrics_become_several_windows():
    from mer_tag.features import lyrics_windows
    from mer_tag.models.lyrics import load_tokenizer

    tokenizer = load_tokenizer()
    text = " ".join(["rain"] * 600)
    one = lyrics_windows(text, tokenizer, LyricsConfig(max_tokens=256, max_windows=1))
    many = lyrics_windows(text, tokenizer, LyricsConfig(max_tokens=256, max_windows=4))
    assert one["input_ids"].shape == (1, 256)
    assert many["input_ids"].shape == (3, 256)  # 600 tokens / 254 per window
    assert many["attention_mask"][2].sum() == 600 - 2 * 254 + 2
    assert (many["input_ids"][:, 0] == tokenizer.cls_token_id).all()


def test_a_decode_worker_gets_scipys_fft_without_importing_scipy_fft():
    """The log-mel's FFT in a fresh process (as in a decode worker) is scipy.fft.rfft's, bit for bit, and
    leaves scipy.fft (0.16 CPU-s of imports per worker) unimported."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from mer_tag.prepare import init_worker\n"
        "from mer_tag.features import rfft_rows\n"
        "init_worker()\n"
        "frames = (np.random.default_rng(7).standard_normal((938, 1024)) * np.hanning(1024)).astype(np.float32)\n"
        "fast, imported = rfft_rows()(frames), 'scipy.fft' in sys.modules\n"
        "import scipy.fft\n"
        "want = scipy.fft.rfft(frames, axis=1)\n"
        "print(imported, fast.dtype == want.dtype, np.array_equal(fast, want))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True", "True"]
