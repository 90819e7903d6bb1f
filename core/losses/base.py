"""The interface every registered loss implements (see core.losses.registry).

A loss is an `nn.Module` built from its config section, the number of training classes and the
feature dimension. `forward(outputs, labels)` returns the unweighted loss from the model output
named by `reads`. Losses with parameters of their own say where those are trained:
`param_groups(head_lr)` hands them to the main optimizer, `own_optimizer()` builds one apart
(called once, after the loss is on its device), and `before_own_step()` runs between
`backward()` and that optimizer's step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Loss(nn.Module):
    reads = "feat"  # the model output this loss is computed on: feat | feat_bn | logits | text_logits

    def __init__(self, cfg: Any, num_classes: int, dim: int) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def param_groups(self, head_lr: float) -> list[dict]:
        """Own parameters the main optimizer trains, as param groups (none by default)."""
        return []

    def own_optimizer(self) -> torch.optim.Optimizer | None:
        """An optimizer of this loss's own parameters, trained apart from the model (none by default)."""
        return None

    def before_own_step(self) -> None:
        """Called after backward(), before `own_optimizer()` steps (e.g. to rescale gradients)."""
