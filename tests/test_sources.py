"""mer_tag.sources: decoding every container, damaged files, lyrics encodings and LRC, tags, MIDI."""

from __future__ import annotations

import re

import numpy as np
import pytest

from media import (
    CONTAINERS,
    LYRICS,
    tone,
    write_aiff_text,
    write_audio,
    write_lyrics,
    write_midi,
    write_pyav_audio,
    write_riff_info,
    write_tags,
)
from mer_tag.sources.audio import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    AudioError,
    TruncatedAudioWarning,
    load_audio,
    stream_audio,
)
from mer_tag.sources.lyrics import LyricsError, clean_lyrics, embedded_lyrics, read_lyrics_file
from mer_tag.sources.metadata import read_tags
from mer_tag.sources.midi import MidiError, read_midi_notes

SECONDS = 3.0
FREQ = 440.0  # Hz
ALL_CONTAINERS = (*CONTAINERS, "wv", "wma")


def _write(path, y, sr=SAMPLE_RATE):
    return write_pyav_audio(path, y, sr) if path.suffix in (".wv", ".wma") else write_audio(path, y, sr)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """One 3-s 440 Hz tone per container, written at 44.1 kHz so decoding must resample."""
    folder = tmp_path_factory.mktemp("audio")
    for container in ALL_CONTAINERS:
        _write(folder / f"tone.{container}", tone(SECONDS, FREQ, sr=44100), sr=44100)
    return folder


def _peak_hz(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[spectrum.argmax()])


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


# --- audio -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ALL_CONTAINERS)
def test_every_container_decodes_to_mono_float32_at_22050(audio_dir, container):
    y = load_audio(audio_dir / f"tone.{container}")
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size / SAMPLE_RATE == pytest.approx(SECONDS, abs=0.1)  # AAC/WMA add or trim a frame
    assert _peak_hz(y) == pytest.approx(FREQ, abs=2.0)  # a wrong rate would move the tone
    assert 0.2 < np.abs(y).max() < 0.5  # the 0.3 sine, not silence or garbage


@pytest.mark.parametrize("container", ["flac", "alac.m4a", "mp3"])
def test_decoding_on_one_thread_gives_the_frame_threads_samples(tmp_path, container):
    """We decode without FFmpeg's frame threads (sources/audio.py); the decoded samples must be the ones the
    threaded decoder gives. 20 s at 44.1 kHz: a FLAC long enough for frame threads to decode several frames
    at once."""
    import av

    path = _write(tmp_path / f"long.{container}", tone(20, 330, sr=44100), sr=44100)

    def decoded(threaded: bool) -> np.ndarray:
        with av.open(str(path)) as container_:
            stream = container_.streams.audio[0]
            if threaded:
                stream.thread_type = "AUTO"
            else:
                stream.codec_context.thread_count = 1
            return np.concatenate([frame.to_ndarray().reshape(-1) for frame in container_.decode(stream)])

    single = decoded(threaded=False)
    assert single.size > 19 * 44100
    np.testing.assert_array_equal(single, decoded(threaded=True))
    streamed = np.concatenate(list(stream_audio(path, sr=44100)))  # ours, one thread: the whole file
    assert streamed.size == pytest.approx(single.size, abs=2048)


def test_extensions_cover_every_fixture_container():
    assert {"." + c.rsplit(".", 1)[-1] for c in ALL_CONTAINERS} <= AUDIO_EXTENSIONS


def test_stereo_is_downmixed_like_ffmpeg(tmp_path):
    import soundfile as sf

    left = tone(1.0, FREQ, sr=44100, noise=0.0)
    sf.write(tmp_path / "stereo.wav", np.stack([left, -left], axis=1), 44100)  # opposite phase cancels
    sf.write(tmp_path / "same.wav", np.stack([left, left], axis=1), 44100)
    assert np.abs(load_audio(tmp_path / "stereo.wav")).max() < 1e-3
    assert np.abs(load_audio(tmp_path / "same.wav")).max() == pytest.approx(0.3 * np.sqrt(2), rel=0.02)


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_mixed_first_then_resampled_give_ffmpegs_one_step_samples(tmp_path, channels):
    """Mixing down at the file's rate, then resampling one channel (cheaper: docs/performance.md), gives what
    FFmpeg's resampler gives asked for both at once, to float rounding, to the last sample."""
    import av
    import soundfile as sf

    rng = np.random.default_rng(7)
    pcm = np.stack([tone(3.1, FREQ * (1 + c), sr=44100) for c in range(channels)], axis=1)
    pcm += 0.05 * rng.standard_normal(pcm.shape).astype(np.float32)  # every channel its own
    sf.write(tmp_path / "many.wav", pcm, 44100, subtype="FLOAT")
    ours = np.concatenate(list(stream_audio(tmp_path / "many.wav", sr=SAMPLE_RATE)))
    with av.open(str(tmp_path / "many.wav")) as container:
        resampler, reference = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE), []
        for frame in [*container.decode(audio=0), None]:
            reference += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    reference_samples = np.concatenate(reference)
    assert ours.size == reference_samples.size
    np.testing.assert_allclose(ours, reference_samples, rtol=0, atol=1e-6)
    assert np.abs(reference_samples).max() > 0.1  # not silence compared with silence


