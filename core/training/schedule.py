"""Per-step learning-rate schedule: linear warm-up, then cosine, step or constant decay.

The factor depends only on the global step, so a resumed run continues the same curve.
Each optimizer group keeps its own `base_lr`; `apply`, or the training step
(core.training.step), sets `lr = base_lr * factor`.
"""

from __future__ import annotations

import math

import torch

from core.config import OptimConfig


def lr_factor(step: int, steps_per_epoch: int, epochs: int, cfg: OptimConfig) -> float:
    """Multiplier of the base learning rates at global step `step` (0-based)."""
    warmup = cfg.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "cosine":
        decay_steps = max(1, epochs * steps_per_epoch - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / decay_steps)))
    if cfg.schedule == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    return 1.0



def apply(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's lr to its base_lr times the factor (an eager loop's float rates, as the
    prompt phase's)."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
