"""ArcFace (Deng et al. 2019): additive angular margin on normalised class weights.

Computed by core.losses.functional.arcface_loss: static-shape and sync-free, equal to
pytorch-metric-learning's ArcFaceLoss (the tests keep pml as the reference); `margin` is in
radians here. The class weights are this loss's own parameter ([dim, classes], pml's layout),
trained by the main optimizer at the head learning rate. They start as unit columns: pml's
N(0, 1) start gives columns of norm ~sqrt(dim), which an optimizer at the head learning rate
barely turns, so the margin fights fixed random directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from core.config import knob
from core.losses.base import Loss
from core.losses.functional import arcface_loss
from core.losses.registry import register


@dataclass
class ArcFaceConfig:
    weight: float = knob(0.0, check="non_negative")
    margin: float = knob(0.5, check="non_negative", at_most=math.pi / 2, label="margin (rad)")
    scale: float = knob(30.0, check="positive", at_most=1000.0, label="scale")
    feature: Literal["feat", "feat_bn"] = knob("feat", label="feature")


@register("arcface", "ArcFace", ArcFaceConfig, order=4)
class ArcFace(Loss):
    reads = "feat"

    def __init__(self, cfg: ArcFaceConfig, num_classes: int, dim: int) -> None:
        super().__init__(cfg, num_classes, dim)
        self.reads = cfg.feature
        self.W = nn.Parameter(F.normalize(torch.randn(dim, num_classes), dim=0))

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return arcface_loss(outputs[self.reads].float(), labels, self.W, math.degrees(self.cfg.margin), self.cfg.scale)

    def param_groups(self, head_lr: float) -> list[dict]:
        return [{"params": [self.W], "lr": head_lr, "name": "arcface"}]
