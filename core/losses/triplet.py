"""Triplet loss with batch-hard, semi-hard or all-triplet mining.

Computed by core.losses.functional.triplet_loss: static-shape and sync-free, equal to
pytorch-metric-learning's TripletMarginLoss with its miners (the tests keep pml as the
reference). `normalize` measures euclidean distance between L2-normalised features (the cosine
geometry retrieval uses) or between the raw features; `soft` replaces the hinge with the
soft margin log(1 + exp(d_ap - d_an)), which keeps a gradient when every triplet sits at the margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from core.config import knob
from core.losses.base import Loss
from core.losses.functional import triplet_loss
from core.losses.registry import register


@dataclass
class TripletConfig:
    weight: float = knob(0.0, check="non_negative")
    margin: float = knob(0.3, check="non_negative", at_most=4.0, label="margin")
    mining: Literal["batch_hard", "semihard", "all"] = knob("batch_hard", label="mining")
    normalize: bool = knob(True, label="L2-normalised distance")
    soft: bool = knob(False, label="soft margin")


@register("triplet", "Triplet", TripletConfig, order=2)
class Triplet(Loss):
    reads = "feat"

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return triplet_loss(outputs[self.reads].float(), labels, cfg.margin, cfg.mining, cfg.normalize, cfg.soft)
