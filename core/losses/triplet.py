"""Triplet loss with batch-hard, semi-hard or all-triplet mining (pytorch-metric-learning).

pml's TripletMarginLoss with a miner on `feat`: euclidean distance between L2-normalised
features (the cosine geometry retrieval uses) and the mean over triplets with a non-zero loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from core.config import knob
from core.losses.base import Loss
from core.losses.registry import register


@dataclass
class TripletConfig:
    weight: float = knob(0.0, check="non_negative")
    margin: float = knob(0.3, check="non_negative", at_most=4.0, label="margin")
    mining: Literal["batch_hard", "semihard", "all"] = knob("batch_hard", label="mining")


@register("triplet", "Triplet", TripletConfig, order=2)
class Triplet(Loss):
    reads = "feat"

    def __init__(self, cfg: TripletConfig, num_classes: int, dim: int) -> None:
        super().__init__(cfg, num_classes, dim)
        from pytorch_metric_learning.losses import TripletMarginLoss
        from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

        self.loss = TripletMarginLoss(margin=cfg.margin)
        if cfg.mining == "batch_hard":
            self.miner = BatchHardMiner()
        else:
            self.miner = TripletMarginMiner(margin=cfg.margin, type_of_triplets=cfg.mining)

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        feat = outputs[self.reads].float()
        return self.loss(feat, labels, self.miner(feat, labels))
