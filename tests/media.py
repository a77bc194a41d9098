"""Tiny audio, lyrics and MIDI fixtures, generated at test time (no copyrighted audio in the repo).

soundfile (libsndfile >= 1.1) writes WAV, FLAC, Ogg/Vorbis, Opus, MP3 and AIFF; PyAV (its own FFmpeg)
writes AAC and ALAC in M4A. Every writer takes a mono float32 signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050  # Hz; fixtures match the MIREX clips
CONTAINERS = ("wav", "flac", "ogg", "opus", "mp3", "aiff", "m4a", "alac.m4a")


def tone(seconds: float = 3.0, freq: float = 440.0, sr: int = SAMPLE_RATE, noise: float = 0.02, seed: int = 0):
    """A sine with a little noise: enough spectral content for every feature to be non-degenerate."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(t.size)
    return y.astype(np.float32)


def write_audio(path: Path, y: np.ndarray | None = None, sr: int = SAMPLE_RATE) -> Path:
    """Write `y` to `path`, container chosen by the name (`x.alac.m4a` gives ALAC, `x.m4a` AAC)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone() if y is None else y
    name = path.name.lower()
    if name.endswith(".m4a"):
        _write_m4a(path, y, sr, codec="alac" if name.endswith(".alac.m4a") else "aac")
        return path
    import soundfile as sf

    ext = path.suffix.lower().lstrip(".")
    if ext == "opus":
        import librosa

        sf.write(path, librosa.resample(y, orig_sr=sr, target_sr=48000), 48000, format="OGG", subtype="OPUS")
    elif ext == "aiff":
        sf.write(path, y, sr, format="AIFF", subtype="PCM_16")
    else:
        sf.write(path, y, sr)
    return path


def _write_m4a(path: Path, y: np.ndarray, sr: int, codec: str) -> None:
    import av

    with av.open(str(path), "w", format="ipod") as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        fmt = "s16p" if codec == "alac" else "fltp"
        samples = (y * 32767).astype(np.int16) if codec == "alac" else y
        frame_len = 4096 if codec == "alac" else 1024
        pts = 0
        for start in range(0, samples.size, frame_len):
            block = np.ascontiguousarray(samples[start : start + frame_len][None, :])
            frame = av.AudioFrame.from_ndarray(block, format=fmt, layout="mono")
            frame.sample_rate = sr
            frame.pts = pts
            pts += block.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_midi(path: Path, pitches=(60, 64, 67, 72), seconds_per_note: float = 0.5, drums: bool = True) -> Path:
    """A tiny MIDI file: a piano arpeggio, and a drum track that feature code must ignore."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i, p in enumerate(pitches * 4):
        start = i * seconds_per_note
        piano.notes.append(pretty_midi.Note(velocity=80 + i % 20, pitch=p, start=start, end=start + seconds_per_note))
    pm.instruments.append(piano)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        kit.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1))
        pm.instruments.append(kit)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


LYRICS = "I walk alone beneath the autumn rain\nand every leaf remembers you\n"


def write_lyrics(path: Path, text: str = LYRICS, encoding: str = "utf-8") -> Path:
    """Lyrics in a given encoding: 'utf-8', 'utf-8-sig' (BOM), 'utf-16' (BOM) or 'latin-1'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_tags(path: Path, lyrics: str | None = None, **fields: str) -> Path:
    """Embed `lyrics` and title/artist/album `fields` with mutagen, in the container's own tag format:
    ID3 (USLT, TIT2, TPE1, TALB) for MP3/WAV/AIFF, MP4 atoms (©lyr, ©nam, ©ART, ©alb) for M4A, ASF
    (WM/Lyrics, Title, Author, WM/AlbumTitle) for WMA, else LYRICS, TITLE, ARTIST, ALBUM (Vorbis comments
    for FLAC/Ogg/Opus, APEv2 for WavPack)."""
    import mutagen
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3, TALB, TIT2, TPE1, USLT
    from mutagen.mp4 import MP4Tags

    audio = mutagen.File(str(path))
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        frames = {"title": TIT2, "artist": TPE1, "album": TALB}
        if lyrics is not None:
            tags.add(USLT(encoding=3, lang="eng", desc="", text=lyrics))
        for name, value in fields.items():
            tags.add(frames[name](encoding=3, text=[value]))
    else:
        keys = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "lyrics": "LYRICS"}  # Vorbis, APEv2
        if isinstance(tags, MP4Tags):
            keys = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "lyrics": "\xa9lyr"}
        elif isinstance(tags, ASFTags):
            keys = {"title": "Title", "artist": "Author", "album": "WM/AlbumTitle", "lyrics": "WM/Lyrics"}
        if lyrics is not None:
            tags[keys["lyrics"]] = [lyrics]
        for name, value in fields.items():
            tags[keys[name]] = [value]
    audio.save()
    return Path(path)


RIFF_INFO_IDS = {"title": b"INAM", "artist": b"IART", "album": b"IPRD"}
AIFF_TEXT_IDS = {"title": b"NAME", "artist": b"AUTH"}


def write_riff_info(path: Path, encoding: str = "utf-8", **fields: str) -> Path:
    """Append a RIFF LIST/INFO chunk (INAM title, IART artist, IPRD album) to a WAV file, byte by byte as the
    RIFF spec lays it out (NUL-terminated text, even-padded), independent of any tag library's writer."""
    body = b"INFO"
    for name, value in fields.items():
        body += _chunk(RIFF_INFO_IDS[name], value.encode(encoding) + b"\x00", "<")
    return _append_chunk(Path(path), b"LIST", body, "<")


