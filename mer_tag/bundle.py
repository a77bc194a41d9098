"""A model is a folder: `card.json` (labels, feature settings, model dimensions, metrics, provenance) and one
safetensors file per branch. The card carries every dimension, so the models rebuild themselves from it;
weights load from safetensors, never pickle, because `--model PATH` may be a stranger's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mer_tag import _fs
from mer_tag.errors import MerTagError
from mer_tag.features import AudioConfig, LyricsConfig, MidiConfig, config_from_json, config_to_json
from mer_tag.labels import LabelSet

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARD_FILE = "card.json"
FORMAT_VERSION = 1

# Which songs a model learned from, as the card records them (`[data] seen`, `[quadrant][data] seen`): each
# song's audio file by a hash of its bytes, so a copy of the dataset elsewhere, or a CSV naming the same files,
# is still known for what it is. 64 bits: 10^6 songs collide with odds of about 10^-7.
SEEN_HASH = "blake2b-64"


class BundleError(MerTagError):
    """A model folder that cannot be used, with a one-line reason."""


@dataclass
class Bundle:
    name: str
    labels: LabelSet
    audio_config: AudioConfig
    lyrics_config: LyricsConfig
    midi_config: MidiConfig
    models: dict = field(default_factory=dict)  # branch name → nn.Module (a missing branch is never used)
    card: dict = field(default_factory=dict)  # everything else: metrics, split, command, versions

    @property
    def ref(self) -> str:
        """How result rows name this model: name@version."""
        return f"{self.name}@{self.card.get('version', '0')}"


def resolve(model: str | Path) -> Path:
    """A bundle folder from a shipped name ('default') or a path."""
    path = Path(model)
    if (path / CARD_FILE).exists():
        return path
    shipped = WEIGHTS_DIR / str(model)
    if (shipped / CARD_FILE).exists():
        return shipped
    raise BundleError(f"no model at {model!r}: expected a folder with {CARD_FILE} or a shipped name (default)")


def read_card(model: str | Path = "default") -> Bundle:
    """The bundle's card (name, version, labels, feature settings) without its weights: no torch needed."""
    folder = resolve(model)
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"unreadable {folder / CARD_FILE}: {exc}") from None
    if card.get("format") != FORMAT_VERSION:
        raise BundleError(f"{folder} has model format {card.get('format')!r}; this mer-tag reads {FORMAT_VERSION}")
    return Bundle(
        name=card["name"],
        labels=LabelSet.from_json(card["labels"]),
        audio_config=config_from_json(AudioConfig, card["features"]["audio"]),
        lyrics_config=config_from_json(LyricsConfig, card["features"]["lyrics"]),
        midi_config=config_from_json(MidiConfig, card["features"]["midi"]),
        card=card,
    )


def load(model: str | Path = "default") -> Bundle:
    """The bundle with every branch's weights loaded, ready to predict."""
    from safetensors.torch import load_file

    from mer_tag import models as model_zoo

    folder = resolve(model)
    bundle = read_card(folder)
    _check_frontend(bundle, folder)
    for branch, dims in bundle.card["models"].items():
        module = model_zoo.build(dims)
        try:
            state = load_file(str(folder / f"{branch}.safetensors"))
            if hasattr(module, "attach_encoder") and any(k.startswith("encoder.") for k in state):
                module.attach_encoder()  # a fine-tuned encoder: build it, then take the stored weights
            missing, unexpected = module.load_state_dict(state, strict=False)
        except (OSError, RuntimeError, ValueError) as exc:  # safetensors raises its own SafetensorError too
            raise BundleError(
                f"{branch} weights do not fit the card or are unreadable: {str(exc).splitlines()[0]}"
            ) from None
        except Exception as exc:
            raise BundleError(f"unreadable {branch} weights: {str(exc).splitlines()[0]}") from None
        # A frozen lyrics encoder is not stored: its weights come from the encoder package.
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise BundleError(
                f"{branch} weights do not fit the card: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        bundle.models[branch] = module.eval()
    if "fusion" not in bundle.models:
        raise BundleError(f"{folder} has no fusion model")
    return bundle


def _check_frontend(bundle: Bundle, folder: Path) -> None:
    """A head trained on one frozen front-end's embeddings means nothing on another's, nor on a front-end fed
    features it was not trained on: refuse both."""
    from mer_tag.models import check_frontend_features, frontend_sha256

    try:
        check_frontend_features(bundle.audio_config)
    except ValueError as exc:
        raise BundleError(f"{folder}: {exc}") from None
    trained_on = bundle.card.get("frontend_weights")  # absent in bundles saved before this check
    if trained_on and trained_on != frontend_sha256(bundle.audio_config.frontend):
        raise BundleError(
            f"{folder} was trained on other {bundle.audio_config.frontend} weights than this mer-tag "
            f"ships (sha256 {trained_on[:12]}…): retrain it with `mer-tag train`"
        )


def save(bundle: Bundle, folder: str | Path) -> Path:
    """Write the bundle to a temp folder beside `folder`, then swap it in (mer_tag._fs.atomic_folder): a crash
    never leaves half a model, and a reader finds the old model or the new one, never none."""
    from safetensors.torch import save_file

    from mer_tag.models import frontend_sha256

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    card = dict(bundle.card)
    card.update(
        format=FORMAT_VERSION,
        name=bundle.name,
        labels=bundle.labels.to_json(),
        features={
            "audio": config_to_json(bundle.audio_config),
            "lyrics": config_to_json(bundle.lyrics_config),
            "midi": config_to_json(bundle.midi_config),
        },
        models={branch: module.dims for branch, module in bundle.models.items()},
        frontend_weights=frontend_sha256(bundle.audio_config.frontend),  # the frozen front-end it was trained on
    )
    with _fs.atomic_folder(folder) as tmp:  # swapped in whole, replacing an older model in one step
        for branch, module in bundle.models.items():
            state = module.trained_state() if hasattr(module, "trained_state") else module.state_dict()
            save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp / f"{branch}.safetensors"))
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    bundle.card = card
    return folder


def song_fingerprint(path: str | Path) -> str:
    """A song's audio file as the card's `seen` lists know it: the hex blake2b-64 of its bytes."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seen_record(paths) -> dict:
    """The card's record of the songs a model's weights learned from (`paths`: their audio files)."""
    return {"hash": SEEN_HASH, "songs": sorted({song_fingerprint(p) for p in paths})}


def seen_songs(section: dict | None) -> set[str] | None:
    """The fingerprints a card section's `data.seen` lists, or None where the card does not record them (a
    model trained before cards did, or a hand-made one) or records them by another hash."""
    seen = ((section or {}).get("data") or {}).get("seen")
    if not isinstance(seen, dict) or seen.get("hash") != SEEN_HASH:
        return None
    return set(seen.get("songs", []))
