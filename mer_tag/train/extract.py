"""Feature extraction for a labelled dataset, with a cache keyed by file identity and every setting.

A changed file (size or mtime), a changed setting or a changed feature-code version gives a new key, so
stale features are never reused. Audio is decoded in worker processes; the pretrained front-ends
(musicnn or its student, the lyrics encoder) run in this process in batches.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig
from mer_tag.predict import init_decode_worker

FEATURE_VERSION = 1  # bump when feature code changes meaning: every cached entry is then redone


class FeatureCache:
    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder else None

    def key(self, kind: str, path: Path, settings: dict) -> str:
        stat = path.stat()
        ident = [FEATURE_VERSION, kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns, settings]
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def load(self, kind: str, key: str) -> dict | None:
        if self.folder is None:
            return None
        file = self.folder / kind / f"{key}.npz"
        if not file.exists():
            return None
        try:
            with np.load(file) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return None  # a torn cache entry is simply recomputed

    def save(self, kind: str, key: str, arrays: dict) -> None:
        if self.folder is None:
            return
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(folder / f"{key}.npz")


@dataclass
class Features:
    """Per-example features; a None entry means the modality is absent for that example."""

    audio: list = field(default_factory=list)  # [n_chunks, ...] arrays
    lyrics: list = field(default_factory=list)  # [hidden] song embedding (frozen encoder) or token windows
    midi: list = field(default_factory=list)  # (pitch [L], cont [L, 3], length)
    problems: list = field(default_factory=list)  # (path, reason)


def _audio_job(args) -> tuple[np.ndarray | None, str | None]:
    path, config = args
    from mer_tag.features import chunk_features, cut_chunks, is_silent
    from mer_tag.sources.audio import AudioError, load_audio

    try:
        signal = load_audio(path, sr=config.sample_rate)
    except AudioError as exc:
        return None, str(exc)
    if signal.size < config.min_seconds * config.sample_rate:
        return None, f"too short ({signal.size / config.sample_rate:.2f} s)"
    if is_silent(signal):
        return None, "silent"
    return chunk_features(cut_chunks(signal, config), config).astype(np.float16), None


def extract_audio(paths: list[Path], config: AudioConfig, cache: FeatureCache, jobs: int, progress) -> tuple[list, list]:
    """Log-mel chunks (or a frozen front-end's window embeddings) per file; (features, problems)."""
    from mer_tag.models import FROZEN_FRONTENDS, check_frontend_features, frontend_sha256

    check_frontend_features(config)  # a preset that would feed the student a log-mel it never learned
    settings = asdict(config)
    if config.frontend in FROZEN_FRONTENDS:
        settings["frontend_weights"] = frontend_sha256(config.frontend)
    keys = [cache.key("audio", p, settings) for p in paths]
    out = [cache.load("audio", k) for k in keys]
    todo = [i for i, hit in enumerate(out) if hit is None]
    problems = []
    embedder = _frozen_embedder(config.frontend) if config.frontend in FROZEN_FRONTENDS and todo else None
    with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=init_decode_worker) as pool:
        results = pool.map(_audio_job, [(paths[i], config) for i in todo], chunksize=4)
        for i, (feats, error) in progress(zip(todo, results), total=len(todo), desc="audio features"):
            if error:
                problems.append((str(paths[i]), error))
                out[i] = {"error": np.array(error)}
            else:
                if embedder is not None:
                    feats = embedder(feats)
                out[i] = {"x": feats}
            cache.save("audio", keys[i], out[i])
    for i, entry in enumerate(out):
        if "error" in entry and i not in todo:
            problems.append((str(paths[i]), str(entry["error"])))
    return [entry.get("x") for entry in out], problems


def _frozen_embedder(frontend: str):
    """[chunks, ...] features → [chunks, windows, 200] float16 embeddings of a frozen pretrained front-end."""
    import torch

    from mer_tag.models import load_frontend

    model, embed = load_frontend(frontend)

    def embed_features(feats: np.ndarray) -> np.ndarray:
        return embed(model, torch.from_numpy(feats)).numpy().astype(np.float16)

    return embed_features


def extract_lyrics(paths: list[Path | None], config: LyricsConfig, frozen: bool, pooling: str,
                   cache: FeatureCache, progress) -> tuple[list, list]:
    """Per song: the pooled frozen-encoder embedding [hidden] (frozen) or token windows (fine-tuning)."""
    import torch

    from mer_tag.features import lyrics_windows
    from mer_tag.models.lyrics import LyricsClassifier, load_tokenizer
    from mer_tag.sources.lyrics import LyricsError, clean_lyrics, read_lyrics_file

    tokenizer = load_tokenizer()
    encoder = None
    settings = {**asdict(config), "frozen": frozen, "pooling": pooling}
    out, problems = [], []
    for path in progress(paths, total=len(paths), desc="lyrics features"):
        if path is None:
            out.append(None)
            continue
        try:
            text = clean_lyrics(read_lyrics_file(path))
        except (LyricsError, OSError) as exc:
            problems.append((str(path), str(exc)))
            out.append(None)
            continue
        windows = lyrics_windows(text, tokenizer, config)
        if not frozen:
            out.append(windows)
            continue
        key = cache.key("lyrics", path, settings)
        hit = cache.load("lyrics", key)
        if hit is None:
            if encoder is None:
                encoder = LyricsClassifier(pooling=pooling)
                encoder.attach_encoder()
                encoder.eval()
            with torch.inference_mode():
                emb = encoder.encode(torch.from_numpy(windows["input_ids"]), torch.from_numpy(windows["attention_mask"]))
            hit = {"x": emb.mean(0).numpy()}
            cache.save("lyrics", key, hit)
        out.append(hit["x"])
    return out, problems


def extract_midi(paths: list[Path | None], config: MidiConfig, progress) -> tuple[list, list]:
    from mer_tag.features import midi_sequence
    from mer_tag.sources.midi import MidiError, read_midi_notes

    out, problems = [], []
    for path in progress(paths, total=len(paths), desc="MIDI features"):
        if path is None:
            out.append(None)
            continue
        try:
            out.append(midi_sequence(read_midi_notes(path), config))
        except (MidiError, OSError) as exc:
            problems.append((str(path), str(exc)))
            out.append(None)
    return out, problems


def extract_branch(name: str, config: dict, examples, cache: FeatureCache, jobs: int, progress) -> tuple[list, list]:
    """One branch's features for `examples`, with the settings of the preset `config`; (features, problems).

    The one place a preset section becomes extraction calls: `mer-tag train` and tools/crossval.py share it.
    """
    from mer_tag.features import config_from_json

    section = config.get(name, {})
    settings = section.get("features", {})
    if name == "audio":
        return extract_audio([e.audio_path for e in examples], config_from_json(AudioConfig, settings), cache, jobs,
                             progress)
    if name == "lyrics":
        return extract_lyrics([e.lyrics_path for e in examples], config_from_json(LyricsConfig, settings),
                              section.get("encoder", "frozen") != "finetune",
                              section.get("model", {}).get("pooling", "mean"), cache, progress)
    return extract_midi([e.midi_path for e in examples], config_from_json(MidiConfig, settings), progress)