def test_format_changes_mid_stream_are_followed(tmp_path):
    import soundfile as sf

    parts = [
        write_audio(tmp_path / "a.mp3", tone(2.0, sr=44100), sr=44100),  # 44.1 kHz mono
        write_audio(tmp_path / "b.mp3", tone(2.0, sr=22050), sr=22050),
    ]  # 22.05 kHz mono
    sf.write(tmp_path / "c.mp3", np.stack([tone(2.0, sr=44100)] * 2, axis=1), 44100)  # stereo
    joined = tmp_path / "joined.mp3"  # what a naive concatenation of downloads looks like
    joined.write_bytes(b"".join(p.read_bytes() for p in [*parts, tmp_path / "c.mp3"]))
    y = load_audio(joined)
    assert y.size / SAMPLE_RATE == pytest.approx(6.0, abs=0.4)
    assert _peak_hz(y) == pytest.approx(FREQ, abs=2.0)


@pytest.mark.parametrize("container", ["mp3", "flac", "m4a"])
def test_blocks_are_fixed_size_and_concatenate_to_load_audio(audio_dir, container):
    path = audio_dir / f"tone.{container}"
    stream = stream_audio(path, block_samples=10_000)
    blocks = list(stream)
    assert all(b.size == 10_000 for b in blocks[:-1]) and 0 < blocks[-1].size <= 10_000
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))
    assert stream.problem is None
    assert stream.seconds == pytest.approx(sum(b.size for b in blocks) / SAMPLE_RATE)


def test_other_rates_and_max_seconds(audio_dir):
    y = load_audio(audio_dir / "tone.flac", sr=16000, max_seconds=1.0)
    assert y.size == 16000
    assert _peak_hz(y, 16000) == pytest.approx(FREQ, abs=2.0)


def test_stopping_early_closes_the_file(audio_dir):
    with stream_audio(audio_dir / "tone.mp3", block_samples=1000) as stream:
        first = next(stream)
    assert first.size == 1000
    with pytest.raises(StopIteration):
        next(stream)


def test_tagged_files_still_decode(tmp_path):
    for container in ("mp3", "wav", "aiff", "flac"):
        path = write_tags(write_audio(tmp_path / f"t.{container}", tone(1.0)), lyrics=LYRICS, title="T")
        assert load_audio(path).size == pytest.approx(SAMPLE_RATE, abs=1200)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.mp3", b"", "empty file (0 bytes)"),
        ("random.mp3", np.random.default_rng(0).bytes(20_000), "not an audio file"),
        ("text.mp3", b"this is not audio, only a text file renamed\n" * 40, "not an audio file"),
    ],
)
def test_bad_files_raise_one_line_audio_error(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError) as exc:
        list(stream_audio(path))
    assert expected in _one_line(exc)


def test_missing_file_and_video_only_file(tmp_path):
    with pytest.raises(AudioError) as exc:
        stream_audio(tmp_path / "nope.flac")
    assert "cannot read file" in _one_line(exc)
    video = _write_video_only(tmp_path / "video.mkv")
    with pytest.raises(AudioError) as exc:
        stream_audio(video)
    assert _one_line(exc) == "not an audio file (no audio stream)"


def _write_video_only(path):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


