"""The loss registry: each loss is one module of core/losses/ that registers itself.

A registered loss declares, in one place:
- `name`: its config section (`loss.NAME.*`) and its component name in metrics.jsonl;
- `label`: how the dashboard names it;
- `config`: a dataclass of its knobs, `weight` first (0 = off), declared with `core.config.knob`
  so that ranges are checked with every other key;
- the loss module itself (`Loss` subclass): `forward(outputs, labels)`, the model output it
  `reads`, and its own parameters: `param_groups(head_lr)` for those the main optimizer trains
  (ArcFace's class weights), `own_optimizer()` and `before_own_step()` for those trained apart
  (the centre loss's SGD and its gradient scale).

Modules are found by scanning this package, as open_clip finds its model configs: a new loss
is one new file and nothing else. `LossSet` (core.losses.combined) is a loop over the entries.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ENTRIES: dict[str, "LossEntry"] = {}
_SCANNED = False


@dataclass(frozen=True)
class LossEntry:
    """One registered loss: its name, display label, config dataclass and module class."""

    name: str
    label: str
    config: type
    module: type
    order: int = 100

    @property
    def reads(self) -> str:
        """The model output (`feat`, `logits`, `text_logits`) this loss is computed on."""
        return self.module.reads


def register(name: str, label: str, config: type, order: int = 100) -> Callable[[type], type]:
    """Class decorator: register a `Loss` subclass under `name` with its config dataclass;
    `order` places it in forms and tables (lower first, then by name)."""
    fields = getattr(config, "__dataclass_fields__", {})
    if "weight" not in fields:
        raise TypeError(f"loss {name!r}: its config dataclass needs a `weight` field")

    def wrap(module: type) -> type:
        _ENTRIES[name] = LossEntry(name, label, config, module, order)
        return module

    return wrap


def entries() -> dict[str, LossEntry]:
    """Every registered loss by name, in display order (the package scanned on first use)."""
    _scan()
    return dict(sorted(_ENTRIES.items(), key=lambda item: (item[1].order, item[0])))


def get(name: str) -> LossEntry:
    found = entries().get(name)
    if found is None:
        from core.errors import ConfigError

        raise ConfigError(f"unknown loss {name!r}; registered: {', '.join(entries())}")
    return found


def label(name: str) -> str:
    """The display label of a loss component (the name itself for `loss`, the total)."""
    entry = entries().get(name)
    return entry.label if entry else name


def _scan() -> None:
    global _SCANNED
    if _SCANNED:
        return
    _SCANNED = True
    import core.losses as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"core.losses.{info.name}")


def active(section: Any) -> dict[str, float]:
    """{name: weight} of the losses of a config's loss section with a weight above 0."""
    return {name: float(getattr(section, name).weight) for name in entries() if getattr(section, name).weight > 0}
