"""Studies over the queue: create (arms x seeds runs through jobs.api), the study file, its summary, cancel.

A study is stored as `<root>/studies/<id>.json` (jobs.studies.Study as JSON, read and written only
here) and lists its runs; each run's status.json carries the study id, its arm and its seed. The
summary reads the runs' settled states and results through jobs.api (jobs.studies.aggregate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import ConfigError, HandIDError
from core.runs import RecordError, write_atomic
from core.runs.records import read_json
from jobs import api
from jobs.queue import JobError, resolve_root
from jobs.studies import Study, aggregate, check_configs, expand

STUDIES = "studies"
STUDY_ID = re.compile(r"study-[A-Za-z0-9][A-Za-z0-9_-]{0,190}")


def studies_dir(root: str | Path | None = None) -> Path:
    return resolve_root(root) / STUDIES


def study_path(study_id: str, root: str | Path | None = None) -> Path:
    """`<root>/studies/<id>.json`; ids that could name another file are refused."""
    if not isinstance(study_id, str) or not STUDY_ID.fullmatch(study_id):
        raise JobError(f"{study_id!r} is not a study id (study-<date>-<time>-<hex>)")
    return studies_dir(root) / f"{study_id}.json"


def write_study(study: Study, root: str | Path | None = None) -> Path:
    path = study_path(study.id, root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(study.to_json(), indent=1))
    except OSError as exc:
        raise JobError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def read_study(study_id: str, root: str | Path | None = None) -> Study:
    """The study of that id; JobError when there is none, RecordError when its file is damaged."""
    path = study_path(study_id, root)
    data = read_json(path)
    if data is None:
        raise JobError(f"no study {study_id} in {path.parent}")
    return _from_json(data, path)


def _from_json(data: Any, path: Path) -> Study:
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a study must be a JSON object")
    try:
        study = Study.from_json(data)
    except (TypeError, ConfigError) as exc:
        raise RecordError(f"{path}: not a study ({exc})") from None
    if not all(isinstance(r, dict) and {"run_id", "arm", "seed"} <= set(r) for r in study.runs):
        raise RecordError(f"{path}: runs must be {{run_id, arm, seed}} objects")
    return study


def list_studies(root: str | Path | None = None,
                 on_damaged: Callable[[RecordError], None] | None = None) -> list[Study]:
    """Every study of the root, newest first. A damaged file raises RecordError naming it, or, with
    `on_damaged`, is passed to it and left out (so one damaged file never hides the others)."""
    folder = studies_dir(root)
    studies = []
    for path in sorted(folder.glob("study-*.json")) if folder.is_dir() else []:
        try:
            studies.append(_from_json(read_json(path), path))
        except RecordError as exc:
            if on_damaged is None:
                raise
            on_damaged(exc)
    return sorted(studies, key=lambda s: (s.created or 0, s.id), reverse=True)


def create(study: Study, root: str | Path | None = None, start_scheduler: bool = True,
           backend: str | None = None) -> Study:
    """Check every arm, queue arms x seeds runs (labelled with the study, arm and seed), store the
    study with its run ids. Nothing is queued when any arm is invalid."""
    check_configs(study)
    for label, arm in study.arms.items():  # the full checks (roots, backbone, weights), named by arm
        try:
            api.check_specs([(study.config, {**study.overrides, **arm, "train.seed": study.seeds[0]})])
        except HandIDError as exc:  # ConfigError, DataError (a root), ModelError (a backbone, weights)
            raise type(exc)(f"arm {label!r}: {exc}") from None
    runs = expand(study)
    specs = [(study.config, overrides, f"{study.name} {arm} seed {seed}",
              {"study_id": study.id, "arm": arm, "seed": seed}) for arm, seed, overrides in runs]
    ids = api.submit_labelled(specs, root, start_scheduler=False, backend=backend)
    stored = replace(study, runs=[{"run_id": i, "arm": arm, "seed": seed} for i, (arm, seed, _) in zip(ids, runs)])
    try:
        write_study(stored, root)
    except JobError:
        api.cancel_many(ids, root)
        raise
    if start_scheduler:
        api.start(ids, root, backend)
    return stored


def run_records(study: Study, infos: list[api.RunInfo]) -> list[dict[str, Any]]:
    """The study's runs as jobs.studies.aggregate records; a run whose folder is gone is `missing`."""
    by_id = {i.run_id: i for i in infos}
    records = []
    for run in study.runs:
        info = by_id.get(run["run_id"])
        records.append({"run_id": run["run_id"], "arm": run["arm"], "seed": run["seed"],
                        "state": info.state if info else "missing",
                        "final": (info.final or None) if info else None,
                        "selected": (info.selected or None) if info else None})
    return records


def summary(study: Study, infos: list[api.RunInfo] | None = None, root: str | Path | None = None) -> dict[str, Any]:
    """The `study show --json` summary (docs/studies.md) from the runs' current states and results."""
    return aggregate(study, run_records(study, api.list_runs(root) if infos is None else infos))


def cancel(study: Study, root: str | Path | None = None) -> dict[str, str]:
    """Cancel the study's queued and running runs at once (jobs.api.cancel_many); {run id: state left in}."""
    return api.cancel_many([r["run_id"] for r in study.runs], root)
