"""The weighted sum of the registered losses a run's config turns on (weight > 0).

A loop over core.losses.registry: each component reads its model output, returns its
unweighted value, and brings its own parameters (`param_groups` for the main optimizer,
`own_optimizers` for those trained apart, such as the centres).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.errors import ConfigError
from core.losses import registry


class LossSet(nn.Module):
    def __init__(self, section: Any, num_classes: int, dim: int) -> None:
        super().__init__()
        self.weights = registry.active(section)
        self.components = nn.ModuleDict({
            name: registry.get(name).module(getattr(section, name), num_classes, dim) for name in self.weights
        })

    def forward(self, outputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted total, {component: unweighted value as a detached 0-d tensor}).

        The parts stay on the device: reading them as floats every step would make the CPU
        wait for the GPU; the trainer sums them and reads them once per log line.
        """
        values = {name: self._component(name, loss, outputs, labels) for name, loss in self.components.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: value.detach().float() for name, value in values.items()}

    @staticmethod
    def _component(name: str, loss: nn.Module, outputs: dict, labels: torch.Tensor) -> torch.Tensor:
        if outputs.get(loss.reads) is None:
            raise ConfigError(f"loss.{name}.weight > 0 needs the model output {loss.reads!r}, which this model lacks")
        return loss(outputs, labels)

    def reads(self) -> set[str]:
        """The model outputs the active losses are computed on."""
        return {loss.reads for loss in self.components.values()}

    def param_groups(self, head_lr: float) -> list[dict]:
        """Param groups of the losses' own weights that the main optimizer trains."""
        return [group for loss in self.components.values() for group in loss.param_groups(head_lr)]

    def own_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers of the losses' parameters trained apart, by component (call once, on the device)."""
        built = {name: loss.own_optimizer() for name, loss in self.components.items()}
        return {name: opt for name, opt in built.items() if opt is not None}

    def step_own(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """After backward(): each own optimizer's pre-step hook, then its step."""
        for name, optimizer in optimizers.items():
            self.components[name].before_own_step()
            optimizer.step()


def needs_outputs(section: Any) -> set[str]:
    """The model outputs the losses a config turns on read (so the model knows what to build)."""
    return {registry.get(name).reads for name in registry.active(section)}
