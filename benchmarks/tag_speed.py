"""Time `mer-tag tag` and `mer-tag untag` per file on 4-minute tracks, and measure the journal they keep.

    python benchmarks/tag_speed.py [--files 5] [--seconds 240]

For each container: milliseconds a file to tag (copy, write, verify, undo recipe, swap) and to untag
(rebuild byte for byte, swap), and the journal's bytes a file. Files are generated (a tone), tagged with
a title first, as a library's files are.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the package, and the fixture writers the tests use

from media import tone, write_audio  # noqa: E402
from mer_tag import tags  # noqa: E402

CONTAINERS = ("mp3", "flac", "opus", "m4a", "wav")  # (libsndfile's Vorbis encoder crashes on long tracks)


def master(folder: Path, container: str, seconds: float) -> Path:
    """A track with a title tag, the way a library's files come."""
    import mutagen
    from mutagen.id3 import TIT2

    path = write_audio(folder / f"track.{container}", tone(seconds))
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if container == "m4a":
        audio["\xa9nam"] = "title"
    elif container in ("mp3", "wav"):
        audio.tags.add(TIT2(encoding=3, text="title"))
    else:
        audio["TITLE"] = "title"
    audio.save()
    return path


def time_container(folder: Path, container: str, files: int, seconds: float) -> tuple[float, float, float, float]:
    """(MB a file, ms a file to tag, ms a file to untag, journal bytes a file)."""
    source = master(folder, container, seconds)
    lib = folder / container
    lib.mkdir()
    rows = []
    for i in range(files):
        path = lib / f"{i}.{container}"
        shutil.copy(source, path)
        rows.append(f"{path},ok,{path.stat().st_size},{path.stat().st_mtime!r},3,Wistful,0.61,default@0.2.0\n")
    results, journal = lib / "moods.csv", lib / "journal.jsonl"
    results.write_text("path,status,size,mtime,cluster,cluster_name,confidence,model\n" + "".join(rows))
    start = time.perf_counter()
    tagged = tags.write_tags(results, journal=journal, extra_fields=True)
    tag_ms = (time.perf_counter() - start) * 1000 / files
    start = time.perf_counter()
    untagged = tags.untag(journal)
    untag_ms = (time.perf_counter() - start) * 1000 / files
    if tagged.count("tagged") != files or untagged.count("restored") != files:
        raise SystemExit(f"{container}: {tagged.results[0]} {untagged.results[0]}")
    return source.stat().st_size / 1e6, tag_ms, untag_ms, journal.stat().st_size / files


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=240.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for container in CONTAINERS:
            size, tag_ms, untag_ms, journal = time_container(Path(folder), container, args.files, args.seconds)
            print(
                f"{container:5} {size:5.1f} MB  tag {tag_ms:4.0f} ms/file  untag {untag_ms:4.0f} ms/file  "
                f"journal {journal:5.0f} B/file"
            )


if __name__ == "__main__":
    cli()
