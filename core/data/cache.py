"""Decode-once image cache: every image decoded and resized once into one uint8 .npy file.

Decoding a 1600x1200 JPEG costs ~20 ms per core, far more than a training step spends on it,
so a dataset is decoded once (in parallel, with JPEG draft mode) and later runs load the
array. The file name carries a hash of every image's path, size in bytes and mtime, and of
the target size: a changed or added image gives a new file, and the stale one is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.pool import parallel_map
from core.errors import ConfigError, DataError

IN_PROCESS_BELOW = 32  # fewer images than this are decoded without starting a process pool
FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: 16-bit and 32-bit greyscale scaled by their real range (PIL's own
    convert clips them at 255: a 16-bit photo would come out almost white), palettes and alpha
    flattened."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def decode_image(path: str | Path, size: tuple[int, int], draft: bool = True, interpolation: str = "bicubic") -> np.ndarray:
    """The image at `path` as uint8 RGB [h, w, 3] for `size` = (h, w), resized with `interpolation`.

    With `draft`, a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that is still at
    least the target size, which is several times cheaper than a full decode.
    """
    height, width = size
    try:
        with Image.open(path) as image:
            if draft:
                image.draft("RGB", (width, height))
            image = to_rgb(image)
            if image.size != (width, height):
                image = image.resize((width, height), FILTERS.get(interpolation, Image.Resampling.BICUBIC))
            return np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc


def cache_key(paths: Sequence[str], size: tuple[int, int], interpolation: str = "bicubic") -> tuple[str, str]:
    """(hash of the path list, size and filter, hash that also covers each file's byte size and mtime)."""
    stats = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from exc
        stats.append((str(path), stat.st_size, stat.st_mtime_ns))
    listing = hashlib.sha256(json.dumps([list(size), interpolation, [str(p) for p in paths]]).encode()).hexdigest()[:16]
    content = hashlib.sha256(json.dumps([list(size), interpolation, stats]).encode()).hexdigest()[:16]
    return listing, content


def decode_into(paths: Sequence[str], size: tuple[int, int], out: np.ndarray, workers: int, interpolation: str) -> None:
    """Decode `paths` into `out` row by row, in a process pool when worth it."""
    if workers == 1 or len(paths) < IN_PROCESS_BELOW:
        for i, path in enumerate(paths):
            out[i] = decode_image(path, size, interpolation=interpolation)
        return
    chunk = max(1, len(paths) // (workers * 8))
    n = len(paths)
    decoded = parallel_map(decode_image, paths, [size] * n, [True] * n, [interpolation] * n, workers=workers, chunksize=chunk)
    for i, image in enumerate(decoded):
        out[i] = image


def load_images(paths: Sequence[str], size: tuple[int, int], cache_dir: str | Path, workers: int | None = None,
                interpolation: str = "bicubic") -> np.ndarray:
    """All images in `paths` as uint8 [N, h, w, 3] for `size` = (h, w), decoded at most once.

    The array lives in `cache_dir` as `images-<h>x<w>-<list hash>-<content hash>.npy`. It is
    built in a temporary file and renamed into place, so an interrupted build leaves no
    corrupt cache. `workers` decoding processes (default: all cores). A missing or
    unreadable image raises DataError naming it.
    """
    height, width = size
    if height < 1 or width < 1:
        raise ConfigError(f"image size must be positive, got {height}x{width}")
    paths = [str(p) for p in paths]
    if not paths:
        return np.empty((0, height, width, 3), dtype=np.uint8)
    listing, content = cache_key(paths, size, interpolation)
    cache_dir = Path(cache_dir).expanduser()
    prefix = f"images-{height}x{width}-{listing}-"
    target = cache_dir / f"{prefix}{content}.npy"
    if target.is_file():
        try:
            images = np.load(target)
            if images.shape == (len(paths), height, width, 3) and images.dtype == np.uint8:
                return images
        except (OSError, ValueError):
            pass  # unreadable cache: rebuild it below
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the image cache folder {cache_dir} (data.cache_dir): {exc.strerror or exc}") from None
    temporary = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    try:
        building = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(len(paths), height, width, 3))
        decode_into(paths, size, building, workers or os.cpu_count() or 1, interpolation)
        building.flush()
        del building
        os.replace(temporary, target)
    except OSError as exc:
        raise DataError(f"cannot write the image cache {target} (data.cache_dir): {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
    for stale in cache_dir.glob(f"{prefix}*.npy"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return np.load(target)
