"""Which dataset, root and protocol a run trains on and evaluates on (cross protocols)."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Config
from core.errors import ConfigError


@dataclass(frozen=True)
class EvalTarget:
    """Where a split comes from: dataset kind, root folder and protocol name."""

    dataset: str
    root: str
    protocol: str

    @property
    def key(self) -> str:
        """`<dataset>/<protocol>`, the key of cross evaluations in eval.json."""
        return f"{self.dataset}/{self.protocol}"


def train_target(cfg: Config) -> EvalTarget:
    return EvalTarget(cfg.data.dataset, cfg.data.root, cfg.data.protocol)


def eval_target(cfg: Config) -> EvalTarget:
    """eval.dataset/root/protocol where set (cross protocols), else the training data's."""
    if cfg.eval.dataset and cfg.eval.dataset != cfg.data.dataset and not cfg.eval.root:
        raise ConfigError(f"eval.dataset={cfg.eval.dataset} differs from data.dataset={cfg.data.dataset}; "
                          "set eval.root to its folder too")
    return EvalTarget(cfg.eval.dataset or cfg.data.dataset, cfg.eval.root or cfg.data.root,
                      cfg.eval.protocol or cfg.data.protocol)
