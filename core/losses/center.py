"""Center loss (Wen et al. 2016) in the bag-of-tricks form.

loss = mean over the batch of ||x_i - c_{y_i}||^2 (squared euclidean distance to the centre of
the sample's class, without Wen et al.'s 1/2). The centres are a parameter of their own, trained
with a separate SGD optimizer whose gradient is scaled by 1/weight (see LossSet.center_step_scale).
"""

from __future__ import annotations

import torch
from torch import nn


class CenterLoss(nn.Module):
    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        diff = features - self.centers[labels].to(features.dtype)
        return diff.pow(2).sum(dim=1).mean()
