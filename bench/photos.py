"""The benchmarks' photo dataset: synthetic hands as 1600x1200 JPEGs in the 11k layout.

Generated once by core.data.synth (every core rendering) into `.cache/bench/` and reused by
later runs; a folder that is incomplete (an interrupted generation) is generated again.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from core.data.synth import write_dataset

CACHE = Path(".cache/bench")
PHOTO_SIZE = (1600, 1200)  # (width, height), as the 11k Hands photos
DONE = ".complete"
PROTOCOL = "default"  # every aspect, identities split in half: an 11k-like epoch from a subset


def scale() -> dict:
    """Identities and photos per aspect: the 11k's 190 identities on a GPU, a few hundred photos on a CPU."""
    if torch.cuda.is_available():
        return {"identities": 190, "images_per_aspect": 3}
    return {"identities": 32, "images_per_aspect": 3}


def ensure_photos(identities: int, images_per_aspect: int, seed: int = 0, cache: Path = CACHE) -> Path:
    """The dataset's (absolute) root, generated with all cores unless an earlier run finished it."""
    root = cache.resolve() / f"synthetic-11k-{identities}x{images_per_aspect}-{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}-seed{seed}"
    if (root / DONE).is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    write_dataset("11k", root, identities, seed, size=PHOTO_SIZE, images_per_aspect=images_per_aspect, workers=None)
    (root / DONE).touch()
    return root


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.photos [--identities N --images-per-aspect K]`: generate (or find) the dataset, print its root."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    defaults = scale()
    parser.add_argument("--identities", type=int, default=defaults["identities"])
    parser.add_argument("--images-per-aspect", type=int, default=defaults["images_per_aspect"])
    args = parser.parse_args(argv)
    print(ensure_photos(args.identities, args.images_per_aspect))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
