"""Walk folders into Tracks: each audio file once, with its lyrics and MIDI files found by stem.

Nothing is opened or read here, only listed: one directory listing per folder, matched in memory, so a
50k-file library walks in about a second.

Order and scope: paths are walked in the order given, each folder's entries in sorted name order,
recursively; symlinked folders are followed, but a folder (by real path) is walked once, so links
back up the tree end; each audio file (by real path) is yielded once. Names starting with "." are
skipped: hidden files and folders, and macOS AppleDouble "._x.mp3" files.

Sidecars: for `Song.flac`, lyrics are `Song.txt` (preferred) or `Song.lrc`, MIDI is `Song.mid`
(preferred) or `Song.midi`; the stem must match exactly, the extension in any case. The first folder
holding one wins, in this order:
1. `lyrics_dir` / `midi_dir` given by the user: a tree parallel to the scanned path, i.e.
   `<dir>/<folder relative to the scanned path>/Song.txt`, else `<dir>/Song.txt` at its top;
2. the audio file's own folder;
3. the dataset layout: below a folder named `Audio`, the same relative path under its sibling
   `Lyrics` or `MIDIs` (or `MIDI`) folder (folder names in any case), e.g. `X/Audio/002.mp3` gets
   `X/Lyrics/002.txt` and `X/MIDIs/002.mid`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mer_tag.sources.audio import AUDIO_EXTENSIONS

LYRICS_EXTENSIONS = (".txt", ".lrc")  # in order of preference: plain text needs no stripping
MIDI_EXTENSIONS = (".mid", ".midi")
SIDECAR_EXTENSIONS = frozenset(LYRICS_EXTENSIONS + MIDI_EXTENSIONS)
DATASET_AUDIO_FOLDER = "audio"  # folder names of the dataset layout, lowercase
DATASET_LYRICS_FOLDERS = ("lyrics",)
DATASET_MIDI_FOLDERS = ("midis", "midi")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Track:
    path: Path
    lyrics_path: Path | None = None
    midi_path: Path | None = None
    lyrics: str | None = None  # text the caller already holds (a beets library's `lyrics` field): before the sidecar


def walk(
    paths: Iterable[str | os.PathLike],
    lyrics_dir: str | os.PathLike | None = None,
    midi_dir: str | os.PathLike | None = None,
) -> Iterator[Track]:
    """Tracks for every audio file in `paths` (files or folders); see the module docstring for the rules.

    Paths are made absolute, not resolved. Raises FileNotFoundError, before yielding anything, for a
    path that does not exist; an unreadable folder inside is logged and skipped.
    """
    roots = [Path(os.path.abspath(p)) for p in paths]
    missing = next((root for root in roots if not root.exists()), None)
    if missing is not None:
        raise FileNotFoundError(f"no such file or folder: {missing}")
    sidecars = _Sidecars(lyrics_dir, midi_dir)
    seen = _Seen()
    for root in roots:
        if root.is_dir():
            yield from _walk_folder(str(root), str(root), os.path.realpath(root), sidecars, seen)
        elif _is_audio(root.name) and seen.first_file(os.path.realpath(root)):
            yield sidecars.track(str(root), str(root.parent))


@dataclass
class _Seen:
    """Real paths already walked: folders (so symlink loops end) and audio files (so each comes once)."""

    folders: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)

    def first_folder(self, real: str) -> bool:
        return _first(real, self.folders)

    def first_file(self, real: str) -> bool:
        return _first(real, self.files)


def _first(item: str, seen: set[str]) -> bool:
    if item in seen:
        return False
    seen.add(item)
    return True


# Paths inside the walk are plain strings: pathlib's parsing and hashing cost more than the listing itself.


def _walk_folder(folder: str, root: str, real: str, sidecars: _Sidecars, seen: _Seen) -> Iterator[Track]:
    if not seen.first_folder(real):
        return
    try:
        entries = sidecars.scan(folder)
    except OSError as exc:
        log.warning("skipping folder %s: %s", folder, (exc.strerror or str(exc)).lower())
        return
    for entry in entries:
        # A plain entry's real path is its folder's plus its name; only links need resolving.
        entry_real = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, entry.name)
        if entry.is_dir():
            yield from _walk_folder(entry.path, root, entry_real, sidecars, seen)
        elif _is_audio(entry.name) and entry.is_file() and seen.first_file(entry_real):
            yield sidecars.track(entry.path, root)


def _is_audio(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


@dataclass
class _Listing:
    """What matching needs from one folder: sidecar files by stem, and subfolders by lowercase name."""

    sidecars: dict[str, dict[str, str]]  # stem -> {lowercase extension: file name}
    folders: dict[str, str]  # lowercase name -> name


class _Sidecars:
    """Finds each track's lyrics and MIDI files, listing every folder it looks in once."""

    def __init__(self, lyrics_dir: str | os.PathLike | None, midi_dir: str | os.PathLike | None):
        self.lyrics_dir = Path(os.path.abspath(lyrics_dir)) if lyrics_dir is not None else None
        self.midi_dir = Path(os.path.abspath(midi_dir)) if midi_dir is not None else None
        self._listings: dict[str, _Listing] = {}
        self._candidates: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # by (folder, given root)

    def scan(self, folder: str) -> list[os.DirEntry]:
        """The folder's visible entries in name order, remembering its sidecars; raises OSError."""
        with os.scandir(folder) as scan:
            entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
        self._listings[folder] = _index(entries)
        return entries

    def track(self, path: str, root: str) -> Track:
        folder, name = os.path.split(path)
        if (folder, root) not in self._candidates:  # a --lyrics-dir mirrors the layout below the path given
            self._candidates[folder, root] = self._candidate_folders(Path(folder), Path(root))
        lyrics_folders, midi_folders = self._candidates[folder, root]
        stem = os.path.splitext(name)[0]
        return Track(
            Path(path),
            self._find(stem, lyrics_folders, LYRICS_EXTENSIONS),
            self._find(stem, midi_folders, MIDI_EXTENSIONS),
        )

    def _candidate_folders(self, folder: Path, root: Path) -> tuple[list[str], list[str]]:
        """Where this folder's tracks may find lyrics and MIDI, in order of precedence."""
        relative = folder.relative_to(root)
        dataset_lyrics, dataset_midi = self._dataset_folders(folder)
        lyrics = [*_parallel(self.lyrics_dir, relative), folder, *dataset_lyrics]
        midi = [*_parallel(self.midi_dir, relative), folder, *dataset_midi]
        return [str(p) for p in lyrics], [str(p) for p in midi]

    def _dataset_folders(self, folder: Path) -> tuple[list[Path], list[Path]]:
        """`X/Lyrics/<rel>` and `X/MIDIs/<rel>` for a folder `X/Audio/<rel>`, where those exist."""
        audio = next((p for p in (folder, *folder.parents) if p.name.lower() == DATASET_AUDIO_FOLDER), None)
        if audio is None:
            return [], []
        siblings = self._listing(str(audio.parent)).folders
        relative = folder.relative_to(audio)

        def beside(names: tuple[str, ...]) -> list[Path]:
            return [audio.parent / siblings[n] / relative for n in names if n in siblings]

        return beside(DATASET_LYRICS_FOLDERS), beside(DATASET_MIDI_FOLDERS)

    def _find(self, stem: str, folders: list[str], extensions: tuple[str, ...]) -> Path | None:
        for folder in folders:
            names = self._listing(folder).sidecars.get(stem)
            if not names:
                continue
            for extension in extensions:
                if extension in names:
                    return Path(folder, names[extension])
        return None

    def _listing(self, folder: str) -> _Listing:
        if folder not in self._listings:
            try:
                self.scan(folder)
            except OSError:  # no such folder (most candidates), or unreadable: nothing there
                self._listings[folder] = _Listing({}, {})
        return self._listings[folder]


def _parallel(tree: Path | None, relative: Path) -> list[Path]:
    """The user's parallel tree: the same relative folder, then the tree's top."""
    return [tree / relative, tree] if tree is not None else []


def _index(entries: list[os.DirEntry]) -> _Listing:
    listing = _Listing({}, {})
    for entry in entries:
        stem, extension = os.path.splitext(entry.name)
        if extension.lower() in SIDECAR_EXTENSIONS:
            listing.sidecars.setdefault(stem, {})[extension.lower()] = entry.name
        elif entry.is_dir():
            listing.folders[entry.name.lower()] = entry.name
    return listing
