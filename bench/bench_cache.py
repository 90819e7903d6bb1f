"""JPEG decode + resize to 224x224 with and without draft mode, against loading the decode-once cache.

Photos are 1600x1200 JPEGs like 11k Hands (synthetic hands upscaled, with sensor-like noise
so they compress like photos). Decoding runs in one process, so its figures are per core;
the cached load reads the .npy the cache built. Each figure is the median of repeats.
Run from the repo root: `python -m bench.bench_cache [--quick] [--json]`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.timing import component_main
from core.data.cache import decode_image, load_images
from core.data.synth import ASPECTS, make_person, render_hand

PHOTO_SIZE = (1600, 1200)
TARGET = (224, 224)


def write_photos(folder: Path, count: int) -> list[str]:
    """`count` 1600x1200 JPEG hand photos in `folder`."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        small = render_hand(make_person(0, k % 8), ASPECTS[k % 4], np.random.default_rng(k))
        big = np.asarray(small.resize(PHOTO_SIZE, Image.Resampling.BICUBIC), np.float32)
        big += rng.normal(0, 3, big.shape).astype(np.float32)
        path = folder / f"Hand_{k:07d}.jpg"
        Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def median_rate(task: Callable[[], None], count: int, repeats: int) -> float:
    """Images per second: `count` over the median wall time of `task`."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        seconds.append(time.perf_counter() - start)
    return count / statistics.median(seconds)


def run(quick: bool = False) -> dict:
    count, repeats = (12, 3) if quick else (40, 5)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), count)
        decode = {draft: (lambda d=draft: [decode_image(p, TARGET, draft=d) for p in paths]) for draft in (True, False)}
        draft_rate = median_rate(decode[True], count, repeats)
        full_rate = median_rate(decode[False], count, repeats)
        load_images(paths, TARGET, Path(tmp) / "cache", workers=1)
        cached_rate = median_rate(lambda: load_images(paths, TARGET, Path(tmp) / "cache"), count, repeats)
    return {
        "images": count,
        "photo_size": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}",
        "target": f"{TARGET[0]}x{TARGET[1]}",
        "repeats": repeats,
        "decode_draft_images_per_s_per_core": draft_rate,
        "decode_full_images_per_s_per_core": full_rate,
        "draft_speedup": draft_rate / full_rate,
        "cached_load_images_per_s": cached_rate,
        "cached_over_draft_decode": cached_rate / draft_rate,
    }


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "12 photos x 3 repeats instead of 40 x 5", argv)


if __name__ == "__main__":
    raise SystemExit(main())
