"""The published hand-ID training pipeline, mimicked as the baseline this project must beat.

Every epoch a torch Dataset PIL-decodes each full-size JPEG; torchvision resizes it (shorter
side to 256/224 of the model's input, bicubic), crops at random, flips, converts and
normalises it on the CPU in DataLoader workers (one per core); the model (image encoder plus
a linear identity head) trains in fp32 at batch 20 with cross-entropy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from bench.timing import timed
from core.model.preprocess import Preprocess
from core.model.backbone import create_clip

BATCH_SIZE = 20
RESIZE_RATIO = 256 / 224


class PhotoDataset(Dataset):
    """(transformed image, label) pairs, each image decoded from its file on every access."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: transforms.Compose) -> None:
        self.paths, self.labels, self.transform = list(paths), [int(v) for v in labels], transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def reference_transform(image_size: tuple[int, int]) -> transforms.Compose:
    """Resize(256, bicubic) -> RandomCrop(224) -> flip -> ToTensor -> Normalize, scaled to `image_size` (h, w)."""
    height, width = image_size
    return transforms.Compose([
        transforms.Resize(round(min(height, width) * RESIZE_RATIO), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomCrop((height, width)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(Preprocess().mean, Preprocess().std),
    ])


class EncoderWithHead(nn.Module):
    """A CLIP image encoder with a linear identity classifier on its features."""

    def __init__(self, visual: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.visual = visual
        self.head = nn.Linear(int(visual.output_dim), num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.visual(images))


def encoder_with_head(backbone: str, image_size: tuple[int, int], num_classes: int) -> EncoderWithHead:
    """The open_clip `backbone` image encoder (random init) at `image_size` with a linear head."""
    clip, _ = create_clip(backbone, "", image_size)
    return EncoderWithHead(clip.visual, num_classes)


def make_loader(paths: Sequence[str], labels: Sequence[int], image_size: tuple[int, int],
                batch_size: int = BATCH_SIZE, workers: int | None = None, pin_memory: bool = False) -> DataLoader:
    """Shuffled batches decoded by `workers` processes (default: one per core)."""
    return DataLoader(PhotoDataset(paths, labels, reference_transform(image_size)), batch_size=batch_size,
                      shuffle=True, num_workers=(os.cpu_count() or 1) if workers is None else workers,
                      pin_memory=pin_memory)


class ReferenceLoop:
    """fp32 training of `model` on `loader`'s batches with Adam and cross-entropy."""

    def __init__(self, model: nn.Module, loader: DataLoader, device: torch.device, lr: float = 1e-4) -> None:
        self.model, self.loader, self.device = model.to(device), loader, device
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def epoch(self) -> tuple[int, float]:
        """Train one pass over the loader: (images seen, seconds, worker start-up included)."""
        self.model.train()
        seen = 0

        def one_pass() -> None:
            nonlocal seen
            for images, labels in self.loader:
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                loss = F.cross_entropy(self.model(images), labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                seen += len(labels)

        seconds = timed(one_pass, self.device)
        return seen, seconds