@pytest.mark.parametrize("container", ["mp3", "flac"])
def test_file_cut_in_half_yields_the_first_half_and_says_truncated(tmp_path, container):
    whole = write_audio(tmp_path / f"whole.{container}", tone(8.0))
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(data[: len(data) // 2])
    stream = stream_audio(cut)
    y = np.concatenate(list(stream))
    assert 2.0 < y.size / SAMPLE_RATE < 6.0
    assert stream.problem.startswith("truncated: decoded ") and "of 8.0 s" in stream.problem
    assert "\n" not in stream.problem
    with pytest.warns(TruncatedAudioWarning, match="truncated"):
        assert load_audio(cut).size == y.size


def test_garbage_in_the_middle_is_skipped_and_reported(tmp_path):
    data = bytearray(write_audio(tmp_path / "whole.mp3", tone(8.0)).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(0).bytes(3000)
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    stream = stream_audio(damaged)
    assert sum(b.size for b in stream) / SAMPLE_RATE > 7.0  # decoding went on after the bad stretch
    assert stream.problem.startswith("corrupt: skipped ") and "\n" not in stream.problem


def test_only_a_header_is_corrupt(tmp_path):
    whole = write_audio(tmp_path / "whole.flac", tone(2.0))
    cut = tmp_path / "header.flac"
    cut.write_bytes(whole.read_bytes()[:200])  # STREAMINFO, no audio frame
    with pytest.raises(AudioError) as exc:
        list(stream_audio(cut))
    assert _one_line(exc).startswith("truncated or corrupt: ")


# --- lyrics files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "cp1252"])
def test_lyrics_encodings(tmp_path, encoding):
    text = "Un café déjà vu\nnaïve\n"
    if encoding == "cp1252":  # characters Latin-1 lacks
        text = "Un café « déjà vu »\nnaïve – “quoted”\n"
    if encoding == "utf-16-le":  # with an explicit little-endian BOM
        path = tmp_path / "l.txt"
        path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    else:
        path = write_lyrics(tmp_path / "l.txt", text, encoding)
    assert read_lyrics_file(path) == text


def test_utf16_big_endian_bom(tmp_path):
    path = tmp_path / "be.txt"
    path.write_bytes(b"\xfe\xff" + "café\n".encode("utf-16-be"))
    assert read_lyrics_file(path) == "café\n"


def test_lrc_timestamps_and_headers_are_stripped(tmp_path):
    lrc = (
        "[ar:Some Artist]\n[ti:Some Title]\n[al:An Album]\n[by:someone]\n[offset:+250]\n[length:03:20]\n"
        "[00:12.00]I walk alone\n"
        "[00:15.50][01:15.50]<00:15.50>beneath <00:16.10>the rain\n"
        "[00:20.123]Ratio 3:2 stays [live]\n"
    )
    path = write_lyrics(tmp_path / "song.lrc", lrc)
    assert read_lyrics_file(path) == "I walk alone\nbeneath the rain\nRatio 3:2 stays [live]"
    assert read_lyrics_file(write_lyrics(tmp_path / "timed.txt", lrc)).startswith("I walk alone")


def test_plain_lyrics_keep_their_brackets(tmp_path):
    text = "[Chorus]\nla la [x2]\n"
    assert read_lyrics_file(write_lyrics(tmp_path / "c.txt", text)) == text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"  \n\r\n\t ", "empty file"),
        (bytes(range(256)) * 4, "binary data"),
        (np.random.default_rng(1).bytes(4000).replace(b"\x00", b"a"), "binary data"),
        (b"[ar:x]\n[ti:y]\n[00:01.00]\n", "empty file"),
    ],
)
def test_bad_lyrics_files_raise_one_line_error(tmp_path, content, expected):
    path = tmp_path / ("bad.lrc" if content.startswith(b"[ar") else "bad.txt")
    path.write_bytes(content)
    with pytest.raises(LyricsError) as exc:
        read_lyrics_file(path)
    assert expected in _one_line(exc)


def test_missing_and_huge_lyrics_files(tmp_path):
    with pytest.raises(LyricsError) as exc:
        read_lyrics_file(tmp_path / "nope.txt")
    assert "cannot read file" in _one_line(exc)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"la " * 400_000)
    with pytest.raises(LyricsError) as exc:
        read_lyrics_file(huge)
    assert "too large" in _one_line(exc)


def test_clean_lyrics_normalises_whitespace_newlines_and_unicode():
    raw = "\n\n  Hello,\t  world!  \r\nSecond  line\r\rThird\u00a0line\n\n\n\nCafe\u0301 — end.  \n\n"
    cleaned = clean_lyrics(raw)
    assert cleaned == "Hello, world!\nSecond line\n\nThird line\n\nCafé — end."
    assert clean_lyrics(cleaned) == cleaned
    assert clean_lyrics("   \n\t\n") == ""


