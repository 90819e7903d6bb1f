"""ArcFace (Deng et al. 2019): additive angular margin on normalised class weights (pytorch-metric-learning).

pml's ArcFaceLoss on `feat`; `margin` is in radians here, pml takes degrees. Its class weights
are trained by the main optimizer at the head learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import knob
from core.losses.base import Loss
from core.losses.registry import register


@dataclass
class ArcFaceConfig:
    weight: float = knob(0.0, check="non_negative")
    margin: float = knob(0.5, check="non_negative", at_most=math.pi / 2, label="margin (rad)")
    scale: float = knob(30.0, check="positive", at_most=1000.0, label="scale")


@register("arcface", "ArcFace", ArcFaceConfig, order=4)
class ArcFace(Loss):
    reads = "feat"

    def __init__(self, cfg: ArcFaceConfig, num_classes: int, dim: int) -> None:
        super().__init__(cfg, num_classes, dim)
        from pytorch_metric_learning.losses import ArcFaceLoss

        self.loss = ArcFaceLoss(num_classes, dim, margin=math.degrees(cfg.margin), scale=cfg.scale)

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return self.loss(outputs[self.reads].float(), labels)

    def param_groups(self, head_lr: float) -> list[dict]:
        return [{"params": list(self.loss.parameters()), "lr": head_lr, "name": "arcface"}]
