"""Batched image augmentation on the device: uint8 NHWC batches in, normalised float NCHW out.

The decoded image cache stays in (GPU) memory as uint8, so an epoch decodes no JPEG: each
training batch is cropped and flipped by one affine `grid_sample`, colour-jittered and
randomly erased where it lies. Random parameters come from a seeded CPU generator, so a
batch's augmentation is the same on every device and after a resume. Normalisation uses the
model's own mean and std (core.model.preprocess), never another model's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from core.config import AugmentConfig
from core.model.preprocess import Preprocess

ERASE_AREA = (0.02, 0.33)  # fraction of the image erased (torchvision RandomErasing defaults)
ERASE_RATIO = (0.3, 3.3)
CROP_RATIO = (3 / 4, 4 / 3)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a uint8 [N, H, W, 3] batch, got {tuple(images.shape)} {images.dtype}")
    return images.permute(0, 3, 1, 2).float().div_(255)


def normalise(x: torch.Tensor, preprocess: Preprocess,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Float NCHW in [0, 1] -> normalised with the model's mean and std, in the memory format the
    backbone prefers."""
    mean_t = torch.tensor(preprocess.mean, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(preprocess.std, device=x.device).view(1, 3, 1, 1)
    return ((x - mean_t) / std_t).contiguous(memory_format=memory_format)


def eval_batch(images: torch.Tensor, preprocess: Preprocess,
               memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """The evaluation path: uint8 NHWC -> normalised float NCHW, nothing random."""
    return normalise(to_float(images), preprocess, memory_format=memory_format)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of an NCHW batch (the flip test-time augmentation)."""
    return torch.flip(x, dims=[3])


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _crop_theta(n: int, size: tuple[int, int], cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-sample affine matrices [n, 2, 3] (output -> input, normalised coordinates): crop + flip."""
    h, w = size
    sx = torch.ones(n)
    sy = torch.ones(n)
    tx = torch.zeros(n)
    ty = torch.zeros(n)
    if cfg.crop == "resized":
        area = _uniform(n, cfg.crop_scale, 1.0, gen)
        ratio = torch.exp(_uniform(n, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), gen))
        sx = torch.sqrt(area * ratio).clamp(max=1.0)
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (2 * torch.rand(n, generator=gen) - 1) * (1 - sx)
        ty = (2 * torch.rand(n, generator=gen) - 1) * (1 - sy)
    elif cfg.crop == "pad" and cfg.pad > 0:
        # Whole-pixel shifts within [-pad, pad]: the same as padding with black and cropping.
        tx = torch.randint(-cfg.pad, cfg.pad + 1, (n,), generator=gen) * 2.0 / w
        ty = torch.randint(-cfg.pad, cfg.pad + 1, (n,), generator=gen) * 2.0 / h
    flip = torch.where(torch.rand(n, generator=gen) < cfg.flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * flip
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = ty
    return theta


def _jitter(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors drawn from [1 - s, 1 + s]."""
    n = x.shape[0]
    low, high = max(0.0, 1 - strength), 1 + strength
    bright, contrast, sat = (_uniform(n, low, high, gen).to(x.device).view(n, 1, 1, 1) for _ in range(3))
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    x = (x * bright).clamp(0, 1)
    grey_mean = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = ((x - grey_mean) * contrast + grey_mean).clamp(0, 1)
    grey = (x * weights).sum(1, keepdim=True)
    return ((x - grey) * sat + grey).clamp(0, 1)


def _erase(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Zero one random rectangle (2-33% of the area) per sample with probability `prob`."""
    n, _, h, w = x.shape
    apply = torch.rand(n, generator=gen) < prob
    area = _uniform(n, *ERASE_AREA, gen) * h * w
    ratio = torch.exp(_uniform(n, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), gen))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (torch.rand(n, generator=gen) * (h - eh + 1)).floor()
    left = (torch.rand(n, generator=gen) * (w - ew + 1)).floor()
    # Only the per-sample numbers travel to the device; the mask is built there.
    top, bottom, left, right = (v.to(x.device).view(n, 1, 1) for v in (top, top + eh, left, left + ew))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    mask = inside & apply.to(x.device).view(n, 1, 1)
    return x.masked_fill(mask.unsqueeze(1), 0.0)


class DeviceAugment:
    """Training augmentation of uint8 NHWC batches on their device, driven by AugmentConfig and
    normalised with the model's preprocessing."""

    def __init__(self, cfg: AugmentConfig, preprocess: Preprocess,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.cfg = cfg
        self.preprocess = preprocess
        self.memory_format = memory_format

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Crop/pad + flip (one grid_sample), colour jitter, normalise, random erasing."""
        x = to_float(images)
        n, _, h, w = x.shape
        theta = _crop_theta(n, (h, w), self.cfg, generator).to(x.device)
        grid = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.cfg.color_jitter > 0:
            x = _jitter(x, self.cfg.color_jitter, generator)
        x = normalise(x, self.preprocess)
        if self.cfg.erasing > 0:
            x = _erase(x, self.cfg.erasing, generator)
        return x.contiguous(memory_format=self.memory_format)
