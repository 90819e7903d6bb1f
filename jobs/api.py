"""The Python API of background runs, used by `python -m jobs` and by the dashboard.

Submitting validates the config first (the trainer's own ConfigError, nothing queued), then
writes the run folder (config.yaml, status `queued`), then the queue row in one transaction,
so a failure at any point leaves no half run. A scheduler is started on demand.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import flatten, load_config, parse_override, to_dict
from core.runs import FINAL_STATES, RunDir, list_runs as list_run_dirs, now
from jobs import process, state, sweeps
from jobs.queue import Job, JobError, Queue, new_id, new_ids
from jobs.scheduler import ensure_scheduler

Overrides = list[str] | dict[str, Any] | None
LOSSES = ("ce", "i2t", "triplet", "center", "arcface")
EVAL_DIR = "evaluations"


@dataclass
class RunInfo:
    """What a user sees of one run: state, progress, best results, times, lineage."""

    run_id: str
    name: str
    state: str
    epoch: float
    epochs: int
    progress: float  # 0..1
    best_rank1: float | None
    best_mAP: float | None
    created: float | None
    started: float | None
    ended: float | None
    sweep_id: str | None
    after: str | None
    error: str | None
    path: str
    kind: str  # train | evaluate
    backbone: str
    losses: str  # e.g. "ce+triplet"
    eta_seconds: float | None
    attempt: int = 0
    slot: str | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Spec:
    """One training run to queue."""

    config: str | None
    overrides: dict[str, Any]
    name: str = ""
    after: str | None = None
    sweep_id: str | None = None


# submitting

def submit(config: str | None, overrides: Overrides = None, name: str = "", after: str | None = None,
           root: str | Path | None = None, start_scheduler: bool = True) -> str:
    """Queue one training run; returns its id. `after` chains it to an earlier run's success."""
    queue = Queue(root)
    if after is not None and queue.get(after) is None:
        raise JobError(f"--after {after}: no such run in {queue.path}")
    return _enqueue(queue, [_Spec(config, _as_dict(overrides), name, after)], start_scheduler)[0]


def sweep(config: str | None, grid: dict[str, list[Any]], overrides: Overrides = None, name: str = "",
          root: str | Path | None = None, start_scheduler: bool = True) -> list[str]:
    """Queue one run per combination of the grid, sharing a sweep id; every config checked first."""
    base = _as_dict(overrides)
    sweep_id = f"sweep-{new_id()}"
    title = name or (Path(config).stem if config else "sweep")
    specs = [_Spec(config, {**base, **combo}, f"{title} {sweeps.label(combo)}", sweep_id=sweep_id)
             for combo in sweeps.expand(grid)]
    return _enqueue(Queue(root), specs, start_scheduler)


def sweep_preset(path: str | Path, root: str | Path | None = None, start_scheduler: bool = True) -> list[str]:
    preset = sweeps.load_sweep_preset(path)
    return sweep(preset.config, preset.grid, preset.overrides, preset.name, root, start_scheduler)


def submit_chain(stages: list[tuple[str | None, Overrides]], name: str = "", root: str | Path | None = None,
                 start_scheduler: bool = True) -> list[str]:
    """Queue runs that start one after another, each from the previous one's best checkpoint."""
    if not stages:
        raise JobError("a chain needs at least one stage")
    specs = [_Spec(config, _as_dict(overrides), f"{name} stage {i + 1}" if name else "")
             for i, (config, overrides) in enumerate(stages)]
    return _enqueue(Queue(root), specs, start_scheduler, chained=True)


def chain_preset(path: str | Path, root: str | Path | None = None, start_scheduler: bool = True) -> list[str]:
    preset = sweeps.load_chain_preset(path)
    return submit_chain(preset.stages, preset.name, root, start_scheduler)


