"""Proof that a tag edit left the audio alone: a checksum of the audio without the tags.

Where a container keeps the audio bytes in one place that a tag edit does not touch (MP3 frames, FLAC
frames, the WAV and AIFF sample chunks), those bytes are hashed as they lie. MP4 and Ogg files are rewritten
around the audio by a tag edit, so for them the checksum is of the packets FFmpeg's demuxer delivers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from mer_tag.tags.outcome import TagError, reason


def _peek(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _after_id3v2(f, pos: int) -> int:
    while (header := _peek(f, pos, 10))[:3] == b"ID3" and len(header) == 10:
        size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]  # syncsafe: 7 bits a byte
        pos += 10 + size + (10 if header[5] & 0x10 else 0)  # flag 0x10: a footer follows
    return pos


def _before_trailing_tags(f) -> int:
    """End of the audio: before an ID3v1 tag and an APEv2 tag at the end of the file, in either order."""
    end = f.seek(0, 2)
    while True:
        if end >= 128 and _peek(f, end - 128, 3) == b"TAG":
            end -= 128
        elif end >= 32 and _peek(f, end - 32, 8) == b"APETAGEX":
            footer = _peek(f, end - 32, 32)
            has_header = int.from_bytes(footer[20:24], "little") & 0x80000000
            size = max(int.from_bytes(footer[12:16], "little"), 32)  # includes the footer; a bogus 0 would loop
            end -= size + (32 if has_header else 0)
        else:
            return end


def _mp3_ranges(f):
    start = _after_id3v2(f, 0)
    return [(b"mpeg", start, _before_trailing_tags(f) - start)]


def _flac_ranges(f):
    pos = _after_id3v2(f, 0)
    if _peek(f, pos, 4) != b"fLaC":
        raise TagError("no fLaC marker")
    streaminfo = (b"streaminfo", pos + 8, 34)  # the first block: how to decode the frames
    pos += 4
    while True:
        header = _peek(f, pos, 4)
        if len(header) < 4:
            raise TagError("FLAC metadata runs past the end of the file")
        pos += 4 + int.from_bytes(header[1:4], "big")
        if header[0] & 0x80:  # the last metadata block
            return [streaminfo, (b"frames", pos, _before_trailing_tags(f) - pos)]


def _chunk_ranges(f, order: Literal["little", "big"], wanted: tuple[bytes, ...]):
    """The `wanted` chunks of a RIFF (WAV, little-endian) or IFF (AIFF, big-endian) file."""
    form_end = min(8 + int.from_bytes(_peek(f, 4, 4), order), f.seek(0, 2))
    ranges, pos = [], 12
    while pos + 8 <= form_end:
        header = _peek(f, pos, 8)
        size = int.from_bytes(header[4:8], order)
        if header[:4] in wanted:
            ranges.append((header[:4], pos + 8, size))
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    if sorted(r[0] for r in ranges) != sorted(wanted):
        raise TagError(f"expected one each of the {b', '.join(wanted).decode()} chunks")
    return ranges


def _payload(audio) -> tuple[str, Callable] | None:
    """(method, how to find the ranges) for a container that keeps the audio bytes in one place, untouched
    by a tag edit, so they can be hashed as they lie; None for one a tag edit rewrites around the audio."""
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.wave import WAVE

    for container, method, find_ranges in (
        (MP3, "mp3-frames", _mp3_ranges),
        (FLAC, "flac-frames", _flac_ranges),
        (WAVE, "wav-chunks", lambda f: _chunk_ranges(f, "little", (b"fmt ", b"data"))),
        (AIFF, "aiff-chunks", lambda f: _chunk_ranges(f, "big", (b"COMM", b"SSND"))),
    ):
        if isinstance(audio, container):
            return method, find_ranges
    return None


def _hash_ranges(f, ranges) -> str:
    digest = hashlib.sha256()
    for label, start, length in ranges:
        digest.update(label)
        f.seek(start)
        while length > 0:
            block = f.read(min(length, 1 << 20))
            if not block:
                raise TagError(f"{label.decode()} runs past the end of the file")
            digest.update(block)
            length -= len(block)
    return digest.hexdigest()


def _vorbis_setup(extradata: bytes) -> bytes:
    """FFmpeg hands Vorbis its three header packets, Xiph-laced, as extradata: identification, comments
    (the very packet a tag edit rewrites) and setup. The decoder setup is the first and the last."""
    sizes, pos = [], 1
    for _ in range(extradata[0]):  # the number of packets, less one
        size = 0
        while extradata[pos] == 255:
            size, pos = size + 255, pos + 1
        sizes.append(size + extradata[pos])
        pos += 1
    return extradata[pos : pos + sizes[0]] + extradata[pos + sum(sizes) :]


def _packets_sha256(path: Path) -> str:
    """The compressed audio packets as FFmpeg's demuxer delivers them (bytes and timestamps) and the
    decoder setup. A tag edit rewrites MP4 and Ogg files around the audio, so their bytes move; what the
    demuxer reads must not. Same packets and setup decode to the same samples, at a tenth of the cost."""
    import av

    digest = hashlib.sha256()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            codec = stream.codec_context
            extradata = bytes(codec.extradata or b"")
            digest.update(f"{codec.name} {codec.sample_rate} {codec.layout.name}".encode())
            digest.update(_vorbis_setup(extradata) if codec.name == "vorbis" else extradata)
            for packet in container.demux(stream):
                if packet.size:  # the demuxer ends with an empty flush packet
                    digest.update(f"{packet.pts} {packet.duration} {packet.size}".encode())
                    digest.update(bytes(packet))
    except (av.FFmpegError, IndexError) as exc:
        raise TagError(f"audio can't be read: {reason(exc)}") from None
    return digest.hexdigest()


def audio_checksum(path: str | Path, audio) -> dict:
    """{"method", "sha256"} of the audio alone in the file at `path`, of the kind mutagen opened as `audio`
    (the original's, for its copy too): the raw payload bytes where the container keeps them in one place,
    else the demuxed packets."""
    payload = _payload(audio)
    if payload is not None:
        method, find_ranges = payload
        with open(path, "rb") as f:
            return {"method": method, "sha256": _hash_ranges(f, find_ranges(f))}
    return {"method": "packets", "sha256": _packets_sha256(Path(path))}
