"""Labelled datasets: the MIREX-like layout as distributed, the 4Q audio emotion layout, a CSV of paths and
labels, or one folder per label.

A dataset is a list of `Example`s (paths, label index, artist for grouping, AllMusic moods and genres where
the layout has them) plus the problems met while reading it; nothing is decoded here. Files that turn out
unreadable are skipped later, and named. A label map (labels.py) relabels a dataset as it is read.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mer_tag.errors import MerTagError
from mer_tag.labels import MIREX, QUADRANTS, LabelMap, LabelSet, custom, label_map
from mer_tag.library import walk
from mer_tag.sources.audio import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Example:
    id: str
    audio_path: Path
    label: int
    artist: str | None = None
    title: str | None = None
    lyrics_path: Path | None = None
    midi_path: Path | None = None
    moods: tuple[str, ...] = ()  # AllMusic mood tags (4Q layout)
    genres: tuple[str, ...] = ()  # AllMusic genres (4Q layout)


@dataclass
class Dataset:
    root: Path
    layout: str  # 'mirex', '4q', 'csv' or 'folders'
    labels: LabelSet
    examples: list[Example]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)


class DatasetError(MerTagError):
    pass


def load_dataset(root: str | Path, label_map: str | dict | LabelMap | None = None) -> Dataset:
    """Recognise the layout of `root` and read it; relabel it with `label_map` (a name such as 'valence', an
    inline 'Q1=Positive,...' or a preset's table) when one is given."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        dataset = read_csv_layout(root)
    elif not root.is_dir():
        raise DatasetError(f"no dataset at {root}: expected a folder or a .csv file")
    elif (root / "Audio").is_dir() and (root / "clusters.txt").is_file():
        dataset = read_mirex_layout(root)
    elif (root / "Audio").is_dir() and (root / "metadata.csv").is_file():
        dataset = read_4q_layout(root)
    elif (root / "labels.csv").is_file():
        dataset = read_csv_layout(root / "labels.csv")
    else:
        dataset = read_folder_layout(root)
    return relabel(dataset, label_map) if label_map else dataset


def relabel(dataset: Dataset, mapping: str | dict | LabelMap) -> Dataset:
    """The dataset with every example's label passed through the label map."""
    try:
        mapping = mapping if isinstance(mapping, LabelMap) else label_map(mapping)
        table = mapping.table(dataset.labels)
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{dataset.root}: {exc.args[0]}") from None
    examples = [replace(e, label=table[e.label]) for e in dataset.examples]
    return replace(dataset, labels=mapping.target, examples=examples)


# ------------------------------------------------------------------ MIREX-like


def read_mirex_layout(root: Path) -> Dataset:
    """`Audio/NNN.mp3`, `Lyrics/NNN.txt`, `MIDIs/NNN.mid`; `clusters.txt` line i labels the i-th audio file."""
    audio_files = sorted(p for p in (root / "Audio").iterdir() if p.suffix.lower() == ".mp3")
    clusters = [line.strip() for line in (root / "clusters.txt").read_text(encoding="utf-8-sig").splitlines()]
    clusters = [c for c in clusters if c]
    if len(clusters) != len(audio_files):
        raise DatasetError(f"{root}: clusters.txt has {len(clusters)} labels for {len(audio_files)} audio files")
    info = read_dataset_info(root / "dataset info.csv")
    lyrics = {p.stem: p for p in (root / "Lyrics").glob("*.txt")} if (root / "Lyrics").is_dir() else {}
    midis = {p.stem: p for p in (root / "MIDIs").glob("*.mid")} if (root / "MIDIs").is_dir() else {}
    problems, examples = [], []
    for audio, cluster in zip(audio_files, clusters):
        try:
            label = MIREX.index(cluster)
        except KeyError as exc:
            problems.append((str(audio), str(exc)))
            continue
        meta = info.get(audio.name, {})
        examples.append(
            Example(
                audio.stem,
                audio,
                label,
                meta.get("artist"),
                meta.get("title"),
                lyrics.get(audio.stem),
                midis.get(audio.stem),
            )
        )
    return Dataset(root, "mirex", MIREX, examples, problems)


def read_dataset_info(path: Path) -> dict[str, dict]:
    """`dataset info.csv`: UTF-16, ';'-separated, Title;Artist;Album;Track;Year;Length;Size;Last Modified;Filename.

    One title contains a ';', so fields are taken from the right: the last eight are fixed, the rest is
    the title.
    """
    if not path.exists():
        return {}
    rows = {}
    for line in path.read_text(encoding="utf-16").splitlines()[1:]:
        fields = line.rstrip().rstrip(";").split(";")
        if len(fields) < 9:
            continue
        filename, artist = fields[-1].strip(), fields[-8].strip()
        rows[filename] = {"title": ";".join(fields[:-8]).strip(), "artist": artist or None}
    return rows


# ------------------------------------------------------------------ 4Q audio emotion


def read_4q_layout(root: Path) -> Dataset:
    """`Audio/<Song>.opus` (any audio extension) and `metadata.csv` (UTF-8; Song, Artist, Title, Quadrant,
    MoodsStr and GenresStr '; '-separated): the quadrant is the label. No lyrics, no MIDI."""
    with (root / "metadata.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"Song", "Quadrant"} <= set(rows[0]):
        raise DatasetError(f"{root / 'metadata.csv'}: needs at least the columns Song and Quadrant")
    audio = {p.stem: p for p in sorted((root / "Audio").iterdir()) if p.suffix.lower() in AUDIO_EXTENSIONS}
    problems, examples = [], []
    for row in rows:
        song = row["Song"].strip()
        if song not in audio:
            problems.append((str(root / "Audio" / song), "no audio file for this song in Audio/"))
            continue
        try:
            label = QUADRANTS.index(row["Quadrant"])
        except KeyError as exc:
            problems.append((str(audio[song]), str(exc.args[0])))
            continue
        examples.append(
            Example(
                song,
                audio[song],
                label,
                row.get("Artist", "").strip() or None,
                row.get("Title", "").strip() or None,
                None,
                None,
                _tag_list(row.get("MoodsStr")),
                _tag_list(row.get("GenresStr")),
            )
        )
    return Dataset(root, "4q", QUADRANTS, examples, problems)


def _tag_list(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(";") if t.strip())


# ------------------------------------------------------------------ generic layouts


def read_csv_layout(csv_path: Path) -> Dataset:
    """`path,label[,lyrics_path,midi_path,artist]`, paths relative to the CSV's folder."""
    base = csv_path.parent
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise DatasetError(f"{csv_path}: needs a header with at least 'path' and 'label'")
    labels = _label_set({r["label"].strip() for r in rows if r.get("label")})
    examples, problems = [], []
    for row in rows:
        path = base / row["path"]
        if not row.get("label"):
            problems.append((str(path), "no label"))
            continue
        examples.append(
            Example(
                id=row["path"],
                audio_path=path,
                label=labels.index(row["label"]),
                artist=(row.get("artist") or None),
                title=row.get("title") or None,
                lyrics_path=_optional_path(base, row.get("lyrics_path")),
                midi_path=_optional_path(base, row.get("midi_path")),
            )
        )
    return Dataset(csv_path, "csv", labels, examples, problems)


def read_folder_layout(root: Path) -> Dataset:
    """One sub-folder per label; lyrics and MIDI found beside each audio file by stem."""
    label_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not label_dirs:
        raise DatasetError(f"{root}: no Audio/ + clusters.txt, no labels.csv, and no label folders")
    labels = _label_set({d.name for d in label_dirs})
    absolute = Path(os.path.abspath(root))  # as the walk gives each track's path, so a relative root works
    examples = [
        Example(
            str(track.path.relative_to(absolute)),
            track.path,
            labels.index(folder.name),
            None,
            None,
            track.lyrics_path,
            track.midi_path,
        )
        for folder in label_dirs
        for track in walk([folder])
    ]
    return Dataset(root, "folders", labels, examples)


def _label_set(names: set[str]) -> LabelSet:
    """The MIREX clusters if every label is one of them (by name, 'Cluster N' or adjective), else custom."""
    for known in (MIREX,):
        try:
            [known.index(n) for n in names]
            return known
        except KeyError:
            pass
    return custom(sorted(names))


def _optional_path(base: Path, value: str | None) -> Path | None:
    return base / value if value and value.strip() else None


def artist_group(artist: str | None, fallback: str) -> str:
    """A grouping key that makes 'Jett, Joan & the Blackhearts' and 'Joan Jett' the same artist.

    The lead name (before '&', 'feat.', 'with', ',' pairs are kept) as a sorted bag of words; songs with
    no artist get their own group, so they never join anyone by accident.
    """
    if not artist:
        return f"?{fallback}"
    lead = re.split(r"\s*(?:&|\bfeat\.?|\bfeaturing\b|\bwith\b|\band\b)\s*", artist.lower())[0]
    words = sorted(w for w in re.findall(r"[a-z0-9]+", lead) if w not in ("the", "teh"))
    return " ".join(words) or f"?{fallback}"
