"""`python tools/crossval.py ARGS` is `mer-tag crossval ARGS`: artist-grouped cross-validation of a preset.

The protocol lives in mer_tag/train/crossval.py (docs/training.md has the options), e.g.

    python tools/crossval.py --data ../shared/datasets/mirex-mood --branch fused --seeds 3 --probs cv.npz
"""

import sys

from mer_tag.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["crossval", *sys.argv[1:]]))
