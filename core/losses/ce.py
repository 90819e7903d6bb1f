"""Identity cross-entropy on the BNNeck classifier's logits, with label smoothing (Stage 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.config import knob
from core.losses.base import Loss
from core.losses.registry import register


@dataclass
class CEConfig:
    weight: float = knob(1.0, check="non_negative")
    label_smoothing: float = knob(0.0, check="fraction", label="label smoothing")


@register("ce", "Cross-entropy", CEConfig, order=0)
class CrossEntropy(Loss):
    reads = "logits"

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs[self.reads].float(), labels, label_smoothing=self.cfg.label_smoothing)
