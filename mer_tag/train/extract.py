"""Feature extraction for a labelled dataset, with a cache keyed by file identity and every setting.

Every example goes through mer_tag.prepare, the path every scan engine takes: the same decoding, the same
checks (a truncated, too short or silent file is left out, with its one-line reason in the run's problems),
the same chunks and features, lyrics from a sidecar file or else the audio's tags, the same MIDI events.
Audio is prepared in spawned worker processes; the frozen front-ends (musicnn or its student, the lyrics
encoder) run in this process, in the precision a scan would run them in (`models.precision`: fp32 unless
asked). A changed file (size or mtime), a changed setting or a changed feature-code version gives a new key,
so stale features are never reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig
from mer_tag.library import Track

FEATURE_VERSION = 2  # bump when feature code changes meaning: every cached entry is then redone
# 2: audio prepared as scans prepare it (a truncated file is rejected, not trained on); lyrics keyed by text


class FeatureCache:
    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder else None

    def key(self, kind: str, path: Path, settings: dict) -> str:
        """A file's entry: its path, size and mtime, and the settings."""
        stat = path.stat()
        return self._digest([FEATURE_VERSION, kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns, settings])

    def text_key(self, kind: str, text: str, settings: dict) -> str:
        """A text's entry (lyrics, wherever they were found): the text itself and the settings."""
        return self._digest([FEATURE_VERSION, kind, text, settings])

    @staticmethod
    def _digest(ident: list) -> str:
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
        from mer_tag import _fs

        with _fs.atomic_file(self.folder / kind / f"{key}.npz", suffix=".npz") as tmp:
            np.savez(tmp, **arrays)


def extract_audio(
    paths: list[Path], config: AudioConfig, cache: FeatureCache, jobs: int, progress, precision: str = "fp32"
) -> tuple[list, list]:
    """Chunk features (or a frozen front-end's window embeddings of them, made in `precision`) per file, None
    for a file a scan would reject; (features, problems)."""
    entries, problems = _audio_entries(paths, config, cache, jobs, progress, precision)
    return [entry.get("x") for entry in entries], problems


def extract_tonal(
    paths: list[Path], config: AudioConfig, cache: FeatureCache, jobs: int, progress, precision: str = "fp32"
) -> list:
    """Each file's tonal features (`AudioConfig.tonal`: prepared beside its chunk features, cached with
    them), None for a file a scan would reject or a config without them."""
    entries, _ = _audio_entries(paths, config, cache, jobs, progress, precision)
    return [entry.get("tonal") for entry in entries]


def cache_settings(config: AudioConfig) -> dict:
    """What an audio cache entry's key says of the settings it was made with: every field of `config`, less the
    ones at the value entries were made with before the field existed (they stay valid)."""
    settings = asdict(config)
    if not config.tonal:
        del settings["tonal"]
    if config.dissonance or not config.tonal:  # no tonal features at all: no roughness either way
        del settings["dissonance"]
    return settings


def _audio_entries(paths, config: AudioConfig, cache: FeatureCache, jobs: int, progress, precision: str):
    """Every file's cache entry ({'x', 'tonal'} or {'error'}), made where missing; (entries, problems)."""
    from mer_tag.models import FROZEN_FRONTENDS, check_frontend_features, frontend_sha256
    from mer_tag.prepare import prepare_audio
    from mer_tag.workers import start_pool

    check_frontend_features(config)  # a preset that would feed the student a log-mel it never learned
    settings = cache_settings(config)
    if config.frontend in FROZEN_FRONTENDS:
        settings["frontend_weights"] = frontend_sha256(config.frontend)
        settings.update(_precision_key(precision))
    keys: list = []
    out: list = []  # each file's entry; a cache miss's None is filled in below
    for path in paths:
        try:
            key = cache.key("audio", path, settings)
        except OSError as exc:  # the dataset names it, the disk does not have it: a problem like a bad decode
            keys.append(None)
            out.append({"error": np.array(f"cannot read file ({(exc.strerror or str(exc)).lower()})")})
            continue
        keys.append(key)
        out.append(cache.load("audio", key))
    todo = [i for i, hit in enumerate(out) if hit is None]
    problems = []
    if todo:
        with start_pool(jobs) as pool:  # spawned: the workers import their stack while the front-end loads
            embedder = _frozen_embedder(config.frontend, precision) if config.frontend in FROZEN_FRONTENDS else None
            results = pool.map(prepare_audio, [paths[i] for i in todo], [config] * len(todo), chunksize=4)
            for i, audio in progress(zip(todo, results), total=len(todo), desc="audio features"):
                if audio.error:
                    problems.append((str(paths[i]), audio.error))
                    out[i] = {"error": np.array(audio.error)}
                else:
                    out[i] = {"x": embedder(audio.features) if embedder is not None else audio.features}
                    if audio.tonal is not None:
                        out[i]["tonal"] = audio.tonal
                cache.save("audio", keys[i], out[i])
    for i, entry in enumerate(out):
        if "error" in entry and i not in todo:
            problems.append((str(paths[i]), str(entry["error"])))
    return out, problems