# --- embedded lyrics and tags ------------------------------------------------------------------------


@pytest.mark.parametrize("container", [*ALL_CONTAINERS])
def test_embedded_lyrics_and_tags_round_trip(tmp_path, container):
    path = tmp_path / f"t.{container}"
    _write(path, tone(0.5))
    assert embedded_lyrics(path) is None
    assert read_tags(path) == {"title": None, "artist": None, "album": None}
    write_tags(path, lyrics="Ünïcode lyrics\nline two", title="Tïtle", artist="Ärtist", album="Albüm")
    assert embedded_lyrics(path) == "Ünïcode lyrics\nline two"
    assert read_tags(path) == {"title": "Tïtle", "artist": "Ärtist", "album": "Albüm"}


def test_embedded_synced_lyrics_lose_their_timestamps(tmp_path):
    path = write_tags(write_audio(tmp_path / "t.flac", tone(0.5)), lyrics="[00:01.00]one\n[00:02.00]two")
    assert embedded_lyrics(path) == "one\ntwo"


def test_id3_lyrics_in_any_language_or_txxx(tmp_path):
    from mutagen.id3 import ID3, TXXX, USLT

    path = write_audio(tmp_path / "t.mp3", tone(0.5))
    tags = ID3()
    tags.add(TXXX(encoding=3, desc="LYRICS", text=["from txxx"]))
    tags.save(path)
    assert embedded_lyrics(path) == "from txxx"
    tags.add(USLT(encoding=3, lang="deu", desc="Übersetzung", text="auf Deutsch"))
    tags.save(path)
    assert embedded_lyrics(path) == "auf Deutsch"  # USLT wins, whatever its language and description


def test_several_tag_values_are_joined(tmp_path):
    import mutagen

    path = write_audio(tmp_path / "t.flac", tone(0.5))
    audio = mutagen.File(path)
    audio["ARTIST"] = ["First", "Second"]
    audio.save()
    assert read_tags(path)["artist"] == "First; Second"


def test_wav_title_artist_album_from_its_riff_info_chunk(tmp_path):
    path = write_audio(tmp_path / "07 Soul Man.wav", tone(0.5))
    write_riff_info(path, title="Martian Boogie", artist="Brownsville Station", album="Motor City Connection")
    assert read_tags(path) == {
        "title": "Martian Boogie",
        "artist": "Brownsville Station",
        "album": "Motor City Connection",
    }
    assert load_audio(path).size == pytest.approx(0.5 * SAMPLE_RATE, abs=1)  # the chunk does not disturb decoding


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_riff_info_text_in_utf8_or_windows_1252(tmp_path, encoding):
    path = write_riff_info(write_audio(tmp_path / "t.wav", tone(0.5)), encoding=encoding, artist="Mötley Crüe – Live")
    assert read_tags(path) == {"title": None, "artist": "Mötley Crüe – Live", "album": None}


def test_wav_id3_wins_over_riff_info_which_fills_its_gaps(tmp_path):
    path = write_audio(tmp_path / "t.wav", tone(0.5))
    write_tags(path, title="From ID3")
    write_riff_info(path, title="From INFO", artist="Info Artist")
    assert read_tags(path) == {"title": "From ID3", "artist": "Info Artist", "album": None}


def test_aiff_title_and_artist_from_its_name_and_auth_chunks(tmp_path):
    path = write_aiff_text(write_audio(tmp_path / "t.aiff", tone(0.5)), title="Night Train", artist="Émile")
    assert read_tags(path) == {"title": "Night Train", "artist": "Émile", "album": None}
    write_tags(path, album="From ID3", artist="ID3 Artist")
    assert read_tags(path) == {"title": "Night Train", "artist": "ID3 Artist", "album": "From ID3"}


def test_a_damaged_riff_info_chunk_gives_no_tags_and_does_not_raise(tmp_path):
    path = write_riff_info(write_audio(tmp_path / "t.wav", tone(0.5)), title="Whole")
    data = bytearray(path.read_bytes())
    data[-10:-6] = (0xFFFFFF00).to_bytes(4, "little")  # the INAM field claims 4 GB
    path.write_bytes(bytes(data))
    assert read_tags(path) == {"title": None, "artist": None, "album": None}
    path.write_bytes(bytes(data[:-3]))  # and cut short
    assert read_tags(path) == {"title": None, "artist": None, "album": None}


