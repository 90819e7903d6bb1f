"""Triplet loss with batch-hard, semi-hard or all-triplet mining.

Computed by core.losses.functional.triplet_loss: static-shape and sync-free, equal to
pytorch-metric-learning's TripletMarginLoss with its miners (the tests keep pml as the
reference). `normalize` measures euclidean distance between L2-normalised features (the cosine
geometry retrieval uses) or between the raw features; `soft` replaces the hinge with the
soft margin log(1 + exp(d_ap - d_an)), which keeps a gradient when every triplet sits at the margin.

`feature` says which feature the distances are measured on. The default is the BNNeck's
batch-normalised feature (`feat_bn`): in training mode BatchNorm centres the batch, so its
directions cannot all coincide. On the pre-BN feature (`feat`) batch-hard mining from random
init collapses the embedding to one direction (demo: mean pairwise distance 0.04 against 0.71
with CE alone; raw euclidean distances too), where every triplet sits at the margin, the loss
gives no useful gradient and a changed margin changes nothing.
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
    feature: Literal["feat", "feat_bn"] = knob("feat_bn", label="feature")


@register("triplet", "Triplet", TripletConfig, order=2)
class Triplet(Loss):
    reads = "feat"

    def __init__(self, cfg: TripletConfig, num_classes: int, dim: int) -> None:
        super().__init__(cfg, num_classes, dim)
        self.reads = cfg.feature

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return triplet_loss(outputs[self.reads].float(), labels, cfg.margin, cfg.mining, cfg.normalize, cfg.soft)
