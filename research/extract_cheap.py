"""Cheap per-song features for the valence study (issue #28), cached in one .npz per dataset.

For every song of a dataset: the scan's own decode and log-mel (`mer_tag.prepare.prepare_audio`), the
musicnn student's window embeddings averaged over the song (200-d), musicnn's 50 MSD tags from the teacher's
output layer over each window embedding (probabilities averaged over the song), and the tonal features
(`mer_tag.tonal`: dissonance, key clarity, mode) from the same 1024-point power spectrum at 16 kHz. CPU
seconds per song for each stage are recorded too.

    .venv/bin/python research/extract_cheap.py ../shared/datasets/4q-emotion research/out/4q_cheap.npz
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def audio_config():
    import json

    from mer_tag.features import AudioConfig, config_from_json

    card = json.loads((ROOT / "mer_tag/weights/default/card.json").read_text())
    return config_from_json(AudioConfig, card["preset"]["audio"]["features"])


def power_frames(chunk: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """The power spectrum the log-mel is made of (features.logmel's framing): [frames, bins]."""
    from mer_tag.features import _hann, _rfft

    padded = np.pad(np.ascontiguousarray(chunk, dtype=np.float32), n_fft // 2)
    n_frames = 1 + (padded.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(padded, (n_frames, n_fft), (padded.strides[0] * hop, padded.strides[0]))
    spectrum = _rfft(frames * _hann(n_fft))
    return spectrum.real**2 + spectrum.imag**2


def song_work(path: str):
    """(log-mel chunks, tonal features, seconds: prepare, tonal) for one file, in a worker."""
    from threadpoolctl import threadpool_limits

    from mer_tag import tonal
    from mer_tag.features import cut_chunks
    from mer_tag.prepare import prepare_audio
    from mer_tag.sources.audio import load_audio

    threadpool_limits(1)
    config = audio_config()
    t0 = time.process_time()
    audio = prepare_audio(path, config)
    t1 = time.process_time()
    if audio.error:
        return None, None, (t1 - t0, 0.0), audio.error
    signal = load_audio(path, sr=config.sample_rate)
    t2 = time.process_time()
    diss, chroma = [], []
    for chunk in cut_chunks(signal, config):
        d, c = tonal.frame_features(
            power_frames(chunk, config.n_fft, config.hop_length), config.sample_rate, config.n_fft
        )
        diss.append(d)
        chroma.append(c)
    values = tonal.tonal_summary(np.concatenate(diss), np.concatenate(chroma))
    t3 = time.process_time()
    return audio.features, values, (t1 - t0, t3 - t2), None


def main(data: str, out: str, jobs: int = 2) -> None:
    import torch

    from mer_tag.models.musicnn import MSD_TAGS, Musicnn
    from mer_tag.models.student import MusicnnStudent, embed_chunks
    from mer_tag.train.datasets import artist_group, load_dataset

    torch.set_num_threads(1)
    dataset = load_dataset(data)
    student = MusicnnStudent.load().eval()
    teacher_out = Musicnn.load().output.eval()  # Linear(200, 50): the MSD tag layer
    rows = {"id": [], "label": [], "group": [], "emb": [], "tags": [], "tonal": [], "sec_prepare": [], "sec_tonal": []}
    rows["sec_embed"] = []
    paths = [str(e.audio_path) for e in dataset.examples]
    with ProcessPoolExecutor(jobs) as pool:
        for example, (feats, tonal_values, secs, error) in zip(
            dataset.examples, pool.map(song_work, paths, chunksize=4), strict=True
        ):
            if error:
                print(f"{example.audio_path}: {error}", file=sys.stderr)
                continue
            t0 = time.process_time()
            with torch.inference_mode():
                emb = embed_chunks(student, torch.from_numpy(feats)).reshape(-1, 200)
                tags = torch.sigmoid(teacher_out(emb)).mean(0)
            rows["sec_embed"].append(time.process_time() - t0)
            rows["id"].append(example.id)
            rows["label"].append(example.label)
            rows["group"].append(artist_group(example.artist, example.id))
            rows["emb"].append(emb.mean(0).numpy())
            rows["tags"].append(tags.numpy())
            rows["tonal"].append(tonal_values)
            rows["sec_prepare"].append(secs[0])
            rows["sec_tonal"].append(secs[1])
            if len(rows["id"]) % 50 == 0:
                print(len(rows["id"]), "songs", flush=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        **{k: np.asarray(v) for k, v in rows.items()},
        labels=np.asarray(dataset.labels.names),
        tag_names=np.asarray(MSD_TAGS),
    )
    print(f"{len(rows['id'])} songs → {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
