"""Sweeps and chains as data: grids over config keys, and the preset files that name them.

A sweep is the product of a grid (`optim.lr=1e-4,5e-5` x `optim.name=adam,adamw`) applied to a
base preset; a chain is a list of stages, each run starting from the previous one's best
checkpoint. Preset files (configs/sweeps/*.yaml, configs/chains/*.yaml) say the same in YAML.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import flatten, parse_override
from core.errors import ConfigError
from jobs.process import PROJECT_ROOT


@dataclass
class SweepPreset:
    config: str | None
    grid: dict[str, list[Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class ChainPreset:
    stages: list[tuple[str | None, dict[str, Any]]]
    name: str = ""


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`KEY=V1,V2,...` strings -> {key: [values]} (values parsed as YAML scalars)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, _ = parse_override(item)
        raw = item.split("=", 1)[1]
        values = [parse_override(f"{key}={v.strip()}")[1] for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {item!r} has no values; expected KEY=V1,V2,...")
        grid[key] = values
    return grid


def expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest."""
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} needs a non-empty list of values, got {values!r}")
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def label(combo: dict[str, Any]) -> str:
    """Short name of one combination: `lr=0.0001 name=adam` (full keys where the last part repeats)."""
    last = [k.rsplit(".", 1)[-1] for k in combo]
    return " ".join(f"{short if last.count(short) == 1 else key}={value}"
                    for key, short, value in zip(combo, last, combo.values()))


def load_sweep_preset(path: str | Path) -> SweepPreset:
    """A sweep preset: `config:` base preset, `grid:` {key: [values]}, optional `set:` and `name:`."""
    data = _load_mapping(path)
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{path}: expected `grid:` with at least one key and a list of values")
    grid = flatten(grid)
    expand(grid)
    return SweepPreset(config=_config_path(data.get("config"), path), grid=grid,
                       overrides=_overrides(data.get("set"), path), name=str(data.get("name") or Path(path).stem))


def load_chain_preset(path: str | Path) -> ChainPreset:
    """A chain preset: `stages:` [{config: PATH, set: {key: value}}, ...], optional `name:`."""
    data = _load_mapping(path)
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages):
        raise ConfigError(f"{path}: expected `stages:` as a list of {{config: PATH, set: {{KEY: VALUE}}}}")
    return ChainPreset(stages=[(_config_path(s.get("config"), path), _overrides(s.get("set"), path)) for s in stages],
                       name=str(data.get("name") or Path(path).stem))


def _load_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"preset file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _overrides(value: Any, path: str | Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: `set:` must map config keys to values")
    return flatten(value)


def _config_path(value: Any, preset: str | Path) -> str | None:
    """A base preset named in a preset file: as given, else beside the preset, else in the project."""
    if value is None:
        return None
    for candidate in (Path(value), Path(preset).parent / value, PROJECT_ROOT / value):
        if candidate.is_file():
            return str(candidate.absolute())
    raise ConfigError(f"{preset}: config file not found: {value}")
