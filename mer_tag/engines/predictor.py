"""A loaded model run on batches of prepared tracks → one row per track. Both engines run it: the local
engine in its own process, the Ray engine in each model actor (or, on a one-node Ray the scan started itself,
in the driver).

The audio chunks of every track in a batch share forward passes, and so do their lyrics; then each track's
branch probabilities go through the fusion (`models.fusion.fusion_input`: "no lyrics" is an input).
"""

from __future__ import annotations

import json

import numpy as np

from mer_tag.models.precision import encoder_autocast
from mer_tag.models.precision import resolve as resolve_precision
from mer_tag.prepare import Prepared

AUDIO_BATCH = 16  # chunks per audio forward pass
# Every probability a row holds (confidence, prob_cluster_k, runner_up_confidence, prob_quadrant_k, valence,
# arousal, the timeline's confidence) is rounded here, where rows are made, so every engine and every format
# writes the same digits: 4 decimals, a step of 0.0001, far finer than the model can tell two songs apart
# (docs/output.md). The cluster and runner-up are chosen before rounding.
PROB_DECIMALS = 4


def probability(p) -> float:
    """A probability as a row holds it."""
    return round(float(p), PROB_DECIMALS)


class Predictor:
    """The loaded bundle and the frozen front-end it needs, run on batches of prepared tracks."""

    def __init__(self, bundle, timeline: bool = False, precision: str = "auto"):
        import torch

        from mer_tag.models import load_frontend

        self.torch = torch
        self.bundle = bundle
        self.timeline = timeline
        self.precision = resolve_precision(precision)
        self.names = bundle.labels.names
        self.frontend, self.embed = load_frontend(bundle.audio_config.frontend)  # (None, None): a trained CNN
        self.tokenizer = None  # with MiniLM, loaded by `_lyrics_encoder` when the first lyrics arrive

    def _lyrics_encoder(self):
        """The lyrics model with MiniLM attached, and the tokenizer, loaded on first use: a library without
        lyrics never pays for them (0.14 CPU-s and about 90 MB), and its first rows do not wait on them."""
        model = self.bundle.models["lyrics"]
        if self.tokenizer is None:
            from mer_tag.models.lyrics import load_tokenizer

            model.attach_encoder()
            model.encoder.to(next(model.head.parameters()).device)  # beside its head (a Ray actor's GPU)
            model.eval()
            self.tokenizer = load_tokenizer()
        return model

    def audio_probs(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """[n_chunks, ...] features → ([n_chunks, K] chunk probabilities, [n_chunks, D] each chunk's mean
        front-end embedding, [n_chunks, 50] each chunk's mean musicnn tag probability over its windows), the
        last two None without a frozen front-end (the tags also without a head that reads them): they feed
        the valence–arousal head."""
        torch = self.torch
        model = self.bundle.models["audio"]
        head = self.bundle.models.get("quadrant")
        tag_layer = (head.tag_weight, head.tag_bias) if head is not None and "tags" in head.inputs else None
        probs, pooled, tags = [], [], []
        with torch.inference_mode():
            for start in range(0, len(feats), AUDIO_BATCH):
                x = torch.from_numpy(feats[start : start + AUDIO_BATCH].astype(np.float32))
                if self.frontend is not None:
                    with self._encoder_precision():
                        x = self.embed(self.frontend, x).float()
                    pooled.append(x.mean(1).numpy())  # every chunk has the same number of windows
                    if tag_layer is not None:
                        tags.append(torch.sigmoid(x @ tag_layer[0].T + tag_layer[1]).mean(1).numpy())
                probs.append(torch.softmax(model(x), -1).numpy())
        return (
            np.concatenate(probs),
            np.concatenate(pooled) if pooled else None,
            np.concatenate(tags) if tags else None,
        )

    def lyrics_probs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """([songs, K] probabilities of several songs' lyrics, [songs] their words' valence or None without a
        lyrics valence model): every token window of every song in one forward pass
        (`LyricsClassifier.embed_songs`, as training embeds them)."""
        from mer_tag.features import lyrics_windows
        from mer_tag.models.lyrics import stack_windows

        torch = self.torch
        model = self._lyrics_encoder()
        windows = [lyrics_windows(text, self.tokenizer, self.bundle.lyrics_config) for text in texts]
        words = self.bundle.models.get("lyrics_valence")
        with torch.inference_mode():
            with self._encoder_precision():
                songs = model.embed_songs(*stack_windows(windows))
            songs = songs.float()
            valence = words(songs).numpy() if words is not None else None
            return torch.softmax(model(songs), -1).numpy(), valence

    def _encoder_precision(self):
        """bf16 autocast around the frozen encoders where the CPU does bf16 natively: 1.8 × faster on
        MiniLM, 1.9 × on the student (docs/performance.md). The trained heads and the fusion stay fp32."""
        return encoder_autocast(self.precision)

    def midi_probs(self, midi: tuple) -> np.ndarray:
        torch = self.torch
        pitch, cont, length = midi
        with torch.inference_mode():  # copies (a few kB): arrays a Ray task returned are read-only
            logits = self.bundle.models["midi"](
                torch.tensor(pitch)[None], torch.tensor(cont)[None], torch.tensor([int(length)])
            )
            return torch.softmax(logits, -1)[0].numpy()

    def fuse(self, branch_probs: dict[str, np.ndarray | None]) -> np.ndarray:
        from mer_tag.models.fusion import fusion_input

        torch = self.torch
        fusion = self.bundle.models["fusion"]
        log_probs, present = fusion_input([branch_probs.get(b) for b in fusion.branches], len(self.names))
        with torch.inference_mode():
            logits = fusion(torch.from_numpy(log_probs)[None], torch.from_numpy(present)[None])
            return torch.softmax(logits, -1)[0].numpy()

    def quadrant_probs(self, features: np.ndarray) -> np.ndarray:
        """[4] quadrant probabilities from a track's head input [D] (`valence.head_features`)."""
        torch = self.torch
        with torch.inference_mode():
            logits = self.bundle.models["quadrant"](torch.from_numpy(features.astype(np.float32))[None])
            return torch.softmax(logits, -1)[0].numpy()

    def valence_columns(self, item: Prepared, sound: dict, words_valence: float | None) -> dict:
        """The valence–arousal columns: the head on the track's sound (its mean embedding, tag prior and
        tonal features, as its card's inputs say), then, where the track has lyrics and the model a lyrics
        valence, the quadrants tilted by what the words say (`valence.lyrics_shift`)."""
        from mer_tag.valence import head_features, lyrics_shift, tilt_quadrants

        head = self.bundle.models["quadrant"]
        probs = self.quadrant_probs(head_features(head.inputs, sound["embedding"], sound.get("tags"), item.tonal))
        if words_valence is not None:
            fusion = self.bundle.models["lyrics_valence"].fusion.numpy()
            probs = tilt_quadrants(probs, lyrics_shift(float(probs[0] + probs[3]), words_valence, fusion))
        return quadrant_columns(probs)

    def rows(self, items: list[Prepared]) -> list[dict]:
        """One output row per prepared track; the audio chunks and the lyrics of all ok tracks are batched."""
        ok = [it for it in items if it.error is None]
        audio: dict[int, np.ndarray] = {}  # id(item) → its chunks' probabilities
        sound: dict[int, dict] = {}  # id(item) → its mean front-end embedding and tag prior over the whole song
        lyrics: dict[int, np.ndarray] = {}  # id(item) → its lyrics' probabilities
        words: dict[int, float] = {}  # id(item) → its words' valence
        chunks = [(id(it), it.audio) for it in ok if it.audio is not None]  # every ok track has audio
        if chunks:
            chunk_probs, chunk_pooled, chunk_tags = self.audio_probs(np.concatenate([feats for _, feats in chunks]))
            bounds = np.cumsum([0] + [len(feats) for _, feats in chunks])
            for i, (key, _) in enumerate(chunks):
                part = slice(bounds[i], bounds[i + 1])
                audio[key] = chunk_probs[part]
                if chunk_pooled is not None:  # every chunk has as many windows: the mean of means is the mean
                    sound[key] = {"embedding": chunk_pooled[part].mean(0)}
                    if chunk_tags is not None:
                        sound[key]["tags"] = chunk_tags[part].mean(0)
        sung = [(id(it), it.lyrics) for it in ok if it.lyrics] if "lyrics" in self.bundle.models else []
        if sung:
            probs, valence = self.lyrics_probs([text for _, text in sung])
            lyrics = dict(zip([key for key, _ in sung], probs))
            if valence is not None:
                words = dict(zip([key for key, _ in sung], valence.tolist()))
        return [
            self._row(it, audio.get(id(it)), lyrics.get(id(it)), sound.get(id(it)), words.get(id(it))) for it in items
        ]

    def _row(
        self,
        item: Prepared,
        chunk_probs: np.ndarray | None,
        lyrics_probs: np.ndarray | None,
        sound: dict | None = None,
        words_valence: float | None = None,
    ) -> dict:
        row = base_row(item, self.bundle.ref, len(self.names), self.timeline)
        if item.error is not None:
            return row
        audio_probs = chunk_probs.mean(0) if chunk_probs is not None and "audio" in self.bundle.models else None
        probs = {"audio": audio_probs, "lyrics": lyrics_probs}
        if item.midi is not None and "midi" in self.bundle.models:
            probs["midi"] = self.midi_probs(item.midi)
        fused = self.fuse(probs)
        best, second = (int(k) for k in np.argsort(-fused, kind="stable")[:2])
        row.update(cluster=best + 1, cluster_name=self.names[best], confidence=probability(fused[best]))
        row.update({f"prob_cluster_{k + 1}": probability(p) for k, p in enumerate(fused)})
        row.update(
            runner_up=second + 1, runner_up_name=self.names[second], runner_up_confidence=probability(fused[second])
        )
        if sound is not None and "quadrant" in self.bundle.models:
            row.update(self.valence_columns(item, sound, words_valence))
        from mer_tag.models.fusion import BRANCHES

        for branch in BRANCHES:
            if (branch_probs := probs.get(branch)) is not None:
                row[f"{branch}_cluster"] = int(np.argmax(branch_probs)) + 1
        if self.timeline and chunk_probs is not None:
            chunk_s = self.bundle.audio_config.chunk_seconds
            row["timeline"] = json.dumps(
                [
                    {
                        "start_s": round(s, 2),
                        "end_s": round(min(s + chunk_s, item.duration_s), 2),
                        "cluster": int(p.argmax()) + 1,
                        "confidence": probability(p.max()),
                    }
                    for s, p in zip(item.chunk_starts, chunk_probs)
                ]
            )
        return row


def quadrant_columns(probs: np.ndarray) -> dict:
    """The valence–arousal columns of a row from the four quadrant probabilities."""
    from mer_tag.labels import QUADRANT_WORDS
    from mer_tag.models.quadrant import valence_arousal

    best = int(probs.argmax())
    valence, arousal = valence_arousal(probs)
    return {
        "quadrant": best + 1,
        "quadrant_name": QUADRANT_WORDS[best],
        **{f"prob_quadrant_{k + 1}": probability(p) for k, p in enumerate(probs)},
        "valence": probability(valence),
        "arousal": probability(arousal),
    }


def base_row(item: Prepared, model_ref: str, n_classes: int, timeline: bool) -> dict:
    """A track's row without a prediction: what an error row holds, and where an ok row starts."""
    from mer_tag.sinks.columns import columns
    from mer_tag.sinks.paths import path_text

    row = dict.fromkeys(columns(n_classes, timeline))
    row.update(
        path=path_text(item.track.path),  # lossless for a name that is not UTF-8 (sinks/paths.py)
        status="error" if item.error else "ok",
        error=item.error,
        notes="; ".join(item.notes) or None,
        size=item.size,
        mtime=item.mtime,
        title=item.tags.get("title"),
        artist=item.tags.get("artist"),
        album=item.tags.get("album"),
        duration_s=None if item.duration_s is None else round(item.duration_s, 3),
        lyrics_source=item.lyrics_source if item.error is None else "none",
        lyrics_path=path_text(item.track.lyrics_path) if item.lyrics_source == "sidecar" else None,
        midi_path=path_text(item.track.midi_path) if item.midi is not None else None,
        model=model_ref,
    )
    return row
