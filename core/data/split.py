"""A protocol split's rows with their decoded images held as uint8 on the device.

Images are decoded once into the resized cache (core.data.cache) with the model's resize
filter and kept in memory; training and evaluation only index and augment them on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.data.cache import load_images


@dataclass
class Split:
    """Rows of one split with their images (uint8 NHWC on the device) and int64 labels."""

    rows: pd.DataFrame
    images: torch.Tensor
    labels: torch.Tensor


def load_split(rows: pd.DataFrame, size: tuple[int, int], cache_dir: str, device: torch.device,
               interpolation: str = "bicubic") -> Split:
    """Decode (or read from the cache) every image of `rows` at `size` (height, width) onto `device`."""
    images = load_images(list(rows["path"]), size=tuple(size), cache_dir=cache_dir, interpolation=interpolation)
    return Split(rows=rows, images=torch.from_numpy(np.ascontiguousarray(images)).to(device),
                 labels=torch.tensor(rows["label"].to_numpy(), dtype=torch.int64, device=device))
