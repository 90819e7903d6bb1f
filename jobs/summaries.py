"""What run listings show of each run's config.yaml and eval.json, read once per file version.

`jobs.api.list_runs` runs every few seconds on the dashboard over hundreds of runs; parsing every
config (YAML, then the typed Config) and every eval.json (with its curves) each time made the
Runs page take seconds. These keep small derived values per file (core.runs.cache.FileCache) and
read a file again only when it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from core.config import flatten, to_dict
from core.losses import registry as losses
from core.runs import RunDir
from core.runs.cache import FileCache


class ConfigSummary(NamedTuple):
    """A run's config as listings show it; `settings` is the whole config as {dotted key: value}."""

    name: str
    backbone: str
    losses: str  # e.g. "ce+triplet"
    settings: dict[str, Any]


class EvalSummary(NamedTuple):
    """The test figures of a run's last epoch and of the epoch selected on validation."""

    final: dict[str, float | None]
    selected: dict[str, float | None]
    selected_epoch: int | None


def _config(path: Path) -> ConfigSummary | None:
    config = RunDir(path.parent).read_config()
    if config is None:
        return None
    return ConfigSummary(config.name, config.model.backbone, "+".join(losses.active(config.loss)),
                         flatten(to_dict(config)))


def _eval(path: Path) -> EvalSummary:
    record = RunDir(path.parent).read_eval()
    selected = record.selected
    return EvalSummary(dict(record.final.test) if record.final else {}, dict(selected.test) if selected else {},
                       selected.epoch if selected else None)


_CONFIGS: FileCache[ConfigSummary | None] = FileCache(_config)
_EVALS: FileCache[EvalSummary] = FileCache(_eval)


def config_summary(run: RunDir) -> ConfigSummary | None:
    """The run's ConfigSummary (None without a config.yaml); shared between callers: read it, never change it."""
    return _CONFIGS.get(run.config_path)


def eval_summary(run: RunDir) -> EvalSummary:
    """The run's EvalSummary (empty before its first evaluation); shared between callers: never change it."""
    return _EVALS.get(run.eval_path)


def forget() -> None:
    """Drop every kept summary, as in a freshly started process (benchmarks time a cold listing)."""
    for cache in (_CONFIGS, _EVALS):
        cache.clear()
