"""Studies as data: a base config and named arms (sets of overrides), each trained over N seeds.

Every arm runs with the same training seeds (`train.seed`) and the same evaluation seed, so the
runs of two arms with one seed see the same query/gallery draws and are compared in pairs. This
module is pure: definitions, parsing, expansion into runs, preset files, and the aggregation of
plain run records into the `study show --json` summary (schema in docs/studies.md).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from core import stats
from core.config import flatten, load_config, parse_override
from core.errors import ConfigError
from jobs.queue import new_id
from jobs.sweeps import _config_path, _load_mapping, _overrides

SEED_KEY = "train.seed"
EVAL_SEED_KEY = "eval.seed"  # one for all arms (base or --set): paired runs must see the same draws
METRICS = ("rank1", "mAP", "mAP_trapezoid", "mINP")
SELECTED = "selected_"  # prefix of the figures of the epoch picked on validation
KEYS = METRICS + tuple(SELECTED + m for m in METRICS)
PENDING_STATES = ("queued", "running")
ARM_FORMAT = "LABEL:KEY=VALUE[,KEY=VALUE...] (LABEL: alone for the base config)"
_ITEM_SPLIT = re.compile(r",(?=\s*[A-Za-z_][\w.]*\s*=)")  # commas that start the next KEY=, not [256,128]


@dataclass
class Study:
    """A study definition. Arms are ordered; the reference arm is what the others are compared with.

    Overrides apply in this order: base config, study `overrides`, the arm's, then `train.seed`."""

    id: str
    name: str
    config: str | None  # base preset path
    arms: dict[str, dict[str, Any]]
    seeds: list[int]
    reference: str
    overrides: dict[str, Any] = field(default_factory=dict)
    created: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # {"run_id", "arm", "seed"} once queued

    def __post_init__(self) -> None:
        if not self.arms:
            raise ConfigError(f"study {self.name!r} has no arms; give at least one --arm {ARM_FORMAT}")
        for label, overrides in self.arms.items():
            if not str(label).strip():
                raise ConfigError(f"study {self.name!r}: an arm has an empty label")
            if SEED_KEY in overrides:
                raise ConfigError(f"arm {label!r} sets {SEED_KEY}; the study sets it (one run per seed)")
            if EVAL_SEED_KEY in overrides:
                raise ConfigError(f"arm {label!r} sets {EVAL_SEED_KEY}; every arm must see the same query/gallery "
                                  f"draws (set it for all with --set)")
        if SEED_KEY in self.overrides:
            raise ConfigError(f"--set {SEED_KEY}={self.overrides[SEED_KEY]} conflicts with the study's seeds")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"study {self.name!r}: seeds {self.seeds} must be a non-empty list of distinct seeds")
        if self.reference not in self.arms:
            raise ConfigError(f"reference arm {self.reference!r} is not one of the arms: {', '.join(self.arms)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Study":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """`--seeds N` (seeds 0..N-1) or an explicit list of whole numbers."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple)):
        raise ConfigError(f"seeds {seeds!r} is not valid; give a count or a list of whole numbers")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"--seeds {seeds} is not valid; a study needs at least 1 training seed")
        return list(range(seeds))
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds {list(seeds)!r} is not valid; seeds are whole numbers")
    return list(seeds)


def new_study(name: str, config: str | None, arms: Sequence[tuple[str, dict[str, Any]]], seeds: int | Sequence[int],
              reference: str | None = None, overrides: dict[str, Any] | None = None) -> Study:
    """A new study with a fresh id (`study-<run id format>`); arms as (label, overrides) in order."""
    labelled: dict[str, dict[str, Any]] = {}
    for label, arm in arms:
        if label in labelled:
            raise ConfigError(f"arm label {label!r} is given twice; labels name arms and must be distinct")
        labelled[label] = flatten(arm)
    return Study(id=f"study-{new_id()}", name=name, config=config, arms=labelled, seeds=seed_list(seeds),
                 reference=reference if reference is not None else next(iter(labelled), ""),
                 overrides=flatten(overrides or {}), created=time.time())


def parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    """`LABEL:KEY=VALUE,KEY=VALUE` -> (label, {key: value}); values parsed as YAML scalars."""
    label, colon, rest = text.partition(":")
    label = label.strip()
    if not colon:
        raise ConfigError(f"--arm {text!r} is not valid; expected {ARM_FORMAT}")
    if not label:
        raise ConfigError(f"--arm {text!r} has an empty label; expected {ARM_FORMAT}")
    overrides: dict[str, Any] = {}
    for item in _ITEM_SPLIT.split(rest) if rest.strip() else []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"--arm {label}: {item.strip()!r} is not KEY=VALUE; expected {ARM_FORMAT}")
        key, value = parse_override(item)
        if key in overrides:
            raise ConfigError(f"--arm {label}: {key} is set twice")
        overrides[key] = value
    return label, overrides


def expand(study: Study) -> list[tuple[str, int, dict[str, Any]]]:
    """(arm, seed, overrides incl. train.seed) of every run, seed by seed: a study stopped half-way
    has whole pairs to compare."""
    return [(label, seed, {**study.overrides, **arm, SEED_KEY: seed})
            for seed in study.seeds for label, arm in study.arms.items()]


def check_configs(study: Study) -> None:
    """Load every arm's config (first seed) so that a bad key fails before anything is queued."""
    for label, arm in study.arms.items():
        try:
            load_config(study.config, {**study.overrides, **arm, SEED_KEY: study.seeds[0]})
        except ConfigError as exc:
            raise ConfigError(f"arm {label!r}: {exc}") from None


def load_study_preset(path: str | Path) -> Study:
    """A study preset: `config:`, `arms: {label: {key: value} | null}`, `seeds:` (count or list),
    optional `reference:` (default the first arm), `set:` and `name:`."""
    data = _load_mapping(path)
    arms = data.get("arms")
    if not isinstance(arms, dict) or not arms or not all(a is None or isinstance(a, dict) for a in arms.values()):
        raise ConfigError(f"{path}: expected `arms:` mapping labels to {{KEY: VALUE}} overrides (or nothing)")
    if "seeds" not in data:
        raise ConfigError(f"{path}: expected `seeds:` as a count or a list of training seeds")
    reference = data.get("reference")
    return new_study(name=str(data.get("name") or Path(path).stem),
                     config=_config_path(data.get("config"), path),
                     arms=[(str(label), arm or {}) for label, arm in arms.items()], seeds=data["seeds"],
                     reference=None if reference is None else str(reference),
                     overrides=_overrides(data.get("set"), path))


# aggregation

def _group(study: Study, runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Run records per arm: succeeded ones in seed order ("ok"), ids of "failed", "pending" and
    "stopped" (early-stopped by ASHA: their figures are from a shorter training) ones."""
    groups: dict[str, dict[str, list]] = {label: {"ok": [], "failed": [], "pending": [], "stopped": []}
                                          for label in study.arms}
    seen: dict[tuple[str, int], str] = {}
    for run in runs:
        arm, seed = run["arm"], run["seed"]
        if arm not in groups or seed not in study.seeds:
            raise ValueError(f"run {run['run_id']}: arm {arm!r} seed {seed} is not part of study {study.id}")
        if run["state"] == "succeeded":
            if (arm, seed) in seen:
                raise ValueError(f"runs {seen[arm, seed]} and {run['run_id']} both succeeded as arm {arm!r} "
                                 f"seed {seed}")
            seen[arm, seed] = run["run_id"]
            groups[arm]["ok"].append(run)
        else:
            kind = "pending" if run["state"] in PENDING_STATES else "stopped" if run["state"] == "stopped" else "failed"
            groups[arm][kind].append(run["run_id"])
    for group in groups.values():
        group["ok"].sort(key=lambda r: study.seeds.index(r["seed"]))
    return groups


def _values(ok: list[dict[str, Any]], key: str) -> dict[int, float]:
    """{seed: value} of one metric key over succeeded runs (seed order); runs without it left out."""
    section, metric = ("selected", key[len(SELECTED):]) if key.startswith(SELECTED) else ("final", key)
    out = {}
    for run in ok:
        value = stats.finite((run.get(section) or {}).get(metric))
        if value is not None:
            out[run["seed"]] = value
    return out


def _comparisons(study: Study, values: dict[str, dict[str, dict[int, float]]]) -> list[dict[str, Any]]:
    """Each arm against the reference, per metric key, paired by seed; Holm across one key's arms."""
    out = []
    for key in KEYS:
        ref = values[study.reference][key]
        rows = []
        for label in study.arms:
            if label == study.reference:
                continue
            seeds = [s for s in values[label][key] if s in ref]
            a, b = [values[label][key][s] for s in seeds], [ref[s] for s in seeds]
            rows.append({"arm": label, "reference": study.reference, "metric": key, **stats.paired(a, b),
                         "seeds": seeds, "diffs": [x - y for x, y in zip(a, b)]})
        for row, p_holm in zip(rows, stats.holm([r["p"] for r in rows])):
            row["p_holm"] = p_holm
        out += rows
    return out


def aggregate(study: Study, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The `study show --json` summary of run records `{"run_id", "arm", "seed", "state", "final":
    {metric: value} | None, "selected": {metric: value} | None}` (docs/studies.md)."""
    groups = _group(study, runs)
    values = {label: {key: _values(g["ok"], key) for key in KEYS} for label, g in groups.items()}
    arms = {}
    for label, g in groups.items():
        metrics = {key: {**stats.summary(list(v.values())), "seeds": list(v)} for key, v in values[label].items()}
        arms[label] = {"n": len(g["ok"]), "seeds": [r["seed"] for r in g["ok"]], "runs": [r["run_id"] for r in g["ok"]],
                       "failed": g["failed"], "pending": g["pending"], "stopped": g["stopped"], "metrics": metrics}
    return {"id": study.id, "name": study.name, "reference": study.reference, "seeds": list(study.seeds),
            "arms": arms, "comparisons": _comparisons(study, values)}


# export

def arms_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per arm and metric key: arm, metric, n, mean, std, ci95_lo, ci95_hi, failed, pending."""
    rows = [{"arm": label, "metric": key, "n": m["n"], "mean": m["mean"], "std": m["std"],
             "ci95_lo": (m["ci95"] or [None])[0], "ci95_hi": (m["ci95"] or [None, None])[1],
             "failed": len(arm["failed"]), "pending": len(arm["pending"])}
            for label, arm in summary["arms"].items() for key, m in arm["metrics"].items()]
    return pd.DataFrame(rows, columns=["arm", "metric", "n", "mean", "std", "ci95_lo", "ci95_hi", "failed", "pending"])


def comparisons_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per comparison: arm, reference, metric, diff, ci95_lo, ci95_hi, p, p_holm, n_pairs."""
    rows = [{"arm": c["arm"], "reference": c["reference"], "metric": c["metric"], "diff": c["diff"],
             "ci95_lo": (c["ci95"] or [None])[0], "ci95_hi": (c["ci95"] or [None, None])[1],
             "p": c["p"], "p_holm": c["p_holm"], "n_pairs": c["n_pairs"]} for c in summary["comparisons"]]
    return pd.DataFrame(rows, columns=["arm", "reference", "metric", "diff", "ci95_lo", "ci95_hi", "p", "p_holm",
                                       "n_pairs"])


Table = Literal["arms", "comparisons"]
TABLES = ("arms", "comparisons")


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"table {table!r}: expected one of {', '.join(TABLES)}")


def to_csv(summary: dict[str, Any], table: Table = "arms", metrics: Sequence[str] | None = None) -> str:
    """The arms (one row per arm and metric key) or the comparisons as CSV; an empty cell is undefined."""
    _check_table(table)
    frame = arms_frame(summary) if table == "arms" else comparisons_frame(summary)
    if metrics is not None:
        frame = frame[frame["metric"].isin(metrics)]
    return frame.to_csv(index=False)


def _number(value: float | None, fmt: str = ".3f") -> str:
    return "–" if value is None else format(value, fmt)


def _mean_ci(m: dict[str, Any]) -> str:
    """`0.412 [0.398, 0.426]`; the mean alone without an interval."""
    ci = m["ci95"]
    return _number(m["mean"]) + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def _arms_markdown(summary: dict[str, Any], metrics: Sequence[str] | None) -> pd.DataFrame:
    arms = summary["arms"]
    keys = [k for k in metrics or KEYS if any(a["metrics"][k]["n"] for a in arms.values())]
    rows = [{"arm": label, "n": a["n"], "failed": len(a["failed"]), "pending": len(a["pending"]),
             **{k: _mean_ci(a["metrics"][k]) for k in keys}} for label, a in arms.items()]
    return pd.DataFrame(rows, columns=["arm", "n", "failed", "pending", *keys])


def _comparisons_markdown(summary: dict[str, Any], metrics: Sequence[str] | None) -> pd.DataFrame:
    rows = [{"arm": c["arm"], "reference": c["reference"], "metric": c["metric"], "diff": _number(c["diff"], "+.3f"),
             "95% CI": "–" if c["ci95"] is None else f"{c['ci95'][0]:+.3f} to {c['ci95'][1]:+.3f}",
             "p": stats.format_p(c["p"]), "Holm p": stats.format_p(c["p_holm"]), "pairs": c["n_pairs"]}
            for c in summary["comparisons"] if metrics is None or c["metric"] in metrics]
    return pd.DataFrame(rows, columns=["arm", "reference", "metric", "diff", "95% CI", "p", "Holm p", "pairs"])


def to_markdown(summary: dict[str, Any], table: Table = "arms", metrics: Sequence[str] | None = None) -> str:
    """A Markdown table: arms (n, failed, pending, `mean [95% CI]` per metric key that has values)
    or comparisons (diff, 95% CI, p, Holm p, pairs)."""
    _check_table(table)
    return _markdown((_arms_markdown if table == "arms" else _comparisons_markdown)(summary, metrics))


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs tabulate, which is not installed)."""
    def row(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([row(frame.columns), "|" + "---|" * len(frame.columns),
                      *(row(r) for r in frame.itertuples(index=False))]) + "\n"


# sweeps

def identical_results(runs: Sequence[dict[str, Any]], with_loss: bool = False) -> list[list[str]]:
    """Groups (2 or more, in input order) of run ids whose results are bit-identical: records
    `{"run_id", "final": {...} | None, "selected": {...} | None, "loss": [...] | None}`; the loss
    curve counts only `with_loss`. Runs without final results are never grouped."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        if not run.get("final"):
            continue
        result = [run.get("final"), run.get("selected")] + ([run.get("loss")] if with_loss else [])
        groups.setdefault(json.dumps(result, sort_keys=True), []).append(run["run_id"])
    return [ids for ids in groups.values() if len(ids) > 1]
