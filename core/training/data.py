"""The trainer's data: protocol splits and their decoded images, held as uint8 on the device.

Images are decoded once into the resized cache (core.data.cache) and kept in memory; each
epoch only indexes and augments them on the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from core.config import DataConfig
from core.data.cache import load_images
from core.data.prepare import ensure_dataset
from core.data.protocols import Protocol, build_protocol
from core.data.readers import read_table
from core.training.targets import EvalTarget

log = logging.getLogger(__name__)


@dataclass
class Split:
    """Rows of one split with their images (uint8 NHWC on the device) and int64 labels."""

    rows: pd.DataFrame
    images: torch.Tensor
    labels: torch.Tensor


def load_split(rows: pd.DataFrame, data: DataConfig, device: torch.device) -> Split:
    """Decode (or read from the cache) every image of `rows` at data.image_size onto `device`."""
    images = load_images(list(rows["path"]), size=tuple(data.image_size), cache_dir=data.cache_dir)
    return Split(rows=rows, images=torch.from_numpy(np.ascontiguousarray(images)).to(device),
                 labels=torch.tensor(rows["label"].to_numpy(), dtype=torch.int64, device=device))


def load_protocol(data: DataConfig, target: EvalTarget, seed: int, runs: int) -> Protocol:
    """The target's protocol; synthetic data is generated first when its root is missing."""
    ensure_dataset(replace(data, dataset=target.dataset, root=target.root))
    table = read_table(target.dataset, target.root)
    log.info("read %d images of %d identities from %s (%s)", len(table), table["identity"].nunique(),
             target.root, target.dataset)
    return build_protocol(table, target.protocol, seed=seed, runs=runs)


def class_aspects(train: pd.DataFrame, class_names: list[str]) -> list[str]:
    """The most common aspect of each class's training images, in class order (for its prompt)."""
    common = train.groupby("identity")["aspect"].agg(lambda s: s.value_counts().index[0])
    return [str(common.get(name, "")) for name in class_names]
