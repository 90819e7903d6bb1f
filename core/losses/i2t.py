"""Image-to-text cross-entropy against the frozen identity prompts (CLIP-ReID's stage 2).

The model scores each image feature against one frozen text feature per training identity
(core.model.heads.PromptClassifier); this loss is the cross-entropy of those logits. Any loss
that `reads` `text_logits` makes the model build that classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.config import knob
from core.losses.base import Loss
from core.losses.registry import register


@dataclass
class I2TConfig:
    weight: float = knob(0.0, check="non_negative")
    label_smoothing: float = knob(0.0, check="fraction", label="label smoothing")


@register("i2t", "Image-to-text", I2TConfig, order=1)
class ImageToText(Loss):
    reads = "text_logits"

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs[self.reads].float(), labels, label_smoothing=self.cfg.label_smoothing)
