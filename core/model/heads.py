"""Identity heads on top of the image feature.

`BNNeck` is the bag-of-tricks neck (Luo et al. 2019): BatchNorm without a learned shift, then a
bias-free linear ID classifier; metric losses use the feature before it, the classifier the one
after. `PromptClassifier` is CLIP-ReID's fixed text classifier: one frozen, L2-normalised text
embedding per identity, scored with CLIP's cosine logits in float32 (outside autocast): in bf16,
logits of scale ~100 keep about 2-3 significant digits, coarser than the differences between
the identities' prompts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BNNeck(nn.Module):
    """feat -> (feat_bn, logits): BatchNorm1d (bias frozen at 0) and a bias-free classifier."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat_bn = self.bn(feat)
        return feat_bn, self.classifier(feat_bn)


class PromptClassifier(nn.Module):
    """logits = scale * normalize(image feature) @ text.T, with text and scale fixed buffers."""

    def __init__(self, text_features: torch.Tensor, logit_scale: float | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("text", F.normalize(text_features.detach().float(), dim=-1))
        self.register_buffer("scale", torch.as_tensor(logit_scale, dtype=torch.float32).detach().clone().reshape(()))

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        with torch.autocast(image_features.device.type, enabled=False):
            image = F.normalize(image_features.float(), dim=-1)
            return self.scale * image @ self.text.T
