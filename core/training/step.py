"""One optimisation step: augment, forward, losses, backward, updates; eager or compiled.

`train.compile` chooses how much of it torch.compile covers:
- `off`: all eager.
- `model`: the model's forward only.
- `step`: the whole step in two graphs, augmentation + forward + losses (with its backward, from
  AOT autograd) and the updates (gradient clipping, the main optimizer, the losses' own optimizers
  such as the centres'). Learning rates are device tensors written in place from the epoch's
  schedule, uploaded once per epoch, so a new rate is a device write, not a host copy or a
  recompile; on CUDA the optimizer is capturable and mode `reduce-overhead` replays both graphs
  as CUDA graphs.
`train.compile_backend` names torch.compile's backend (inductor; aot_eager traces without code
generation, for debugging and for tests on a machine without a compiler).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.config import Config
from core.data.augment import AugmentParams, DeviceAugment
from core.data.transfer import upload
from core.device import autocast
from core.losses.combined import LossSet

Parts = dict[str, torch.Tensor]


def compile_mode(device: torch.device) -> str:
    """CUDA graphs where they exist (the step's host work is launched once per replay)."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def tensor_learning_rates(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Every group's lr (and base_lr) as a 0-d float32 tensor on `device`, so that the compiled
    update reads it as data; `optimizer` must have been built with capturable or single-tensor
    updates (core.training.optim.build_optimizer with tensor_lr)."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        group["base_lr"] = torch.tensor(float(group["base_lr"]), dtype=torch.float32, device=device)


class TrainStep:
    """Callable `(images uint8 NHWC, params, labels, lr factor) -> (total, parts)` doing one full
    step; the factor is a host float (eager modes) or a 0-d device tensor (`step` mode)."""

    def __init__(self, cfg: Config, model: torch.nn.Module, augment: DeviceAugment, loss: LossSet,
                 optimizer: torch.optim.Optimizer, loss_optimizers: dict[str, torch.optim.Optimizer],
                 device: torch.device) -> None:
        self.cfg, self.model, self.augment, self.loss = cfg, model, augment, loss
        self.optimizer, self.loss_optimizers, self.device = optimizer, loss_optimizers, device
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.mode = cfg.train.compile
        options = {"backend": cfg.train.compile_backend, "mode": compile_mode(device)}
        if cfg.train.compile_backend != "inductor":
            options.pop("mode")  # modes are inductor's
        self.forward: Callable = torch.compile(model, **options) if self.mode == "model" else model
        self.losses: Callable = torch.compile(self._losses, **options) if self.mode == "step" else self._losses
        self.updates: Callable = torch.compile(self._updates, **options) if self.mode == "step" else self._updates
        if self.mode == "step":
            tensor_learning_rates(optimizer, device)

    def factors(self, values: list[float]) -> list[float] | torch.Tensor:
        """An epoch's lr factors in the form `__call__` takes: host floats, or one device tensor
        (uploaded once) whose rows the steps read."""
        if self.mode != "step":
            return values
        return upload(torch.tensor(values, dtype=torch.float32), self.device)

    def __call__(self, images: torch.Tensor, params: AugmentParams, labels: torch.Tensor,
                 factor: float | torch.Tensor) -> tuple[torch.Tensor, Parts]:
        self._set_lr(factor)
        self.optimizer.zero_grad(set_to_none=True)
        for optimizer in self.loss_optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        total, parts = self.losses(images, params, labels)
        total.backward()
        self.updates()
        return total.detach(), parts

    def _set_lr(self, factor: float | torch.Tensor) -> None:
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                torch.mul(group["base_lr"], factor, out=group["lr"])
            else:
                group["lr"] = group["base_lr"] * factor

    def _losses(self, images: torch.Tensor, params: AugmentParams, labels: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        x = self.augment.apply(images, params)
        with autocast(self.device, self.cfg.train.amp):
            outputs = self.forward(x)
        return self.loss(outputs, labels)

    def _updates(self) -> None:
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.loss.step_own(self.loss_optimizers)
