"""The weighted sum of identity losses a run is configured with (`cfg.loss`).

Components (only those with weight > 0 exist):
- `ce`: cross-entropy with label smoothing on the BNNeck classifier logits.
- `i2t`: cross-entropy on the frozen text-prompt classifier's logits (CLIP-ReID stage 2), with
  the same label smoothing.
- `triplet`: pytorch-metric-learning TripletMarginLoss on `feat` with a miner (batch_hard,
  semihard or all triplets). pml defaults: euclidean distance between L2-normalised features
  (the cosine geometry retrieval uses) and the mean over triplets with a non-zero loss.
- `center`: CenterLoss on `feat` (core.losses.center).
- `arcface`: pml ArcFaceLoss on `feat`; `cfg.margin` is in radians, pml takes degrees.

Own parameters: ArcFace's class weights go to the main optimizer through `param_groups(head_lr)`.
The centres get their own SGD optimizer (lr = cfg.center.lr) as in bag-of-tricks: after
`backward()`, multiply their gradients by `center_step_scale` (1/weight, undoing the loss weight)
and step that optimizer.
"""

from __future__ import annotations

import math

import torch
from pytorch_metric_learning.losses import ArcFaceLoss, TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from torch import nn

from core.config import LossConfig
from core.errors import ConfigError
from core.losses.center import CenterLoss


class LossSet(nn.Module):
    def __init__(self, cfg: LossConfig, num_classes: int, dim: int) -> None:
        super().__init__()
        smoothing = cfg.ce.label_smoothing
        factories = {
            "ce": lambda: nn.CrossEntropyLoss(label_smoothing=smoothing),
            "i2t": lambda: nn.CrossEntropyLoss(label_smoothing=smoothing),
            "triplet": lambda: TripletMarginLoss(margin=cfg.triplet.margin),
            "center": lambda: CenterLoss(num_classes, dim),
            "arcface": lambda: ArcFaceLoss(
                num_classes, dim, margin=math.degrees(cfg.arcface.margin), scale=cfg.arcface.scale
            ),
        }
        self.weights = {name: float(getattr(cfg, name).weight) for name in factories}
        self.weights = {name: w for name, w in self.weights.items() if w > 0}
        self.components = nn.ModuleDict({name: factories[name]() for name in self.weights})
        self.miner = _miner(cfg.triplet.mining, cfg.triplet.margin) if "triplet" in self.weights else None

    def forward(self, outputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted total, {component: unweighted value as a detached 0-d tensor}).

        The parts stay on the device: reading them as floats every step would make the CPU
        wait for the GPU; the trainer sums them and reads them once per log line.
        """
        values = {name: self._component(name, outputs, labels) for name in self.components}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: value.detach().float() for name, value in values.items()}

    def _component(self, name: str, outputs: dict, labels: torch.Tensor) -> torch.Tensor:
        loss = self.components[name]
        if name == "ce":
            return loss(outputs["logits"].float(), labels)
        if name == "i2t":
            if outputs.get("text_logits") is None:
                raise ConfigError("loss.i2t.weight > 0 needs the text-prompt classifier, but the model has none")
            return loss(outputs["text_logits"].float(), labels)
        feat = outputs["feat"].float()
        if name == "triplet":
            return loss(feat, labels, self.miner(feat, labels))
        return loss(feat, labels)

    def param_groups(self, head_lr: float) -> list[dict]:
        """Optimizer param groups for the losses' own weights (ArcFace), at the head learning rate."""
        if "arcface" not in self.components:
            return []
        return [{"params": list(self.components["arcface"].parameters()), "lr": head_lr, "name": "arcface"}]

    def center_parameters(self) -> list[nn.Parameter]:
        """The class centres, for their own SGD optimizer (empty without center loss)."""
        return list(self.components["center"].parameters()) if "center" in self.components else []

    @property
    def center_step_scale(self) -> float:
        """Factor for the centres' gradients before their SGD step: 1/weight (1 without center loss)."""
        return 1.0 / self.weights["center"] if "center" in self.weights else 1.0


def _miner(mining: str, margin: float):
    if mining == "batch_hard":
        return BatchHardMiner()
    if mining in ("semihard", "all"):
        return TripletMarginMiner(margin=margin, type_of_triplets=mining)
    raise ConfigError(f"loss.triplet.mining={mining!r} is not valid; choose one of batch_hard, semihard, all")