def evaluate(run_id: str, dataset: str, root_dir: str, protocol: str, checkpoint: str = "best",
             root: str | Path | None = None, start_scheduler: bool = True) -> str:
    """Queue `python -m core.evaluate` of a run's checkpoint on a dataset/protocol; returns the job id."""
    queue = Queue(root)
    target = RunDir.at(queue.root / run_id)
    if not target.checkpoint(checkpoint).exists():
        raise JobError(f"run {run_id} has no {checkpoint} checkpoint in {target.path}")
    job_id = new_id()
    job = Job(id=job_id, path=str(queue.root / EVAL_DIR / job_id), cwd=os.getcwd(), kind="evaluate", created=now(),
              name=f"evaluate {run_id} on {dataset} {protocol}",
              argv=["-m", "core.evaluate", "--run-dir", str(target.path), "--checkpoint", checkpoint,
                    "--dataset", dataset, "--root", str(root_dir), "--protocol", protocol, "--json"],
              overrides={"dataset": dataset, "root": str(root_dir), "protocol": protocol, "checkpoint": checkpoint})
    _write_folders(queue, [(job, None, {"target": run_id, **job.overrides})], start_scheduler)
    return job_id


# reading

def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run of the root, newest first, after settling their states (queued ones and folders
    started by hand included)."""
    queue = Queue(root)
    state.refresh(queue)
    jobs = queue.all()
    known = {Path(j.path) for j in jobs}
    infos = [_info(j) for j in jobs]
    infos += [_folder_info(r) for r in list_run_dirs(queue.root) if r.path not in known]
    return sorted(infos, key=lambda i: (i.created or 0, i.run_id), reverse=True)


def get_run(run_id: str, root: str | Path | None = None) -> RunInfo:
    queue = Queue(root)
    job = _settled(queue, run_id)
    if job is not None:
        return _info(job)
    run = RunDir.at(queue.root / run_id)
    if run.status_path.exists() or run.config_path.exists():
        return _folder_info(run)
    raise JobError(f"no run {run_id} in {queue.root}")


# controlling

def cancel(run_id: str, root: str | Path | None = None) -> None:
    """Cancel a queued run at once; ask a running one to stop (SIGTERM, SIGKILL after a grace period)."""
    queue = Queue(root)
    job = _job(queue, run_id)
    before = queue.request_cancel(run_id, now())
    if before is None or before.state in FINAL_STATES:
        raise JobError(f"run {run_id} already {job.state}; nothing to cancel")
    if before.state == "queued":
        RunDir.at(job.path).update_status(state="cancelled", ended=now(), error="cancelled before it started")
        return
    if before.cancel_requested is None and process.is_running(before.pid, before.argv):
        process.signal_group(before.pid, signal.SIGTERM)
    ensure_scheduler(queue.root)  # it kills the run if it ignores SIGTERM for the grace period


def resume(run_id: str, root: str | Path | None = None) -> None:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    queue = Queue(root)
    job = _job(queue, run_id)
    if job.state not in ("failed", "cancelled"):
        raise JobError(f"run {run_id} is {job.state}; only a failed or cancelled run can be resumed")
    run = RunDir.at(job.path)
    previous = run.read_status()
    run.update_status(state="queued", error=None, ended=None)
    try:
        requeued = queue.update(run_id, only_if=("failed", "cancelled"), state="queued", error=None, ended=None,
                                exit_code=None, cancel_requested=None)
    except JobError:
        run.update_status(**previous)
        raise
    if not requeued:
        run.update_status(**previous)
        raise JobError(f"run {run_id} changed state while resuming; try again")
    ensure_scheduler(queue.root)


# internals

def _as_dict(overrides: Overrides) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return flatten(overrides)
    return dict(parse_override(o) for o in overrides)


def _enqueue(queue: Queue, specs: list[_Spec], start_scheduler: bool, chained: bool = False) -> list[str]:
    """Validate every spec, then write all folders, then all rows in one transaction."""
    ids = new_ids(len(specs))
    if chained:
        for i in range(1, len(specs)):
            specs[i].after = ids[i - 1]
    prepared = []
    for run_id, spec in zip(ids, specs):
        overrides = dict(spec.overrides)
        if spec.after:
            overrides["model.init_from"] = str(queue.root / spec.after)
        config = load_config(spec.config, overrides)
        run = RunDir.at(queue.root / run_id)
        name = spec.name or config.name or (Path(spec.config).stem if spec.config else "run")
        job = Job(id=run_id, path=str(run.path), cwd=os.getcwd(), created=now(), name=name,
                  config=str(Path(spec.config).absolute()) if spec.config else "", overrides=overrides,
                  sweep_id=spec.sweep_id, after=spec.after,
                  argv=["-m", "core.train", "--config", str(run.config_path), "--run-dir", str(run.path)])
        prepared.append((job, to_dict(config), {"epochs": config.train.epochs}))
    _write_folders(queue, prepared, start_scheduler)
    return ids


def _write_folders(queue: Queue, entries: list[tuple[Job, dict[str, Any] | None, dict[str, Any]]],
                   start_scheduler: bool) -> None:
    """Folders (config.yaml, status queued) first, then the rows; on any failure remove the folders.

    Each entry is (row, resolved config or None, extra status fields)."""
    created: list[Path] = []
    try:
        for job, config, extra in entries:
            run = RunDir.at(job.path)
            run.path.mkdir(parents=True)
            created.append(run.path)
            if config is not None:
                run.write_config(config)
            run.update_status(state="queued", kind=job.kind, name=job.name, created=job.created, epoch=0,
                              sweep_id=job.sweep_id, after=job.after, **extra)
        queue.insert([job for job, _, _ in entries])
    except OSError as exc:
        _remove(created)
        raise JobError(f"cannot write run folders in {queue.root}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(created)
        raise
    if start_scheduler:
        ensure_scheduler(queue.root)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _settled(queue: Queue, run_id: str) -> Job | None:
    """The row of run_id after settling its state, None if the queue does not know it."""
    job = queue.get(run_id)
    if job is not None and job.state == "running":
        state.settle_running(queue, job)
    elif job is not None and job.state == "queued" and job.after:
        state.settle_chained(queue, job)
    else:
        return job
    return queue.get(run_id)


def _job(queue: Queue, run_id: str) -> Job:
    job = _settled(queue, run_id)
    if job is None:
        raise JobError(f"no run {run_id} in {queue.path}")
    return job


def _info(job: Job) -> RunInfo:
    run = RunDir.at(job.path)
    status = run.read_status()
    best = _best(run, job.kind)
    info = _describe(run, status, job.state, best)
    info.update(run_id=job.id, name=job.name, created=job.created, started=job.started, ended=job.ended,
                sweep_id=job.sweep_id, after=job.after, error=job.error, kind=job.kind, attempt=job.attempt,
                slot=job.slot, pid=job.pid)
    info["eta_seconds"] = _eta(info, job)
    return RunInfo(**info)


def _folder_info(run: RunDir) -> RunInfo:
    """A run folder the queue does not know: everything from the folder itself."""
    status = state.settle_folder(run)
    info = _describe(run, status, status.get("state", "queued"), _best(run, "train"))
    info.update(run_id=run.run_id, name=status.get("name") or run.read_config().get("name") or run.run_id,
                created=status.get("created") or status.get("started") or run.path.stat().st_mtime,
                started=status.get("started"), ended=status.get("ended"), sweep_id=None, after=None,
                error=status.get("error"), kind="train", pid=status.get("pid"), eta_seconds=None)
    return RunInfo(**info)


def _describe(run: RunDir, status: dict[str, Any], run_state: str, best: dict[str, Any]) -> dict[str, Any]:
    config = run.read_config()
    epochs = int(status.get("epochs") or config.get("train", {}).get("epochs") or 0)
    epoch = float(status.get("epoch") or 0)
    progress = 1.0 if run_state == "succeeded" else (min(epoch / epochs, 1.0) if epochs else 0.0)
    loss = config.get("loss", {})
    return dict(state=run_state, epoch=epoch, epochs=epochs, progress=progress, path=str(run.path),
                best_rank1=best.get("rank1"), best_mAP=best.get("mAP"),
                backbone=config.get("model", {}).get("backbone", ""),
                losses="+".join(n for n in LOSSES if (loss.get(n) or {}).get("weight", 0) > 0))


def _best(run: RunDir, kind: str) -> dict[str, Any]:
    return state.read_result(run) if kind == "evaluate" else run.read_eval().get("best") or {}


def _eta(info: dict[str, Any], job: Job) -> float | None:
    """Seconds left at this attempt's pace: elapsed / progress made since it started x progress left."""
    if job.state != "running" or not job.started or not info["epochs"]:
        return None
    done = info["progress"] - min(job.start_epoch / info["epochs"], 1.0)
    if done <= 0:
        return None
    return (now() - job.started) * (1.0 - info["progress"]) / done
