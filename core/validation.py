"""Everything about a config that can be checked without reading or generating data, checked
before any work: the training and evaluation targets, the backbone and its weights, the
starting checkpoint, the prompt templates (fixed and learned) and the device.

`core.train`, `jobs submit`, every sweep and study value and the New run page call
`check_config` first, so a mistyped backbone or a missing weights file fails in seconds, not
after minutes of decoding images (or at the front of a queue).
"""

from __future__ import annotations

from pathlib import Path

from core.config import Config, eval_target, train_target
from core.data.layouts import SYNTHETIC
from core.errors import ConfigError, DataError


def check_config(cfg: Config) -> None:
    """Raise a one-line HandIDError for the first problem found (see the module docstring); the roots
    first, before the model stack is imported (seconds), so a mistyped root fails at once."""
    train, test = train_target(cfg), eval_target(cfg)
    if train.dataset != SYNTHETIC:
        _root_exists(train.root, "data.root")
    if test != train:
        _root_exists(test.root, "eval.root")
    from core.device import resolve_device
    from core.model.backbone import check_weights
    from core.model.prompts import identity_prompts
    from core.training.prompt_phase import check_prompts

    check_weights(cfg.model.backbone, cfg.model.pretrained)
    if cfg.model.init_from:
        from core.training.model import init_source

        init_source(cfg.model.init_from)
    identity_prompts(["0000001"], ["dorsal_r"], cfg.model.prompt)
    check_prompts(cfg)
    resolve_device(cfg.train.device)


def _root_exists(root: str, key: str) -> None:
    if not Path(root).expanduser().exists():
        raise DataError(f"dataset root not found: {root} ({key})")
