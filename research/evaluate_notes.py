"""Score the transcription feature families (issue #28) like research/evaluate.py: 4Q CV with the paired
change against the embedding alone, and cross-set AUC both ways.

    .venv/bin/python research/evaluate_notes.py
"""

from __future__ import annotations

import numpy as np
from evaluate import join, load, report

from mer_tag.expressive import FEATURE_NAMES

FAMILIES = {
    "expressive technique": [
        "vibrato_share", "vibrato_ratio", "vibrato_rate", "vibrato_extent", "vibrato_coverage", "glissando_share",
        "glissando_extent", "glissando_up_share", "tremolo_share", "tremolo_rate", "pitch_wobble",
    ],
    "articulation": ["staccato_share", "legato_ratio", "note_density", "note_duration", "note_strength"],
    "texture": ["layers_mean", "layers_std", "layers_max", "layers_changes", "silence_share"],
    "melody": [
        "melody_range", "melody_mean", "melody_std", "melody_interval", "melody_up_share", "melody_down_share",
        "melody_repeat_share", "melody_leap_share", "bass_mean", "pitch_range",
    ],
}  # fmt: skip
LOG_SCALED = {"vibrato_ratio", "note_density", "layers_changes", "note_duration"}  # long right tails


def tables():
    out = []
    for name in ("4q", "mirex"):
        cheap, notes = load(f"{name}_cheap.npz"), load(f"{name}_notes.npz")
        t = join([cheap, notes])
        t["logtags"] = np.log(t["tags"] / (1 - t["tags"]))
        t["key"], t["tonic"] = t["tonal"][:, 3:10], t["tonal"][:, 10:]
        for source in ("notes_full", "notes_excerpt"):
            values = np.array(t[source], dtype=np.float64)
            for i, feature in enumerate(FEATURE_NAMES):
                if feature in LOG_SCALED:
                    values[:, i] = np.log1p(values[:, i])
            for family, names in FAMILIES.items():
                t[f"{source}:{family}"] = values[:, [FEATURE_NAMES.index(n) for n in names]]
            t[f"{source}:all"] = values
        out.append(t)
    return out


if __name__ == "__main__":
    q4, mx = tables()
    print(f"{len(q4['id'])} 4Q songs, {len(mx['id'])} MIREX-like songs")
    sets = {"embedding (today)": ["emb"]}
    for family in FAMILIES:
        sets[f"embedding + {family}"] = ["emb", f"notes_full:{family}"]
    sets["embedding + all note features"] = ["emb", "notes_full:all"]
    sets["embedding + all note features (10-s excerpt)"] = ["emb", "notes_excerpt:all"]
    sets["embedding + expressive (10-s excerpt)"] = ["emb", "notes_excerpt:expressive technique"]
    sets["note features alone"] = ["notes_full:all"]
    sets["tags + key + tonic"] = ["logtags", "key", "tonic"]
    sets["tags + key + tonic + all note features"] = ["logtags", "key", "tonic", "notes_full:all"]
    sets["tags + key + tonic + expressive"] = ["logtags", "key", "tonic", "notes_full:expressive technique"]
    report(sets, q4, mx)
