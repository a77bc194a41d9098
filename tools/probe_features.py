"""Would other features help? The shipped heads cross-validated on alternatives to what they read.

A command line over mer_tag/train/probe.py (its docstring lists the probes):

    python tools/probe_features.py --data ../shared/datasets/mirex-mood --seeds 3
    python tools/probe_features.py --data ../shared/datasets/mirex-mood --probe offsets --probe tfidf
    python tools/probe_features.py --fusion-probs cv.npz        # from `mer-tag crossval --branch fused --probs`
"""

import argparse

from mer_tag.train.probe import AUDIO_PROBES, LYRICS_PROBES, run_probes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the dataset (audio and lyrics probes)")
    parser.add_argument("--fusion-probs", help="fold probabilities from `mer-tag crossval --branch fused --probs`")
    parser.add_argument(
        "--probe", action="append", choices=AUDIO_PROBES + LYRICS_PROBES, help="one probe (repeatable; default: all)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", default=".cache/features", help="feature cache (the student's log-mel inputs)")
    args = parser.parse_args(argv)
    if not args.data and not args.fusion_probs:
        parser.error("--data is needed for the audio and lyrics probes")
    run_probes(args.data, args.fusion_probs, args.probe, args.seeds, args.jobs, args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
