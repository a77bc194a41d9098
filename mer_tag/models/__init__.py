"""nn.Modules only: the audio CRNNs, the lyrics encoder + head, the MIDI BiGRU, and the fusion.

Every model is built from a plain dict of dimensions (`{"arch": name, ...}`) that the bundle stores
beside its weights, so a checkpoint rebuilds its own model.
"""

from __future__ import annotations


def build(dims: dict):
    """The nn.Module described by `dims` (its 'arch' key names the class)."""
    from mer_tag.models import crnn, ensemble, fusion, lyrics, midi

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
    }
    arch = dims["arch"]
    if arch not in classes:
        raise ValueError(f"unknown model architecture {arch!r}")
    kwargs = {k: v for k, v in dims.items() if k != "arch"}
    module = classes[arch](**kwargs)
    module.dims = dict(dims)  # saved in the bundle's card, so the checkpoint rebuilds this module
    return module
