"""The main optimizer: the backbone at optim.lr, the new heads and losses' own weights at optim.head_lr.

Losses whose parameters train apart (the centres) bring their own optimizers
(core.losses.combined.LossSet.own_optimizers).
"""

from __future__ import annotations

import torch

from core.config import Config

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def build_optimizer(groups: list[dict], cfg: Config) -> torch.optim.Optimizer:
    """The configured optimizer over param groups (each with `params` and `lr`; `base_lr` is added).

    With `train.compile: step` it takes its learning rates as device tensors
    (core.training.step): capturable on CUDA (its step counts stay on the device, as CUDA graphs
    need), single-tensor elsewhere (what a tensor learning rate allows without capturable)."""
    groups = [dict(g, params=list(g["params"]), base_lr=g["lr"]) for g in groups]
    groups = [g for g in groups if g["params"]]
    kwargs = {"weight_decay": cfg.optim.weight_decay}
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    if cfg.optim.name == "sgd":
        kwargs["momentum"] = cfg.optim.momentum
    adaptive = cfg.optim.name != "sgd"
    if cfg.train.compile == "step" and on_cuda and adaptive:
        kwargs["capturable"] = True
    elif cfg.train.compile == "step":
        kwargs["foreach"] = False
    elif on_cuda and adaptive:
        kwargs["fused"] = True  # one kernel for the whole update instead of one per tensor
    return OPTIMIZERS[cfg.optim.name](groups, lr=cfg.optim.lr, **kwargs)
