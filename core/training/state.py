"""Resumable training state beside the weights: the optimizers' states, the loss set's own
parameters (centres, ArcFace weights) and the epoch/step reached, in one safetensors file
(core.model.checkpoint.save_tensors: never a pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.model.checkpoint import load_tensors, save_tensors


def save_state(path: Path, optimizers: dict[str, torch.optim.Optimizer | None],
               modules: dict[str, torch.nn.Module], info: dict[str, Any]) -> None:
    """Write the optimizers' and modules' state plus `info` (epoch, step) to `path`."""
    save_tensors({
        "info": info,
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items() if opt is not None},
        "modules": {name: dict(module.state_dict()) for name, module in modules.items()},
    }, path)


def load_state(path: Path, optimizers: dict[str, torch.optim.Optimizer | None],
               modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Restore what save_state wrote into the given optimizers and modules; returns `info`.

    Each optimizer keeps its current `base_lr`s, so a resumed run may change its learning rates.
    """
    saved = load_tensors(path)
    for name, optimizer in optimizers.items():
        if optimizer is None or name not in saved["optimizers"]:
            continue
        base_lrs = [g["base_lr"] for g in optimizer.param_groups]
        optimizer.load_state_dict(saved["optimizers"][name])
        for group, base_lr in zip(optimizer.param_groups, base_lrs):
            group["base_lr"] = base_lr
    for name, module in modules.items():
        module.load_state_dict(saved["modules"].get(name, {}))
    return saved["info"]
