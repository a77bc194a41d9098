"""The networks and what runs them: the audio CRNNs and frozen front-ends, the lyrics encoder + head, the MIDI
models (an event BiGRU, or note statistics into an MLP as the shipped model has), the fusion and the
valence–arousal head; beside the nn.Modules, the functions every caller shares to run them (`load_frontend`,
the front-ends' `embed_*`, the lyrics windows, the fusion's input).

Every model is built from a plain dict of dimensions (`{"arch": name, ...}`) that the bundle stores
beside its weights, so a checkpoint rebuilds its own model.
"""

from __future__ import annotations


def build(dims: dict):
    """The nn.Module described by `dims` (its 'arch' key names the class)."""
    from mer_tag.models import crnn, ensemble, fusion, lyrics, midi, quadrant, valence

    classes = {
        "crnn": crnn.CRNN,
        "wijaya_cnn": crnn.WijayaCNN,
        "wijaya_crnn": crnn.WijayaCRNN,
        "musicnn_crnn": crnn.MusicnnCRNN,
        "lyrics": lyrics.LyricsClassifier,
        "midi_bigru": midi.MidiBiGRU,
        "midi_stats": midi.MidiStats,
        "fusion": fusion.LateFusion,
        "ensemble": ensemble.Ensemble,
        "quadrant": quadrant.QuadrantHead,
        "lyrics_valence": valence.LyricsValence,
    }
    arch = dims["arch"]
    if arch not in classes:
        raise ValueError(f"unknown model architecture {arch!r}")
    kwargs = {k: v for k, v in dims.items() if k != "arch"}
    if arch == "ensemble":  # its members are models of their own
        kwargs["members"] = [build(member) for member in kwargs["members"]]
    module = classes[arch](**kwargs)
    module.dims = dict(dims)  # saved in the bundle's card, so the checkpoint rebuilds this module
    return module


def combine(members: list):
    """One module predicting like the mean of `members` (an ensemble.Ensemble of copies of their weights; dims
    kept for the card); a single model is itself."""
    if len(members) == 1:
        return members[0]
    ensemble = build({"arch": "ensemble", "members": [m.dims for m in members]})
    for target, source in zip(ensemble.members, members):
        target.load_state_dict(source.state_dict())
    return ensemble.eval()


FROZEN_FRONTENDS = ("musicnn", "musicnn_student")  # pretrained embedders run before a trained audio head


def _frozen(frontend: str):
    """(model class, embed function, weights file) of a frozen pretrained front-end; None for 'logmel'."""
    if frontend == "musicnn":
        from mer_tag.models import musicnn

        return musicnn.Musicnn, musicnn.embed_patches, musicnn.WEIGHTS_PATH
    if frontend == "musicnn_student":
        from mer_tag.models import student

        return student.MusicnnStudent, student.embed_chunks, student.WEIGHTS_DIR / student.WEIGHTS_FILE
    return None


def load_frontend(frontend: str):
    """(model, embed) for a frozen pretrained front-end, or (None, None) for 'logmel' (the CNN is trained).

    `embed(model, features)` turns a [chunks, ...] feature tensor into [chunks, windows, 200] embeddings;
    training's feature extraction and both scan engines call it, so they cannot drift apart.
    """
    frozen = _frozen(frontend)
    return (frozen[0].load(), frozen[1]) if frozen else (None, None)


def check_frontend_features(audio_config) -> None:
    """ValueError when `audio_config`'s features are not what its frozen front-end was trained on (only the
    student records them; musicnn makes its own mel patches)."""
    if audio_config.frontend == "musicnn_student":
        from mer_tag.models.student import feature_mismatch

        problem = feature_mismatch(audio_config)
        if problem:
            raise ValueError(problem)


def frontend_sha256(frontend: str) -> str | None:
    """sha256 of a frozen front-end's weights file (feature caches and bundles key on it), None for 'logmel'."""
    frozen = _frozen(frontend)
    if frozen is None:
        return None
    from mer_tag.models.musicnn import weights_sha256

    return weights_sha256(frozen[2])