def _precision_key(precision: str) -> dict:
    """What the encoders' precision adds to a cache key: nothing for fp32, so the entries made before there
    was a choice (all fp32) stay valid; a bf16 embedding is never taken for an fp32 one."""
    from mer_tag.models.precision import resolve

    resolved = resolve(precision)
    return {} if resolved == "fp32" else {"encoder_precision": resolved}


def _frozen_embedder(frontend: str, precision: str):
    """[chunks, ...] features → [chunks, windows, 200] float16 embeddings of a frozen pretrained front-end,
    run as the predictor runs it (`models.precision.encoder_autocast`)."""
    import torch

    from mer_tag.models import load_frontend
    from mer_tag.models.precision import encoder_autocast

    model, embed = load_frontend(frontend)

    def embed_features(feats: np.ndarray) -> np.ndarray:
        with encoder_autocast(precision):
            embedded = embed(model, torch.from_numpy(feats))
        return embedded.float().numpy().astype(np.float16)

    return embed_features


def extract_lyrics(
    tracks: list[Track],
    config: LyricsConfig,
    frozen: bool,
    pooling: str,
    cache: FeatureCache,
    progress,
    precision: str = "fp32",
) -> tuple[list, list]:
    """Per song: the frozen encoder's song embedding [hidden] (frozen, made in `precision`) or token windows
    (fine-tuning), from the lyrics a scan would find (the sidecar file, else the audio's tags); None for a
    song without."""
    import torch

    from mer_tag.features import lyrics_windows
    from mer_tag.models.lyrics import LyricsClassifier, load_tokenizer, stack_windows
    from mer_tag.models.precision import encoder_autocast
    from mer_tag.prepare import read_lyrics

    tokenizer = load_tokenizer()
    encoder = None
    settings = {**asdict(config), "frozen": frozen, "pooling": pooling, **_precision_key(precision)}
    out: list = []
    problems: list[tuple[str, str]] = []
    for track in progress(tracks, total=len(tracks), desc="lyrics features"):
        text, _, note = read_lyrics(track)
        if note:
            problems.append((str(track.lyrics_path), note))
        if text is None:
            out.append(None)
            continue
        windows = lyrics_windows(text, tokenizer, config)
        if not frozen:
            out.append(windows)
            continue
        key = cache.text_key("lyrics", text, settings)
        hit = cache.load("lyrics", key)
        if hit is None:
            if encoder is None:
                encoder = LyricsClassifier(pooling=pooling)
                encoder.attach_encoder()
                encoder.eval()
            with torch.inference_mode(), encoder_autocast(precision):
                hit = {"x": encoder.embed_songs(*stack_windows([windows]))[0].numpy()}
            cache.save("lyrics", key, hit)
        out.append(hit["x"])
    return out, problems


def extract_midi(tracks: list[Track], config: MidiConfig, progress) -> tuple[list, list]:
    """Per song: the MIDI event sequence a scan would read, None for a song without a usable MIDI file."""
    from mer_tag.prepare import read_midi

    out, problems = [], []
    for track in progress(tracks, total=len(tracks), desc="MIDI features"):
        sequence, note = read_midi(track, config)
        if note:
            problems.append((str(track.midi_path), note))
        out.append(sequence)
    return out, problems


def extract_branch(
    name: str, config: dict, examples, cache: FeatureCache, jobs: int, progress, precision: str = "fp32"
) -> tuple[list, list]:
    """One branch's features for `examples`, with the settings of the preset `config` and the frozen encoders
    in `precision`; (features, problems).

    The one place a preset section becomes extraction calls: `mer-tag train` and `mer-tag crossval` share it.
    """
    from mer_tag.features import config_from_json

    section = config.get(name, {})
    settings = section.get("features", {})
    if name == "audio":
        return extract_audio(
            [e.audio_path for e in examples], config_from_json(AudioConfig, settings), cache, jobs, progress, precision
        )
    tracks = [Track(e.audio_path, e.lyrics_path, e.midi_path) for e in examples]
    if name == "lyrics":
        return extract_lyrics(
            tracks,
            config_from_json(LyricsConfig, settings),
            section.get("encoder", "frozen") != "finetune",
            section.get("model", {}).get("pooling", "mean"),
            cache,
            progress,
            precision,
        )
    return extract_midi(tracks, config_from_json(MidiConfig, settings), progress)
