"""mer_tag.prepare is the one path from a file to model input: training's feature extraction gets exactly what
a scan's preparation gets, rejects what it rejects (a truncated file), and finds the lyrics it finds (embedded
in the tags when there is no sidecar)."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from media import tone, write_audio, write_lyrics, write_midi, write_riff_info, write_tags
from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig, lyrics_windows
from mer_tag.library import Track
from mer_tag.models.precision import resolve as resolve_precision
from mer_tag.prepare import prepare, read_lyrics
from mer_tag.train.extract import FeatureCache, extract_audio, extract_lyrics, extract_midi

AUDIO = AudioConfig(n_mels=32, chunk_seconds=5.0, chunk_hop_seconds=5.0)
MIDI = MidiConfig(seq_len=50)
SUNG = "Shadows fall across the water\nand I call your name again\n" * 3


def same(iterable, **_):
    return iterable


@pytest.fixture()
def songs(tmp_path) -> dict[str, Track]:
    """A clean song with a sidecar and MIDI, a FLAC cut in half, a song whose only lyrics are in its tags,
    and one whose sidecar is unreadable but whose tags have lyrics."""
    good = write_audio(tmp_path / "good.flac", tone(12, 330))
    whole = write_audio(tmp_path / "whole.flac", tone(8, 440)).read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole[: len(whole) // 2])
    sung = write_tags(write_audio(tmp_path / "sung.mp3", tone(6, 550)), lyrics=SUNG)
    garbled = write_tags(write_audio(tmp_path / "garbled.mp3", tone(6, 660)), lyrics="Only in the tags\n")
    (tmp_path / "garbled.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    sidecar, midi = write_lyrics(tmp_path / "good.txt", "We ride tonight\n"), write_midi(tmp_path / "good.mid")
    return {
        "good": Track(good, sidecar, midi),
        "cut": Track(cut),
        "sung": Track(sung),
        "garbled": Track(garbled, tmp_path / "garbled.txt"),
    }


def test_training_extracts_the_audio_a_scan_prepares_and_rejects_what_it_rejects(songs, tmp_path):
    tracks = list(songs.values())
    prepared = [prepare(track, AUDIO, MIDI) for track in tracks]
    assert prepared[1].error.startswith("truncated: decoded ")  # a scan rejects the cut file
    for cache in (FeatureCache(None), FeatureCache(tmp_path / "cache"), FeatureCache(tmp_path / "cache")):
        features, problems = extract_audio([t.path for t in tracks], AUDIO, cache, jobs=1, progress=same)
        for track, item, x in zip(tracks, prepared, features):
            if item.error:
                assert x is None and (str(track.path), item.error) in problems
            else:
                assert x.dtype == item.audio.dtype == np.float16 and np.array_equal(x, item.audio), track.path.name
        assert problems == [(str(songs["cut"].path), prepared[1].error)]  # the same one line, from the cache too
    assert len(prepared[0].audio) == 3  # 12 s in 5-s chunks


def test_training_reads_the_lyrics_and_midi_a_scan_reads(songs):
    from mer_tag.models.lyrics import load_tokenizer

    tracks = [songs["good"], songs["sung"], songs["garbled"]]
    config = LyricsConfig(max_tokens=16, max_windows=2)
    windows, problems = extract_lyrics(
        tracks, config, frozen=False, pooling="mean", cache=FeatureCache(None), progress=same
    )
    prepared = [prepare(track, AUDIO, MIDI) for track in tracks]
    assert [item.lyrics_source for item in prepared] == ["sidecar", "embedded", "embedded"]
    tokenizer = load_tokenizer()
    for item, got in zip(prepared, windows):
        want = lyrics_windows(item.lyrics, tokenizer, config)
        assert np.array_equal(got["input_ids"], want["input_ids"])
        assert np.array_equal(got["attention_mask"], want["attention_mask"])
    assert len(windows[1]["input_ids"]) == 2  # the embedded lyrics, over two windows
    assert problems == [(str(songs["garbled"].lyrics_path), prepared[2].notes[0])]
    assert "garbled.txt skipped" in prepared[2].notes[0]

    midi, midi_problems = extract_midi(tracks, MIDI, progress=same)
    assert midi_problems == [] and midi[1] is None and midi[2] is None
    for got, want in zip(midi[0], prepared[0].midi):
        assert np.array_equal(got, want)


def test_lyrics_handed_over_with_the_track_come_before_the_sidecar_and_lose_their_timestamps(songs):
    """beets hands over its `lyrics` field (synced LRC from its lyrics plugin, say); empty text changes nothing."""
    good = songs["good"]  # a sidecar beside it
    given = dataclasses.replace(good, lyrics="[ar:Someone]\n[00:01.00]Given  words\n[00:02.50]second line\n")
    assert read_lyrics(given) == ("Given words\nsecond line", "given", None)
    for nothing in ("", " \n", "[00:03.00]\n"):
        assert read_lyrics(dataclasses.replace(good, lyrics=nothing)) == ("We ride tonight", "sidecar", None)
    item = prepare(dataclasses.replace(songs["sung"], lyrics="Sung in the library"), AUDIO, MIDI)
    assert (item.lyrics, item.lyrics_source) == ("Sung in the library", "given")  # before the embedded ones


def test_a_song_embedding_is_the_same_in_training_and_in_a_scan(songs, tiny_model):
    """The lyrics path (windows → encoder → song embedding) is one: training's frozen-encoder feature through
    the model's head gives the probabilities a scan gives."""
    import torch

    from mer_tag import bundle as bundle_io
    from mer_tag.engines.predictor import Predictor

    bundle = bundle_io.load(tiny_model)
    head = bundle.models["lyrics"]
    predictor = Predictor(bundle, precision="fp32")
    item = prepare(songs["sung"], bundle.audio_config, bundle.midi_config)
    [embedding], _ = extract_lyrics(
        [songs["sung"]],
        bundle.lyrics_config,
        frozen=True,
        pooling=head.pooling,
        cache=FeatureCache(None),
        progress=same,
    )
    with torch.inference_mode():
        trained_on = torch.softmax(head(torch.from_numpy(embedding)[None]), -1)[0].numpy()
    scanned, words = predictor.lyrics_probs([item.lyrics])
    np.testing.assert_array_equal(scanned[0], trained_on)
    assert words is None  # the tiny model learned no valence for the words


