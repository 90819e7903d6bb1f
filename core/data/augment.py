"""Batched image augmentation on the device: uint8 NHWC batches in, normalised float NCHW out.

The decoded image cache stays in (GPU) memory as uint8, so an epoch decodes no JPEG: each
training batch is cropped and flipped by one affine `grid_sample`, colour-jittered and
randomly erased where it lies. Random parameters come from a seeded CPU generator, so a
batch's augmentation is the same on every device and after a resume. They can be drawn for a
whole epoch at once (`DeviceAugment.draw` with shape (steps, n)) and moved to the device in one
copy, so a training step applies its slice with no host-to-device copy; the constant tensors
(mean, std, grey weights, row and column indices) are built once per device. Normalisation
uses the model's own mean and std (core.model.preprocess), never another model's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from core.config import AugmentConfig
from core.data.transfer import upload
from core.model.preprocess import Preprocess

ERASE_AREA = (0.02, 0.33)  # fraction of the image erased (torchvision RandomErasing defaults)
ERASE_RATIO = (0.3, 3.3)
CROP_RATIO = (3 / 4, 4 / 3)
GREY_WEIGHTS = (0.299, 0.587, 0.114)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _cached(key: tuple, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A constant tensor built once per key (a plain dict, which torch.compile traces as a constant)."""
    if key not in _CONSTANTS:
        with torch.inference_mode(False):
            _CONSTANTS[key] = build()
    return _CONSTANTS[key]


def _constant(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """`values` as a [1, C, 1, 1] tensor on `device`, built (and copied to it) once."""
    return _cached(("values", values, device), lambda: torch.tensor(values, device=device).view(1, -1, 1, 1))


def _arange(n: int, device: torch.device) -> torch.Tensor:
    """0 .. n - 1 on `device`, built once."""
    return _cached(("arange", n, device), lambda: torch.arange(n, device=device))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a uint8 [N, H, W, 3] batch, got {tuple(images.shape)} {images.dtype}")
    return images.permute(0, 3, 1, 2).float().div_(255)


def normalise(x: torch.Tensor, preprocess: Preprocess,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Float NCHW in [0, 1] -> normalised with the model's mean and std, in the memory format the
    backbone prefers."""
    mean_t, std_t = _constant(tuple(preprocess.mean), x.device), _constant(tuple(preprocess.std), x.device)
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


def _jitter_factors(n: int, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors [n, 3], each drawn from [1 - s, 1 + s]."""
    low, high = max(0.0, 1 - strength), 1 + strength
    return torch.stack([_uniform(n, low, high, gen) for _ in range(3)], dim=1)


def _jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation of an NCHW batch in [0, 1] scaled by `factors` [n, 3]."""
    n = x.shape[0]
    bright, contrast, sat = (f.view(n, 1, 1, 1) for f in factors.unbind(1))
    weights = _constant(GREY_WEIGHTS, x.device)
    x = (x * bright).clamp(0, 1)
    grey_mean = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = ((x - grey_mean) * contrast + grey_mean).clamp(0, 1)
    grey = (x * weights).sum(1, keepdim=True)
    return ((x - grey) * sat + grey).clamp(0, 1)


def _erase_boxes(n: int, size: tuple[int, int], prob: float, gen: torch.Generator) -> torch.Tensor:
    """Per sample [n, 5]: apply flag (1 with probability `prob`), top, bottom, left, right of one
    rectangle of 2-33% of the area."""
    h, w = size
    apply = torch.rand(n, generator=gen) < prob
    area = _uniform(n, *ERASE_AREA, gen) * h * w
    ratio = torch.exp(_uniform(n, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), gen))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (torch.rand(n, generator=gen) * (h - eh + 1)).floor()
    left = (torch.rand(n, generator=gen) * (w - ew + 1)).floor()
    return torch.stack([apply.float(), top, top + eh, left, left + ew], dim=1)


def _erase(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Zero each sample's rectangle where its apply flag is set; the mask is built on the device."""
    n, _, h, w = x.shape
    apply, top, bottom, left, right = (v.view(n, 1, 1) for v in boxes.unbind(1))
    rows = _arange(h, x.device).view(1, h, 1)
    cols = _arange(w, x.device).view(1, 1, w)
    mask = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right) & (apply > 0)
    return x.masked_fill(mask.unsqueeze(1), 0.0)


@dataclass(frozen=True)
class AugmentParams:
    """Random augmentation parameters of a batch ([n, ...]) or an epoch ([steps, n, ...]; `[i]` is step i's)."""

    theta: torch.Tensor  # crop + flip affine matrices (output -> input coordinates) [..., 2, 3]
    jitter: torch.Tensor | None  # brightness, contrast, saturation factors [..., 3]; None without jitter
    erase: torch.Tensor | None  # apply flag, top, bottom, left, right [..., 5]; None without erasing

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> AugmentParams:
        return AugmentParams(*(None if t is None else fn(t) for t in (self.theta, self.jitter, self.erase)))

    def __getitem__(self, step: int) -> AugmentParams:
        return self.map(lambda t: t[step])

    def to(self, device: torch.device | str) -> AugmentParams:
        """On `device` in one copy per tensor (pinned, non-blocking on CUDA)."""
        return self.map(lambda t: upload(t, device))


class DeviceAugment:
    """Training augmentation of uint8 NHWC batches on their device, driven by AugmentConfig and
    normalised with the model's preprocessing."""

    def __init__(self, cfg: AugmentConfig, preprocess: Preprocess,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.cfg = cfg
        self.preprocess = preprocess
        self.memory_format = memory_format

    def draw(self, shape: tuple[int, ...], size: tuple[int, int], generator: torch.Generator) -> AugmentParams:
        """Parameters on the CPU for a batch (shape (n,)) or an epoch (shape (steps, n)) of `size` (h, w) images.

        Each parameter is drawn for all images at once, in the order a batch always drew them
        (crop and flip, jitter, erasing): every image's parameters are independent draws of the
        same distribution, and a one-step epoch is exactly the batch the same generator gives.
        """
        n, cfg = math.prod(shape), self.cfg
        theta = _crop_theta(n, size, cfg, generator)
        jitter = _jitter_factors(n, cfg.color_jitter, generator) if cfg.color_jitter > 0 else None
        erase = _erase_boxes(n, size, cfg.erasing, generator) if cfg.erasing > 0 else None
        return AugmentParams(theta, jitter, erase).map(lambda t: t.view(*shape, *t.shape[1:]))

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Crop/pad + flip (one grid_sample), colour jitter, normalise, random erasing with `params`
        (a batch's, on the images' device): no host copy, no sync."""
        x = to_float(images)
        n, _, h, w = x.shape
        grid = F.affine_grid(params.theta, [n, 3, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if params.jitter is not None:
            x = _jitter(x, params.jitter)
        x = normalise(x, self.preprocess)
        if params.erase is not None:
            x = _erase(x, params.erase)
        return x.contiguous(memory_format=self.memory_format)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One batch augmented with parameters drawn now (copied to the device inside the step)."""
        params = self.draw((images.shape[0],), tuple(images.shape[1:3]), generator)
        return self.apply(images, params.to(images.device))
