"""Transcription features for the valence study (issue #28), one .npz per dataset.

Every song decoded at 22.05 kHz, transcribed by the basic-pitch port (mer_tag.models.basic_pitch), its
notes tracked and described (mer_tag.expressive): over the whole clip, and over its middle 10 s only (what
a short excerpt would give). CPU seconds per song for decoding, the network and the note features.

    .venv/bin/python research/extract_notes.py ../shared/datasets/4q-emotion research/out/4q_notes.npz
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXCERPT_SECONDS = 10.0
_MODEL = None


ONNX_FILE = Path("/tmp/bp/x/basic_pitch/saved_models/icassp_2022/nmp.onnx")


def onnx_model():
    """basic-pitch's own ONNX model under onnxruntime, when both are here: the port's outputs equal its
    within 1e-6 (tests/test_basic_pitch.py) and it runs twice as fast, so the study's features are the
    port's, sooner. None otherwise (the port is used)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    if not ONNX_FILE.exists():
        return None
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(ONNX_FILE), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(batch):
        onset, note, contour = session.run(None, {name: batch.numpy()[:, :, None]})  # the graph's order
        return {"contour": torch.from_numpy(contour), "note": torch.from_numpy(note), "onset": torch.from_numpy(onset)}

    return run


def song_work(path: str):
    import torch

    from mer_tag import expressive
    from mer_tag.models.basic_pitch import SAMPLE_RATE, BasicPitch, transcribe
    from mer_tag.sources.audio import load_audio

    global _MODEL
    torch.set_num_threads(1)
    if _MODEL is None:
        _MODEL = onnx_model() or BasicPitch.load()
    t0 = time.process_time()
    try:
        y = load_audio(path, sr=SAMPLE_RATE)
    except Exception as exc:  # research script: report and go on
        return None, str(exc)
    t1 = time.process_time()
    post = transcribe(_MODEL, y)
    t2 = time.process_time()
    notes = expressive.transcribe_notes(post)
    n_frames = len(post["note"])
    full = expressive.expressive_features(notes, n_frames, post["note"])
    t3 = time.process_time()
    mid, half = n_frames // 2, int(EXCERPT_SECONDS * expressive.FRAMES_PER_SECOND / 2)
    lo, hi = max(0, mid - half), min(n_frames, mid + half)
    sub = {k: v[lo:hi] for k, v in post.items()}
    excerpt = expressive.expressive_features(expressive.transcribe_notes(sub), hi - lo, sub["note"])
    table = np.array([(n.start, n.end, n.pitch, n.strength) for n in notes], dtype=np.float32).reshape(-1, 4)
    return (full, excerpt, table, (t1 - t0, t2 - t1, t3 - t2), len(y) / SAMPLE_RATE), None


def main(data: str, out: str, jobs: int = 2) -> None:
    from mer_tag.expressive import FEATURE_NAMES
    from mer_tag.train.datasets import load_dataset

    dataset = load_dataset(data)
    rows: dict[str, list] = {k: [] for k in ("id", "notes_full", "notes_excerpt", "seconds", "sec_decode")}
    rows.update({"sec_net": [], "sec_notes": [], "note_table": [], "note_song": []})
    paths = [str(e.audio_path) for e in dataset.examples]
    with ProcessPoolExecutor(jobs) as pool:
        for example, (result, error) in zip(dataset.examples, pool.map(song_work, paths, chunksize=2), strict=True):
            if error:
                print(f"{example.audio_path}: {error}", file=sys.stderr)
                continue
            full, excerpt, table, secs, seconds = result
            rows["id"].append(example.id)
            rows["notes_full"].append(full)
            rows["notes_excerpt"].append(excerpt)
            rows["seconds"].append(seconds)
            rows["sec_decode"].append(secs[0])
            rows["sec_net"].append(secs[1])
            rows["sec_notes"].append(secs[2])
            rows["note_table"].append(table)
            rows["note_song"].append(np.full(len(table), len(rows["id"]) - 1))
            if len(rows["id"]) % 50 == 0:
                print(len(rows["id"]), "songs", flush=True)
    rows["note_table"] = [np.concatenate(rows["note_table"])]
    rows["note_song"] = [np.concatenate(rows["note_song"])]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        **{k: np.asarray(v) for k, v in rows.items() if k not in ("note_table", "note_song")},
        note_table=rows["note_table"][0],
        note_song=rows["note_song"][0],
        feature_names=np.asarray(FEATURE_NAMES),
    )
    print(f"{len(rows['id'])} songs → {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
