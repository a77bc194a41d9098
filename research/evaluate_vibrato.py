"""Score the lead voice's expressive features (issue #28) by research/ABLATION.md's protocol.

Reads research/out/{4q,mirex}_vibrato.npz (research/extract_vibrato.py: CREPE's contour of each clip's
middle 10 s) beside the cheap tables (new_4q_cheap.npz, new_mirex_cheap.npz: the embedding, the tag prior,
key/mode), describes each contour (research/vibrato.py) and prints:
- each feature alone: valence AUC on 4Q and on the MIREX-like clusters, and whether the direction agrees;
- the table rows (research/evaluate.py's report: 4Q artist-grouped 5 folds × seeds 0 and 1, paired Δ against
  the first row on the same folds; 4Q → MX and MX → 4Q AUC): embedding + contour features against the
  embedding, shipped (tag prior + key/mode) + contour features against shipped, the features alone;
- the cross-set changes with research/boot.py's paired bootstrap interval (1,000 resamples);
- the cost per 30 s of audio.

    .venv/bin/python research/evaluate_vibrato.py            # decoded within 65–1600 Hz, as extracted
    .venv/bin/python research/evaluate_vibrato.py 100        # re-decoded above 100 Hz: the bass left out
"""

from __future__ import annotations

import sys
import time

import numpy as np
from boot import cross_set_scores, interval
from evaluate import OUT, Q_POSITIVE, cheap_tables, join, load, mirex_valence, report
from sklearn.metrics import roc_auc_score
from vibrato import FEATURE_NAMES, describe

FAMILIES = {
    "vibrato": ["vibrato_share", "vibrato_ratio", "vibrato_rate", "vibrato_extent", "vibrato_coverage"],
    "expressive": [
        "vibrato_share", "vibrato_ratio", "vibrato_rate", "vibrato_extent", "vibrato_coverage",
        "glissando_share", "glissando_extent", "glissando_up_share", "pitch_wobble", "pitch_jitter",
    ],
}  # fmt: skip


def contour_table(name: str, fmin: float | None) -> dict:
    """id → FEATURE_NAMES per song; NaN (nothing to measure) filled with the set's median, label-free."""
    from crepe import decode

    raw = load(f"{name}_vibrato.npz")
    t0 = time.process_time()
    rows = []
    for i in range(len(raw["id"])):
        if fmin is None:
            pitch, confidence = raw["pitch"][i], raw["confidence"][i]
        else:
            pitch, confidence = decode(raw["outputs"][i] / 255.0, fmin=fmin)
        rows.append(describe(pitch, confidence))
    seconds = time.process_time() - t0
    values = np.array(rows)
    medians = np.nan_to_num(np.nanmedian(values, 0))  # a feature no song has: 0
    values = np.where(np.isnan(values), medians, values)
    values[:, FEATURE_NAMES.index("note_rate")] = np.log1p(values[:, FEATURE_NAMES.index("note_rate")])
    table = {"id": raw["id"], "vib": values}
    for family, names in FAMILIES.items():
        table[f"vib:{family}"] = values[:, [FEATURE_NAMES.index(n) for n in names]]
    table["cost"] = np.array([raw["sec_net"].sum(), raw["sec_decode"].sum(), seconds, raw["seconds"].sum()])
    return table


def univariate(q4: dict, mx: dict) -> None:
    keep, side = mirex_valence(mx["label"])
    pos4 = Q_POSITIVE[q4["label"]] > 0.5
    print(f"{'feature':20s} 4Q AUC  MIREX AUC  same direction")
    for i, feature in enumerate(FEATURE_NAMES):
        a4, am = roc_auc_score(pos4, q4["vib"][:, i]), roc_auc_score(side[keep], mx["vib"][keep, i])
        print(f"{feature:20s} {a4:.3f}   {am:.3f}      {'yes' if (a4 - 0.5) * (am - 0.5) > 0 else 'NO'}")


def bootstrap(q4: dict, mx: dict, pairs: dict[str, tuple[list[str], list[str]]], C: float = 0.01) -> None:
    keep, side = mirex_valence(mx["label"])
    pos4 = (Q_POSITIVE[q4["label"]] > 0.5).astype(int)
    for name, (base_names, cand_names) in pairs.items():
        base, cand = cross_set_scores(q4, mx, base_names, C), cross_set_scores(q4, mx, cand_names, C)
        d1 = roc_auc_score(side[keep], cand[0]) - roc_auc_score(side[keep], base[0])
        d2 = roc_auc_score(pos4, cand[1]) - roc_auc_score(pos4, base[1])
        lo1, hi1 = interval(side[keep], base[0], cand[0])
        lo2, hi2 = interval(pos4, base[1], cand[1])
        print(
            f"{name:40s} 4Q→MX ΔAUC {d1:+.3f} [{lo1:+.3f}, {hi1:+.3f}]   MX→4Q ΔAUC {d2:+.3f} [{lo2:+.3f}, {hi2:+.3f}]"
        )


def main(fmin: float | None = None) -> None:
    q4c, mxc = cheap_tables("new_")
    q4v, mxv = contour_table("4q", fmin), contour_table("mirex", fmin)
    q4, mx = join([q4c, q4v]), join([mxc, mxv])
    print(f"{len(q4['id'])} 4Q songs, {len(mx['id'])} MIREX-like songs; contours decoded from {fmin or 65} Hz")
    for name, t in (("4Q", q4v), ("MIREX-like", mxv)):
        net, dec, feat, audio = t["cost"]
        print(
            f"cost {name}: network {net / audio * 30:.2f}, decoding {dec / audio * 30:.2f}, notes and features "
            f"{feat / audio * 30:.3f} CPU-s per 30 s of excerpt ({audio / len(t['id']):.0f}-s excerpts)"
        )
    univariate(q4, mx)
    shipped = ["logtags", "key"]
    report(
        {
            "embedding (today)": ["emb"],
            "embedding + vibrato": ["emb", "vib:vibrato"],
            "embedding + expressive": ["emb", "vib:expressive"],
            "embedding + all contour": ["emb", "vib"],
            "contour features alone": ["vib"],
        },
        q4,
        mx,
    )
    report(
        {
            "shipped (tags + key/mode)": shipped,
            "shipped + vibrato": shipped + ["vib:vibrato"],
            "shipped + expressive": shipped + ["vib:expressive"],
            "shipped + all contour": shipped + ["vib"],
        },
        q4,
        mx,
    )
    bootstrap(
        q4,
        mx,
        {
            "embedding → + vibrato": (["emb"], ["emb", "vib:vibrato"]),
            "embedding → + expressive": (["emb"], ["emb", "vib:expressive"]),
            "embedding → + all contour": (["emb"], ["emb", "vib"]),
            "shipped → + vibrato": (shipped, shipped + ["vib:vibrato"]),
            "shipped → + expressive": (shipped, shipped + ["vib:expressive"]),
            "shipped → + all contour": (shipped, shipped + ["vib"]),
        },
    )


if __name__ == "__main__":
    assert OUT.exists()
    main(float(sys.argv[1]) if len(sys.argv) > 1 else None)