STUDENT = AudioConfig(frontend="musicnn_student", sample_rate=16000, n_fft=1024, hop_length=512, n_mels=64)
NATIVE_BF16 = resolve_precision("auto") == "bf16"  # elsewhere bf16 is emulated: a scan never picks it there


@pytest.fixture(scope="module")
def encoders_clip(tmp_path_factory) -> Track:
    """A 40-s clip (two 30-s chunks through the student) with a lyrics file."""
    folder = tmp_path_factory.mktemp("clip")
    return Track(write_audio(folder / "clip.flac", tone(40, 330)), write_lyrics(folder / "clip.txt", SUNG))


def _fed_to_the_heads(clip: Track, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """What a scan's predictor feeds the heads for `clip`: the front-end's window embeddings of each chunk
    [chunks, windows, 200] and the lyrics' song embedding [hidden], both as fp32."""
    import torch

    from mer_tag import models
    from mer_tag.bundle import Bundle
    from mer_tag.engines.predictor import Predictor
    from mer_tag.labels import MIREX

    torch.manual_seed(0)
    heads = {
        "audio": models.build({"arch": "musicnn_crnn", "embed_dim": 200, "n_classes": 5, "gru_hidden": 8}),
        "lyrics": models.build({"arch": "lyrics", "n_classes": 5}),
    }
    bundle = Bundle("encoders", MIREX, STUDENT, LyricsConfig(), MIDI, models=heads)
    predictor = Predictor(bundle, precision=precision)
    audio, lyrics = [], []
    embed_chunks, embed_songs = predictor.embed, heads["lyrics"].embed_songs
    predictor.embed = lambda model, x: audio.append(embed_chunks(model, x).float()) or audio[-1]
    heads["lyrics"].embed_songs = lambda *windows: lyrics.append(embed_songs(*windows)) or lyrics[-1]
    item = prepare(clip, STUDENT, MIDI)
    predictor.audio_probs(item.audio)
    predictor.lyrics_probs([item.lyrics])
    return torch.cat(audio).numpy(), lyrics[0][0].numpy()


def _trained_on(clip: Track, precision: str, cache: FeatureCache) -> tuple[np.ndarray, np.ndarray]:
    """What `train --precision` makes of `clip` for the heads: the front-end's embeddings (float16, as
    cached) and the lyrics' song embedding."""
    [audio], _ = extract_audio([clip.path], STUDENT, cache, jobs=1, progress=same, precision=precision)
    [lyrics], _ = extract_lyrics([clip], LyricsConfig(), True, "mean", cache, same, precision=precision)
    return audio, lyrics


@pytest.mark.parametrize(
    "precision",
    ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not NATIVE_BF16, reason="no native bf16 on this CPU"))],
)
def test_training_embeds_a_clip_exactly_as_a_scan_does_in_the_same_precision(encoders_clip, precision, tmp_path):
    """`train --precision P` gives the heads what `scan --precision P` feeds them, bit for bit: the frozen
    student's window embeddings of each chunk (kept as float16 in training) and MiniLM's song embedding. The
    other precision's features already in the cache are not taken for them."""
    cache = FeatureCache(tmp_path / "cache")
    other = "bf16" if precision == "fp32" else "fp32"
    other_audio, other_lyrics = _trained_on(encoders_clip, other, cache)
    audio, lyrics = _trained_on(encoders_clip, precision, cache)
    scan_audio, scan_lyrics = _fed_to_the_heads(encoders_clip, precision)
    assert audio.dtype == np.float16 and audio.shape == scan_audio.shape == (2, 10, 200)
    np.testing.assert_array_equal(audio, scan_audio.astype(np.float16))
    np.testing.assert_array_equal(lyrics, scan_lyrics)
    assert not np.array_equal(audio, other_audio) and not np.array_equal(lyrics, other_lyrics)


