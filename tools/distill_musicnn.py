"""Distil musicnn into the small student that the default model listens with (mer_tag/models/student.py).

For every clip of a dataset: decode at 16 kHz, take its first 30-second chunk, and compute
- the teacher's targets: musicnn's 200-d penultimate embedding of 3-s patches every 62 frames (~1 s),
  28 overlapping patches per clip (the frozen musicnn of mer_tag/weights/musicnn);
- the student's input: `features.logmel` of the same chunk with the preset's `[audio.features]` (the
  `default` preset: 16 kHz, n_fft 1024, hop 512, 64 bands).
The student is fitted to regress every teacher patch from the mean and max of its own output over the
same 3 seconds (MSE on standardised embeddings), early-stopped on a grouped validation set.

Only the preset split's train + val songs are used (seed 0, `--preset default`'s split): the test artists,
whose numbers the model card reports, are never heard, not even without labels. No label is used at all.

    python tools/distill_musicnn.py --data ../shared/datasets/mirex-mood  # writes mer_tag/weights/musicnn_student
    python tools/distill_musicnn.py --data ../shared/datasets/mirex-mood --out /tmp/student --epochs 5

The decoded clips and the teacher's embeddings are cached (`--cache`, default .cache/distill), so reruns
with other student settings take minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEACHER_HOP_FRAMES = 62  # musicnn frames (16 ms) between teacher patches: ~1 s, 28 patches per 30-s clip
CACHE_VERSION = 1


def clip_job(args):
    """(clip, student features) → (student log-mel [64, 938] float16, teacher mel patches [28, 187, 96]
    float16), or an error. Teacher and student hear the same 16 kHz first 30 s (musicnn's own rate)."""
    from mer_tag.features import cut_chunks, logmel, musicnn_logmel, musicnn_patches
    from mer_tag.sources.audio import AudioError, load_audio

    path, features = args
    try:
        chunk = cut_chunks(load_audio(path, sr=features.sample_rate), features)[0]
    except AudioError as exc:
        return None, None, str(exc)
    patches = musicnn_patches(musicnn_logmel(chunk), hop_frames=TEACHER_HOP_FRAMES, tail="drop")
    return logmel(chunk, features).astype(np.float16), patches.astype(np.float16), None


def build_data(paths: list[Path], features, cache: Path, jobs: int) -> dict:
    """Student inputs and teacher embeddings for `paths`, from the cache when every setting matches."""
    import torch

    from mer_tag import _fs
    from mer_tag.models import musicnn
    from mer_tag.prepare import init_worker

    key = {
        "version": CACHE_VERSION,
        "paths": [str(p.resolve()) for p in paths],
        "hop": TEACHER_HOP_FRAMES,
        "features": asdict(features),
        "teacher": musicnn.weights_sha256(),
    }
    file = cache / "distill-data.npz"
    if file.exists():
        with np.load(file) as data:
            if json.loads(str(data["key"])) == key:
                return {k: data[k] for k in data.files}
    teacher = musicnn.Musicnn.load().eval()
    mels, targets, ok = [], [], []
    started = time.time()
    with ProcessPoolExecutor(max_workers=jobs, initializer=init_worker) as pool:
        for i, (mel, patches, error) in enumerate(pool.map(clip_job, [(p, features) for p in paths], chunksize=4)):
            if error:
                print(f"{paths[i]}: skipped: {error}", file=sys.stderr)
                continue
            with torch.inference_mode():
                targets.append(teacher(torch.from_numpy(patches).float())["penultimate"].numpy().astype(np.float16))
            mels.append(mel)
            ok.append(i)
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(paths)} clips, {time.time() - started:.0f} s", flush=True)
    data = {
        "key": np.array(json.dumps(key)),
        "mel": np.stack(mels),
        "teacher": np.stack(targets),
        "index": np.array(ok),
    }
    with _fs.atomic_file(file, suffix=".npz") as tmp:
        np.savez(tmp, **data)
    return data


def teacher_starts(n_patches: int) -> list[float]:
    """Start second of each teacher patch."""
    from mer_tag.features import MUSICNN_HOP_LENGTH, MUSICNN_SAMPLE_RATE

    return [i * TEACHER_HOP_FRAMES * MUSICNN_HOP_LENGTH / MUSICNN_SAMPLE_RATE for i in range(n_patches)]


def augment(x, starts: list[float], rng, frame_seconds: float):
    """A training view of a batch of log-mel clips [B, bands, frames] (dB): another master level (±6 dB),
    another start (up to 1 s dropped, the teacher's windows moved with it) and SpecAugment masks (set
    to the band's mean). The targets stay the teacher's: the student learns to hear past all three.
    Returns (x, indices of the teacher patches kept, their starts in the new view)."""
    import torch

    x = x + torch.from_numpy(rng.uniform(-6, 6, (len(x), 1, 1))).float()
    shift = int(rng.integers(0, int(round(1.0 / frame_seconds))))
    x = x[:, :, shift:].clone()
    moved = [s - shift * frame_seconds for s in starts]
    keep = [i for i, s in enumerate(moved) if s >= 0]
    mean = x.mean(dim=(0, 2), keepdim=True)
    for row in x:
        f0, df = rng.integers(0, x.shape[1] - 8), rng.integers(0, 9)
        row[f0 : f0 + df] = mean[0, f0 : f0 + df]
        for _ in range(2):
            t0, dt = rng.integers(0, x.shape[2] - 20), rng.integers(0, 21)
            row[:, t0 : t0 + dt] = mean[0]
    return x, keep, [moved[i] for i in keep]


