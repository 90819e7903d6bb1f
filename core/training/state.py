"""The resumable training state kept inside last.safetensors beside the weights: the optimizers'
states, the loss set's own parameters (centres, ArcFace weights) and the epoch reached.

Stored by core.model.checkpoint.save_model(..., state=...) as tensors plus a JSON skeleton
(never a pickle), so weights and state are written, renamed and read as one unit.
"""

from __future__ import annotations

from typing import Any

import torch

from core.errors import ModelError


def training_state(optimizers: dict[str, torch.optim.Optimizer], modules: dict[str, torch.nn.Module],
                   epoch: int) -> dict[str, Any]:
    """The state to store with the weights after `epoch`."""
    return {
        "epoch": epoch,
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "modules": {name: dict(module.state_dict()) for name, module in modules.items()},
    }


def restore(saved: Any, optimizers: dict[str, torch.optim.Optimizer], modules: dict[str, torch.nn.Module],
            source: str) -> int:
    """Load a stored state into the given optimizers and modules; returns its epoch.

    Each optimizer keeps its current `base_lr`s and `lr` objects (floats, or the device tensors a
    compiled step writes in place), so a resumed run may change its learning rates.
    """
    if not isinstance(saved, dict) or not {"epoch", "optimizers", "modules"} <= set(saved):
        raise ModelError(f"{source}: holds no training state to resume from")
    for name, optimizer in optimizers.items():
        if name not in saved["optimizers"]:
            continue
        rates = [(g["lr"], g["base_lr"]) for g in optimizer.param_groups]
        optimizer.load_state_dict(saved["optimizers"][name])
        for group, (lr, base_lr) in zip(optimizer.param_groups, rates):
            group["lr"], group["base_lr"] = lr, base_lr
    for name, module in modules.items():
        module.load_state_dict(saved["modules"].get(name, {}))
    return int(saved["epoch"])