def test_a_bad_file_never_raises(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(np.random.default_rng(0).bytes(20_000))
    item = prepare(Track(broken), AUDIO, MIDI)
    assert item.error and "\n" not in item.error and item.audio is None
    gone = prepare(Track(Path(tmp_path / "gone.mp3")), AUDIO, MIDI)
    assert gone.error and "\n" not in gone.error and gone.audio is None


def test_a_wav_row_gets_the_title_and_artist_of_its_riff_info_chunk(tmp_path):
    path = write_riff_info(
        write_audio(tmp_path / "07 Soul Man.wav", tone(6, 440)), title="Soul Man", artist="Sam & Dave"
    )
    item = prepare(Track(path), AUDIO, MIDI)
    assert item.error is None
    assert item.tags == {"title": "Soul Man", "artist": "Sam & Dave", "album": None}


def test_tonal_features_come_from_the_log_mels_own_spectrum(tmp_path):
    """With AudioConfig.tonal the chunks are the same log-mel, and the track gets its 22 tonal values, the
    ones mer_tag.tonal computes from the chunks' power spectra; the training cache keeps them."""
    from mer_tag import tonal
    from mer_tag.features import cut_chunks, power_spectrum
    from mer_tag.prepare import prepare_audio
    from mer_tag.sources.audio import load_audio
    from mer_tag.train.extract import FeatureCache, extract_audio, extract_tonal

    t = np.arange(int(12 * 22050)) / 22050
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)).astype(np.float32) * 0.2
    path = write_audio(tmp_path / "chord.wav", chord)
    with_tonal = AudioConfig(n_mels=32, chunk_seconds=5.0, chunk_hop_seconds=5.0, tonal=True)
    plain, read = prepare_audio(path, AUDIO), prepare_audio(path, with_tonal)
    assert plain.tonal is None and read.tonal is not None and read.tonal.shape == (len(tonal.FEATURE_NAMES),)
    np.testing.assert_array_equal(plain.features, read.features)
    signal = load_audio(path, sr=with_tonal.sample_rate)
    frames = [tonal.frame_features(power_spectrum(c, with_tonal), 22050, 1024) for c in cut_chunks(signal, with_tonal)]
    expected = tonal.tonal_summary(np.concatenate([d for d, _ in frames]), np.concatenate([c for _, c in frames]))
    np.testing.assert_allclose(read.tonal, expected, rtol=1e-5, atol=1e-6)
    assert read.tonal[tonal.FEATURE_NAMES.index("mode_strength")] > 0  # C major sounds major
    cache = FeatureCache(tmp_path / "cache")
    extract_audio([path], with_tonal, cache, 0, lambda x, **_: x)
    np.testing.assert_allclose(extract_tonal([path], with_tonal, cache, 0, lambda x, **_: x)[0], read.tonal)