def test_bad_files_have_no_tags_and_do_not_raise(tmp_path):
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(np.random.default_rng(2).bytes(5000))
    for path in (garbage, tmp_path / "missing.flac"):
        assert embedded_lyrics(path) is None
        assert read_tags(path) == {"title": None, "artist": None, "album": None}


# --- MIDI ----------------------------------------------------------------------------------------------


def test_midi_notes_exclude_drums_and_are_sorted(tmp_path):
    notes = read_midi_notes(write_midi(tmp_path / "m.mid"))
    assert notes.dtype == np.float32 and notes.shape == (16, 4)
    assert 36 not in notes[:, 0]  # the drum kit's kick
    assert notes[0].tolist() == pytest.approx([60, 0.0, 0.5, 80])
    assert np.all(np.diff(notes[:, 1]) >= 0)


def test_midi_chords_sort_by_pitch_within_a_start(tmp_path):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for pitch in (67, 60, 64):  # one chord, written top-down
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=1.0, end=2.0))
    piano.notes.append(pretty_midi.Note(velocity=90, pitch=72, start=0.0, end=0.5))
    pm.instruments.append(piano)
    pm.write(str(tmp_path / "chord.mid"))
    assert read_midi_notes(tmp_path / "chord.mid")[:, 0].tolist() == [72, 60, 64, 67]


def test_bad_midi_files_raise_one_line_midi_error(tmp_path):
    whole = write_midi(tmp_path / "whole.mid").read_bytes()
    write_midi(tmp_path / "drums.mid", pitches=())
    cases = {
        "empty.mid": b"",
        "garbage.mid": np.random.default_rng(3).bytes(3000),
        "text.mid": b"not a midi file at all\n" * 10,
        "cut.mid": whole[: len(whole) // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    _write_far_future_midi(tmp_path / "far.mid")
    huge = tmp_path / "huge.mid"
    with open(huge, "wb") as file:
        file.write(b"MThd")
        file.truncate(11_000_000)
    expected = {
        "empty.mid": "empty file",
        "garbage.mid": "not a MIDI file",
        "text.mid": "not a MIDI file",
        "cut.mid": "corrupt MIDI (file ends early)",
        "far.mid": "likely corrupt",
        "drums.mid": "no notes",
        "huge.mid": "too large",
        "missing.mid": "cannot read",
    }
    for name, reason in expected.items():
        with pytest.raises(MidiError) as exc:
            read_midi_notes(tmp_path / name)
        assert reason in _one_line(exc), name


def _write_far_future_midi(path):
    """A tiny file whose one note starts 10^8 ticks in: pretty_midi would build a tick table that big."""
    import mido

    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=90, time=10**8),
            mido.Message("note_off", note=60, velocity=0, time=100),
        ]
    )
    mido.MidiFile(tracks=[track]).save(str(path))


def _pretty_midi_notes(path):
    """What read_midi_notes returned before it read files itself: pretty_midi's notes on mido's parse."""
    from mer_tag.sources.midi import _parse

    notes = [
        (n.pitch, n.start, n.end - n.start, n.velocity)
        for instrument in _parse(path).instruments
        if not instrument.is_drum
        for n in instrument.notes
    ]
    rows = np.asarray(notes, dtype=np.float32)
    return rows[np.lexsort((rows[:, 0], rows[:, 1]))]