def write_aiff_text(path: Path, encoding: str = "latin-1", **fields: str) -> Path:
    """Append AIFF text chunks (NAME title, AUTH artist) to an AIFF file, as the AIFF spec lays them out."""
    path = Path(path)
    for name, value in fields.items():
        _append_chunk(path, AIFF_TEXT_IDS[name], value.encode(encoding), ">")
    return path


def _chunk(chunk_id: bytes, body: bytes, order: str) -> bytes:
    import struct

    return chunk_id + struct.pack(order + "I", len(body)) + body + b"\x00" * (len(body) & 1)


def _append_chunk(path: Path, chunk_id: bytes, body: bytes, order: str) -> Path:
    """Add one chunk at the end of a RIFF (`order` "<") or IFF (">") file and grow its outer size to match."""
    import struct

    data = bytearray(path.read_bytes())
    data += _chunk(chunk_id, body, order)
    data[4:8] = struct.pack(order + "I", len(data) - 8)
    path.write_bytes(bytes(data))
    return path


PYAV_FORMATS = {".wv": ("wv", "wavpack"), ".wma": ("asf", "wmav2")}  # extension -> (muxer, encoder)


def write_pyav_audio(path: Path, y: np.ndarray | None = None, sr: int = SAMPLE_RATE) -> Path:
    """WavPack (.wv, takes APEv2 tags) or WMA (.wma, ASF tags), encoded by PyAV's FFmpeg."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone() if y is None else y
    muxer, encoder = PYAV_FORMATS[path.suffix.lower()]
    with av.open(str(path), "w", format=muxer) as out:
        stream = out.add_stream(encoder, rate=sr, layout="mono")
        stream.bit_rate = 64000  # WMA refuses to open without one
        stream.codec_context.open()
        frame_len = stream.codec_context.frame_size or 4096  # WMA insists on its own frame size
        for start in range(0, y.size, frame_len):
            block = np.zeros((1, frame_len), np.float32)
            chunk = y[start : start + frame_len]
            block[0, : chunk.size] = chunk
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_4q_dataset(root: Path, per_quadrant: int = 2, seconds: float = 3.0, ext: str = "wav") -> Path:
    """A tiny dataset in the 4Q layout (`metadata.csv` + `Audio/<Song>.<ext>`): tones whose pitch and loudness
    follow the quadrant, one artist per song, AllMusic-style mood and genre lists."""
    import csv

    root = Path(root)
    moods = {"Q1": "Happy; Exuberant", "Q2": "Angry; Tense/Anxious", "Q3": "Sad; Gloomy", "Q4": "Calm/Peaceful"}
    rows = []
    for q, quadrant in enumerate(("Q1", "Q2", "Q3", "Q4")):
        for k in range(per_quadrant):
            song = f"MT{q}{k:04d}"
            y = tone(seconds, freq=220.0 * (q + 1) + 30 * k, noise=0.02 + 0.1 * (q % 2), seed=q * 100 + k)
            write_audio(root / "Audio" / f"{song}.{ext}", y)
            rows.append(
                {
                    "Song": song,
                    "Artist": f"Artist {quadrant} {k}",
                    "Title": f"Song {k}",
                    "Quadrant": quadrant,
                    "MoodsStr": moods[quadrant],
                    "GenresStr": "Pop/Rock; Electronic" if k % 2 else "Jazz",
                }
            )
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def vibrato_chord(seconds: float = 2.0, sr: int = 22050) -> np.ndarray:
    """A held A4 sung with a 6-Hz vibrato of ±0.5 semitone over a plain E3 and a little noise: pitched,
    polyphonic and expressive enough for transcription and its features. Deterministic."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2.0 ** (0.5 / 12.0 * np.sin(2 * np.pi * 6.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = 0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase) + 0.2 * np.sin(2 * np.pi * 164.81 * t)
    return (y + 0.005 * rng.standard_normal(t.size)).astype(np.float32)
