import numpy as np
import pytest

from mer_tag.labels import MIREX
from mer_tag.train.datasets import DatasetError, artist_group, load_dataset, read_dataset_info
from mer_tag.train.splits import grouped_folds, make_split


def test_dataset_info_title_with_semicolon_is_kept_whole(tmp_path):
    info = tmp_path / "dataset info.csv"
    text = (
        "Title;Artist;Album;Track;Year;Length;Size;Last Modified;Filename;\r\n"
        "Love; Hate;Some Band;Album;1;1999;30;352,00 KB;09-09-2010;001.mp3;\r\n"
        "Plain;Other;Album;2;2001;30;352,00 KB;09-09-2010;002.mp3;\r\n"
    )
    info.write_bytes(text.encode("utf-16"))
    rows = read_dataset_info(info)
    assert rows["001.mp3"] == {"title": "Love; Hate", "artist": "Some Band"}
    assert rows["002.mp3"]["artist"] == "Other"


def test_artist_variants_share_a_group():
    assert artist_group("Jett, Joan & Teh Blackhearts", "1") == artist_group("Joan Jett", "2")
    assert artist_group("The Smiths", "1") == artist_group("Smiths", "2")
    assert artist_group(None, "7") != artist_group(None, "8")


def test_mirex_layout_reads_labels_and_modalities(mirex_dataset):
    dataset = load_dataset(mirex_dataset)
    assert dataset.layout == "mirex" and dataset.labels == MIREX
    assert len(dataset.examples) == 722
    assert sum(e.lyrics_path is not None for e in dataset.examples) == 606
    assert sum(e.midi_path is not None for e in dataset.examples) == 152
    first = dataset.examples[0]
    assert first.audio_path.name == "002.mp3" and first.label == 0 and "Blakey" in first.artist


def test_csv_layout_with_custom_labels(tmp_path):
    (tmp_path / "a.mp3").write_bytes(b"x")
    (tmp_path / "b.mp3").write_bytes(b"x")
    (tmp_path / "a.txt").write_text("words")
    (tmp_path / "labels.csv").write_text("path,label,lyrics_path\na.mp3,Positive,a.txt\nb.mp3,Negative,\n")
    dataset = load_dataset(tmp_path)
    assert dataset.layout == "csv"
    assert dataset.labels.names == ("Negative", "Positive")
    assert [e.label for e in dataset.examples] == [1, 0]
    assert dataset.examples[0].lyrics_path == tmp_path / "a.txt" and dataset.examples[1].lyrics_path is None


def test_folder_layout_labels_by_folder(tmp_path):
    from media import write_audio

    write_audio(tmp_path / "Cluster 1" / "x.wav")
    write_audio(tmp_path / "Cluster 3" / "y.flac")
    dataset = load_dataset(tmp_path)
    assert dataset.labels == MIREX  # 'Cluster N' folders are the MIREX clusters
    assert sorted(e.label for e in dataset.examples) == [0, 2]


def test_a_folder_layout_given_as_a_relative_path_reads(tmp_path, monkeypatch):
    """`mer-tag eval --data songs` from the folder above: a ValueError traceback before."""
    from media import write_audio

    write_audio(tmp_path / "songs" / "Wistful" / "a.wav")
    write_audio(tmp_path / "songs" / "Cheerful" / "b.wav")
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset("songs")
    assert sorted(e.id for e in dataset.examples) == ["Cheerful/b.wav", "Wistful/a.wav"]


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "nope")


def test_split_never_puts_an_artist_on_two_sides():
    rng = np.random.default_rng(0)
    groups = [f"artist{i // 3}" for i in range(300)]
    labels = rng.integers(0, 5, 300)
    split = make_split(labels, groups, test_fraction=0.2, val_fraction=0.1, seed=0)
    sides = {name: {groups[i] for i in idx} for name, idx in split.items()}
    assert not sides["train"] & sides["test"] and not sides["train"] & sides["val"] and not sides["val"] & sides["test"]
    assert sorted(sum(split.values(), [])) == list(range(300))
    assert 45 <= len(split["test"]) <= 75
    assert make_split(labels, groups, 0.2, 0.1, seed=0) == split  # seeded: the same split again


def test_folds_cover_everything_once():
    groups = [f"g{i // 2}" for i in range(100)]
    folds = grouped_folds(np.arange(100) % 5, groups, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(100))


def test_4q_layout_reads_quadrants_artists_moods_and_genres(tmp_path):
    from media import write_4q_dataset
    from mer_tag.labels import QUADRANTS

    root = write_4q_dataset(tmp_path / "4q", per_quadrant=1, seconds=1.0)
    (root / "metadata.csv").write_text((root / "metadata.csv").read_text() + "MT9,Nobody,Gone,Q1,Happy,Jazz\n")
    dataset = load_dataset(root)
    assert dataset.layout == "4q" and dataset.labels == QUADRANTS
    assert [e.label for e in dataset.examples] == [0, 1, 2, 3]
    second = dataset.examples[1]
    assert second.id == "MT10000" and second.audio_path == root / "Audio" / "MT10000.wav"
    assert second.artist == "Artist Q2 0" and second.moods == ("Angry", "Tense/Anxious") and second.genres == ("Jazz",)
    assert second.lyrics_path is None and second.midi_path is None
    assert dataset.problems == [(str(root / "Audio" / "MT9"), "no audio file for this song in Audio/")]


def test_a_label_map_relabels_without_touching_the_dataset(tmp_path):
    from media import write_4q_dataset
    from mer_tag.labels import VALENCE2

    root = write_4q_dataset(tmp_path / "4q", per_quadrant=1, seconds=1.0)
    before = (root / "metadata.csv").read_bytes()
    valence = load_dataset(root, "valence")
    assert valence.labels == VALENCE2 and [e.label for e in valence.examples] == [0, 1, 1, 0]
    assert [e.artist for e in valence.examples] == [e.artist for e in load_dataset(root).examples]
    assert (root / "metadata.csv").read_bytes() == before
    with pytest.raises(DatasetError, match="does not say"):
        load_dataset(root, "Q1=Positive,Q2=Negative")


@pytest.mark.dataset
def test_the_shared_4q_set_reads_whole(fourq_dataset):
    root = fourq_dataset
    dataset = load_dataset(root)
    assert dataset.layout == "4q" and len(dataset.examples) == 640 and not dataset.problems
    assert np.bincount([e.label for e in dataset.examples]).tolist() == [138, 175, 164, 163]
    assert np.bincount([e.label for e in load_dataset(root, "valence").examples]).tolist() == [301, 339]
    assert all(e.artist and e.moods and e.audio_path.suffix == ".opus" for e in dataset.examples)