def _tricky_midi(path, resolution=384):
    """Two tracks that exercise pretty_midi's rules: tempo changes (one repeated), running status (mido
    writes it), note-on with velocity 0 as note-off, one note-off closing two open notes, a note-off and a
    new note-on at the same tick, a note never closed, a program change mid-track, drums on channel 10,
    a sysex, signatures, lyrics, pitch bends and controllers."""
    import mido

    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=500000, time=0),
            mido.MetaMessage("time_signature", time=0),
            mido.MetaMessage("key_signature", key="Em", time=0),
            mido.MetaMessage("set_tempo", tempo=400000, time=960),
            mido.MetaMessage("set_tempo", tempo=400000, time=100),
            mido.MetaMessage("set_tempo", tempo=612345, time=777),
            mido.MetaMessage("lyrics", text="la", time=5),
        ]
    )
    m = mido.Message
    band = mido.MidiTrack(
        [
            m("program_change", program=5, time=0),
            m("note_on", note=60, velocity=80, time=0),
            m("note_on", note=64, velocity=81, time=0),
            m("control_change", control=7, value=100, time=10),
            m("note_on", note=60, velocity=70, time=50),
            m("note_off", note=60, velocity=0, time=200),
            m("note_on", note=64, velocity=0, time=0),
            m("note_off", note=62, time=3),  # a spurious note-off
            m("pitchwheel", pitch=1000, time=7),
            m("sysex", data=[1, 2, 3], time=1),
            m("note_on", note=67, velocity=90, time=30),
            m("note_off", note=67, time=0),
            m("note_on", note=67, velocity=91, time=0),
            m("note_off", note=67, time=333),
            m("program_change", program=40, time=11),
            m("note_on", note=72, velocity=99, time=0),
            m("note_on", channel=9, note=36, velocity=120, time=0),
            m("note_off", channel=9, note=36, time=60),
            m("note_on", channel=3, note=48, velocity=33, time=0),
            m("note_off", note=72, time=1500),
            m("note_off", channel=3, note=48, time=2),
            m("note_on", note=50, velocity=10, time=40),
        ]
    )  # never closed
    mido.MidiFile(tracks=[conductor, band], ticks_per_beat=resolution).save(str(path))
    return path


def test_midi_reader_gives_pretty_midis_notes_to_the_bit(tmp_path):
    from mer_tag.sources import midi

    for path in (
        _tricky_midi(tmp_path / "tricky.mid"),
        _tricky_midi(tmp_path / "fine.mid", resolution=96),
        write_midi(tmp_path / "simple.mid"),
    ):
        assert midi._fast_notes(path.read_bytes())  # read directly, not handed to pretty_midi
        ours = read_midi_notes(path)
        assert ours.tobytes() == _pretty_midi_notes(path).tobytes(), path.name
    tricky = read_midi_notes(tmp_path / "tricky.mid")
    assert 36 not in tricky[:, 0] and 50 not in tricky[:, 0] and 48 in tricky[:, 0]
    assert (tricky[:, 0] == 60).sum() == 2 and (tricky[:, 0] == 67).sum() == 1  # one note-off closed both 60s


def test_midi_files_the_reader_leaves_to_pretty_midi(tmp_path):
    """SMPTE time, an unknown key, a running status after a sysex: handed on, same notes or same error."""
    import mido

    from mer_tag.sources import midi

    whole = _tricky_midi(tmp_path / "t.mid").read_bytes()
    smpte = tmp_path / "smpte.mid"
    smpte.write_bytes(whole[:12] + bytes([0xE7, 0x28]) + whole[14:])  # 25 fps, 40 ticks a frame
    bad_key = tmp_path / "key.mid"
    track = mido.MidiTrack(
        [
            mido.MetaMessage("key_signature", key="C"),
            mido.Message("note_on", note=60, time=0),
            mido.Message("note_off", note=60, time=10),
        ]
    )
    mido.MidiFile(tracks=[track]).save(str(bad_key))
    data = bad_key.read_bytes()
    at = data.index(bytes([0xFF, 0x59, 0x02]))
    bad_key.write_bytes(data[: at + 3] + bytes([9, 0]) + data[at + 5 :])  # nine sharps: no such key
    for path in (smpte, bad_key):
        with pytest.raises(midi._Unusual):
            midi._fast_notes(path.read_bytes())
    with pytest.raises(MidiError) as exc:
        read_midi_notes(bad_key)
    assert "corrupt MIDI" in str(exc.value)
    try:
        expected = _pretty_midi_notes(smpte)
    except MidiError as error:
        with pytest.raises(MidiError, match=re.escape(str(error))):
            read_midi_notes(smpte)
    else:
        assert read_midi_notes(smpte).tobytes() == expected.tobytes()


@pytest.mark.dataset
def test_dataset_midi_notes_are_pretty_midis(mirex_dataset):
    from mer_tag.sources import midi

    paths = sorted((mirex_dataset / "MIDIs").glob("*.mid"))
    assert len(paths) > 100
    for path in paths:
        midi._fast_notes(path.read_bytes())  # none needs the fallback
        assert read_midi_notes(path).tobytes() == _pretty_midi_notes(path).tobytes(), path.name
