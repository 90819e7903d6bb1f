"""Where tensors live and in which precision the model runs: `train.device` and bf16 autocast."""

from __future__ import annotations

import torch

from core.errors import ConfigError


def resolve_device(spec: str) -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"train.device={spec!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={spec} but no CUDA device is available; use auto or cpu")
    return device


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when amp is on; a no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
