"""Ray Tune options of a sweep or study as data: early stopping (ASHA) and budgeted search (Optuna).

Pure: parsing and checking only, nothing here imports Ray. Both decide on the validation mAP
each evaluation reports (`metrics.jsonl` eval lines of split `val`), never on test figures. A
search queues `trials` run folders up front, each taking the values Optuna samples for it as
overrides; every key of the space is checked at both ends of its range before anything is queued.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

EARLY_STOPS = ("asha",)
SEARCHES = ("optuna",)
DISTRIBUTIONS = ("uniform", "loguniform", "int")
SPACE_FORMAT = "KEY=DIST:LOW:HIGH (DIST: uniform, loguniform or int)"
METRIC = "val_mAP"  # what ASHA and Optuna maximise: the validation split's mAP at each evaluation


@dataclass(frozen=True)
class Dist:
    """One axis of a search space: a distribution over [low, high]."""

    kind: str
    low: float
    high: float


@dataclass
class TuneOptions:
    """How Ray Tune drives a group of runs: ASHA's rungs (in epochs) and the search, if any."""

    early_stop: str | None = None
    grace: int = 1  # epochs every trial runs before ASHA may stop it
    reduction: float = 2.0  # ASHA keeps the best 1/reduction of the trials at each rung
    search: str | None = None
    trials: int = 0
    space: dict[str, Dist] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.early_stop not in (None, *EARLY_STOPS):
            raise ConfigError(f"--early-stop {self.early_stop!r} is not valid; choose {', '.join(EARLY_STOPS)}")
        if self.search not in (None, *SEARCHES):
            raise ConfigError(f"--search {self.search!r} is not valid; choose {', '.join(SEARCHES)}")
        if self.grace < 1 or self.reduction <= 1:
            raise ConfigError(f"ASHA needs a grace period of at least 1 epoch and a reduction factor above 1, "
                              f"got {self.grace} and {self.reduction}")
        if self.search and (self.trials < 1 or not self.space):
            raise ConfigError(f"--search {self.search} needs --trials N (at least 1) and at least one --space "
                              f"{SPACE_FORMAT}")
        if not self.search and (self.trials or self.space):
            raise ConfigError("--trials and --space need --search optuna")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TuneOptions":
        space = {key: Dist(**dist) for key, dist in data.get("space", {}).items()}
        return cls(**{**data, "space": space})


def parse_space(items: list[str]) -> dict[str, Dist]:
    """`optim.lr=loguniform:1e-6:1e-4` strings -> {key: Dist}, each range checked."""
    space: dict[str, Dist] = {}
    for item in items:
        key, eq, rest = item.partition("=")
        parts = rest.split(":")
        if not eq or not key.strip() or len(parts) != 3 or parts[0] not in DISTRIBUTIONS:
            raise ConfigError(f"--space {item!r} is not valid; expected {SPACE_FORMAT}")
        try:
            low, high = float(parts[1]), float(parts[2])
        except ValueError:
            raise ConfigError(f"--space {item!r}: LOW and HIGH must be numbers") from None
        if not low < high or (parts[0] == "loguniform" and low <= 0):
            raise ConfigError(f"--space {item!r}: needs LOW < HIGH{' and LOW > 0' if parts[0] == 'loguniform' else ''}")
        if parts[0] == "int" and (low != int(low) or high != int(high)):
            raise ConfigError(f"--space {item!r}: an int range needs whole numbers")
        space[key.strip()] = Dist(parts[0], low, high)
    return space


def ends(space: dict[str, Dist]) -> list[dict[str, Any]]:
    """The lowest and the highest values of every axis: the two corners a config is checked at."""
    def value(dist: Dist, x: float) -> Any:
        return int(x) if dist.kind == "int" else x
    return [{key: value(d, d.low) for key, d in space.items()}, {key: value(d, d.high) for key, d in space.items()}]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep options of `python -m jobs sweep` that hand the runs to Ray Tune."""
    parser.add_argument("--early-stop", choices=EARLY_STOPS, help="stop weak trials on val mAP (Ray Tune's ASHA)")
    parser.add_argument("--grace", type=int, default=1, help="epochs before ASHA may stop a trial (default 1)")
    parser.add_argument("--search", choices=SEARCHES, help="budgeted search through Ray Tune's OptunaSearch")
    parser.add_argument("--trials", type=int, default=0, help="how many runs the search may start")
    parser.add_argument("--space", action="append", default=[], metavar=SPACE_FORMAT, help="search axis (repeatable)")


def options_of(args: argparse.Namespace) -> TuneOptions | None:
    """The TuneOptions the sweep arguments ask for; None for a plain sweep."""
    if not (args.early_stop or args.search or args.trials or args.space):
        return None
    return TuneOptions(early_stop=args.early_stop, grace=args.grace, search=args.search, trials=args.trials,
                       space=parse_space(args.space))


def search(config: str | None, options: TuneOptions, overrides: dict[str, Any] | None = None, name: str = "",
           root: str | Path | None = None, start_scheduler: bool = True, backend: str | None = "ray") -> list[str]:
    """Queue the `options.trials` runs of a search (on the ray backend, the only one that searches);
    their ids. The space is checked up front: each key with its lowest and its highest value."""
    from jobs import api

    if not options.search:
        raise ConfigError("a search needs --search optuna")
    base = api.as_dict(overrides)
    api.check_specs([(config, {**base, **corner}) for corner in ends(options.space)])
    title = name or (Path(config).stem if config else "search")
    labels = {"sweep_id": f"search-{api.new_id()}"}
    specs = [api._Spec(config, dict(base), f"{title} trial {i + 1}", labels=dict(labels)) for i in range(options.trials)]
    return api.enqueue(api.Queue(root), specs, start_scheduler, backend=backend or "ray", tune=options)
