"""Center loss (Wen et al. 2016) in the bag-of-tricks form.

loss = mean over the batch of ||x_i - c_{y_i}||^2 (squared euclidean distance to the centre of
the sample's class, without Wen et al.'s 1/2). The centres are trained apart from the model by
plain SGD at `lr`, with their gradients scaled by 1/weight so that the loss weight sets how much
the features move, not how fast the centres do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.config import knob
from core.losses.base import Loss
from core.losses.registry import register


@dataclass
class CenterConfig:
    weight: float = knob(0.0, check="non_negative")
    lr: float = knob(0.5, check="non_negative", at_most=100.0, label="centre learning rate")


@register("center", "Center", CenterConfig, order=3)
class CenterLoss(Loss):
    reads = "feat"

    def __init__(self, cfg: CenterConfig, num_classes: int, dim: int) -> None:
        super().__init__(cfg, num_classes, dim)
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        features = outputs[self.reads]
        diff = features - self.centers[labels].to(features.dtype)
        return diff.pow(2).sum(dim=1).mean()

    def own_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([{"params": [self.centers], "lr": self.cfg.lr, "base_lr": self.cfg.lr}])

    def before_own_step(self) -> None:
        if self.centers.grad is not None and self.cfg.weight > 0:
            self.centers.grad.mul_(1.0 / self.cfg.weight)