def fit(
    model,
    mel: np.ndarray,
    teacher: np.ndarray,
    fit_idx,
    val_idx,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    seed: int,
):
    """Adam on MSE of standardised embeddings; the weights of the best validation epoch are kept."""
    import copy

    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_all = torch.from_numpy(mel.astype(np.float32))
    t_all = torch.from_numpy(teacher.astype(np.float32))
    model.mel_mean.copy_(x_all[fit_idx].mean(dim=(0, 2)))
    model.mel_std.copy_(x_all[fit_idx].std(dim=(0, 2)).clamp_min(1e-3))
    model.embed_mean.copy_(t_all[fit_idx].mean(dim=(0, 1)))
    model.embed_std.copy_(t_all[fit_idx].std(dim=(0, 1)).clamp_min(1e-3))
    starts = teacher_starts(teacher.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * -(-len(fit_idx) // batch_size))

    def loss_of(idx, view_rng=None):
        x, target, at = x_all[idx], t_all[idx], starts
        if view_rng is not None:
            x, keep, at = augment(x, starts, view_rng, model.frame_seconds)
            target = target[:, keep]
        out = model(x, at)
        return (((out - target) / model.embed_std) ** 2).mean()

    best, best_state, best_epoch, history = float("inf"), None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(fit_idx)
        total = 0.0
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            loss = loss_of(idx, rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = sum(
                float(loss_of(val_idx[b : b + 64])) * len(val_idx[b : b + 64]) for b in range(0, len(val_idx), 64)
            ) / len(val_idx)
        history.append({"epoch": epoch, "train_mse": total / len(order), "val_mse": val})
        print(f"epoch {epoch:3d}  train {total / len(order):.4f}  val {val:.4f}", flush=True)
        if val < best:
            best, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return best_epoch, best, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a MIREX-like dataset folder")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for student.safetensors + student.json (default: mer_tag/weights/musicnn_student)",
    )
    parser.add_argument("--cache", default=".cache/distill")
    parser.add_argument(
        "--preset",
        default="default",
        help="whose [audio.features] the student hears and whose split's test artists are left out",
    )
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--patience", type=int, default=25)
    parser.add_argument("--channels", default="256,256,256,256")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from mer_tag.features import AudioConfig, config_from_json
    from mer_tag.models.student import WEIGHTS_DIR, MusicnnStudent
    from mer_tag.train.datasets import artist_group, load_dataset
    from mer_tag.train.recipe import load_preset
    from mer_tag.train.splits import grouped_holdout, preset_split

    torch.set_num_threads(max(1, args.jobs))
    dataset = load_dataset(args.data)
    examples = dataset.examples
    y = np.array([e.label for e in examples])
    groups = np.array([artist_group(e.artist, e.id) for e in examples])
    config = load_preset(args.preset)
    features = config_from_json(AudioConfig, config["audio"]["features"])  # what the preset's model will hear
    if features.frontend != "musicnn_student":
        parser.error(f"preset {args.preset!r} does not listen through the student (frontend {features.frontend!r})")
    split = preset_split(y, groups, config)
    dev = np.array(sorted(split["train"] + split["val"]))
    print(f"{len(dev)} songs (the split's train + val; {len(split['test'])} test songs left out)", flush=True)

    data = build_data([examples[i].audio_path for i in dev], features, Path(args.cache), args.jobs)
    kept = dev[data["index"]]
    fit_local, val_local = grouped_holdout(y[kept], groups[kept], 0.15, args.seed)  # whole artists for early stopping
    channels = tuple(int(c) for c in args.channels.split(","))
    model = MusicnnStudent(
        n_mels=features.n_mels,
        channels=channels,
        kernels=(5,) + (3,) * (len(channels) - 1),
        frame_seconds=features.hop_length / features.sample_rate,
        dropout=args.dropout,
    )
    started = time.time()
    best_epoch, best_val, history = fit(
        model,
        data["mel"],
        data["teacher"],
        fit_local,
        val_local,
        args.epochs,
        args.batch_size,
        args.lr,
        args.patience,
        args.seed,
    )
    out = Path(args.out) if args.out else WEIGHTS_DIR
    meta = {
        "features": asdict(features),
        "teacher": "musicnn MSD_musicnn penultimate",
        "songs": int(len(kept)),
        "best_epoch": best_epoch,
        "val_mse": round(best_val, 4),
        "macs_per_second": round(model.macs_per_second()),
        "seconds": round(time.time() - started),
        "command": "python tools/distill_musicnn.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    model.save(out, meta)
    (out / "history.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    print(f"best epoch {best_epoch}, validation MSE {best_val:.4f} (standardised); student in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
