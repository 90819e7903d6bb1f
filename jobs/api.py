"""The Python API of background runs, used by `python -m jobs` and by the dashboard.

Submitting validates every config first (keys, ranges, backbone, weights, roots: nothing is
queued when one is wrong), then writes the run folders (config.yaml, status `queued`: the
record of the run), then the queue rows in one transaction, so a failure at any point leaves no
half run. Reading settles every run's state from its folder (jobs.state) and restarts a dead
scheduler while runs wait. Run ids are checked before they name a folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.config import Config, flatten, load_config, parse_override, to_dict
from core.losses import registry as losses
from core.runs import ACTIVE_STATES, FINAL_STATES, RecordError, RunDir, RunMeta, Status, list_run_dirs, now
from jobs import backends, state, summaries, sweeps
from jobs.queue import Job, JobError, Queue, check_run_id, new_id, new_ids
from jobs.scheduler import ensure_scheduler
from jobs.tune import TuneOptions

Overrides = list[str] | dict[str, Any] | None
EVAL_DIR = "evaluations"
RESUMABLE = ("failed", "cancelled", "stopped")


@dataclass
class RunInfo:
    """What a user sees of one run: state, progress, results (final, and selected on validation),
    times, lineage, and the problem when its folder cannot be read."""

    run_id: str
    path: str
    kind: str = "train"  # train | evaluate
    name: str = ""
    state: str = "unknown"  # a Status state, or `damaged` when its folder cannot be read
    error: str | None = None
    epoch: float = 0.0
    epochs: int = 0
    progress: float = 0.0  # 0..1
    eta_seconds: float | None = None
    created: float | None = None
    started: float | None = None
    ended: float | None = None
    sweep_id: str | None = None
    study_id: str | None = None
    arm: str | None = None
    seed: int | None = None
    after: str | None = None
    target: str | None = None  # an evaluation job: the run it evaluates
    backbone: str = ""
    losses: str = ""  # e.g. "ce+triplet"
    final: dict[str, float | None] = field(default_factory=dict)  # test figures of the last epoch
    selected: dict[str, float | None] = field(default_factory=dict)  # test figures of the val-selected epoch
    selected_epoch: int | None = None
    attempt: int = 0
    slot: str | None = None
    pid: int | None = None
    backend: str = "local"
    tags: list[str] = field(default_factory=list)  # meta.json: the researcher's labels and note
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Spec:
    """One training run to queue."""

    config: str | None
    overrides: dict[str, Any]
    name: str = ""
    after: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)  # status fields: sweep_id, study_id, arm, seed


# submitting

def submit(config: str | None, overrides: Overrides = None, name: str = "", after: str | None = None,
           root: str | Path | None = None, start_scheduler: bool = True, backend: str | None = None) -> str:
    """Queue one training run; returns its id. `after` chains it to an earlier run's success."""
    queue = Queue(root)
    if after is not None and queue.get(check_run_id(after)) is None:
        raise JobError(f"--after {after}: no such run in {queue.path}")
    return enqueue(queue, [_Spec(config, as_dict(overrides), name, after)], start_scheduler, backend=backend)[0]


def sweep(config: str | None, grid: dict[str, list[Any]], overrides: Overrides = None, name: str = "",
          root: str | Path | None = None, start_scheduler: bool = True, backend: str | None = None,
          tune: TuneOptions | None = None) -> list[str]:
    """Queue one run per combination of the grid, sharing a sweep id; every config checked first.
    `tune` (ray backend): ASHA stops weak runs on val mAP."""
    base = as_dict(overrides)
    sweep_id = f"sweep-{new_id()}"
    title = name or (Path(config).stem if config else "sweep")
    specs = [_Spec(config, {**base, **combo}, f"{title} {sweeps.label(combo)}", labels={"sweep_id": sweep_id})
             for combo in sweeps.expand(grid)]
    return enqueue(Queue(root), specs, start_scheduler, backend=backend, tune=tune)


def submit_labelled(specs: list[tuple[str | None, dict[str, Any], str, dict[str, Any]]],
                    root: str | Path | None = None, start_scheduler: bool = True,
                    backend: str | None = None) -> list[str]:
    """Queue training runs given as (config, overrides, name, status labels: study_id, arm, seed) at once:
    every config checked first, nothing queued when one is wrong (a study's arms x seeds)."""
    return enqueue(Queue(root), [_Spec(c, as_dict(o), n, labels=dict(l)) for c, o, n, l in specs], start_scheduler,
                   backend=backend)


def start(run_ids: list[str], root: str | Path | None = None, backend: str | None = None) -> None:
    """Start queued runs on their backend (the local scheduler, or a Ray driver)."""
    backends.get(backends.resolve(backend)).start(Queue(root), run_ids, None)


def sweep_preset(path: str | Path, root: str | Path | None = None, start_scheduler: bool = True,
                 overrides: Overrides = None, backend: str | None = None, tune: TuneOptions | None = None) -> list[str]:
    preset = sweeps.load_sweep_preset(path)
    return sweep(preset.config, preset.grid, {**preset.overrides, **as_dict(overrides)}, preset.name, root,
                 start_scheduler, backend, tune)


def submit_chain(stages: list[tuple[str | None, Overrides]], name: str = "", root: str | Path | None = None,
                 start_scheduler: bool = True, backend: str | None = None) -> list[str]:
    """Queue runs that start one after another, each from the previous one's selected checkpoint."""
    if not stages:
        raise JobError("a chain needs at least one stage")
    specs = [_Spec(config, as_dict(overrides), f"{name} stage {i + 1}" if name else "")
             for i, (config, overrides) in enumerate(stages)]
    return enqueue(Queue(root), specs, start_scheduler, chained=True, backend=backend)


def chain_preset(path: str | Path, root: str | Path | None = None, start_scheduler: bool = True,
                 overrides: Overrides = None, backend: str | None = None) -> list[str]:
    preset = sweeps.load_chain_preset(path)
    extra = as_dict(overrides)
    return submit_chain([(config, {**stage, **extra}) for config, stage in preset.stages], preset.name, root,
                        start_scheduler, backend)


def evaluate(run_id: str, dataset: str, root_dir: str, protocol: str, checkpoint: str = "best",
             root: str | Path | None = None, start_scheduler: bool = True) -> str:
    """Queue `python -m core.evaluate` of a run's checkpoint on a dataset/protocol; returns the job id."""
    queue = Queue(root)
    target = RunDir.at(queue.root / check_run_id(run_id))
    if checkpoint not in ("best", "last"):
        raise JobError(f"checkpoint {checkpoint!r} is not valid; choose best or last")
    if not target.checkpoint(checkpoint).exists():
        raise JobError(f"run {run_id} has no {checkpoint} checkpoint in {target.path}")
    if not str(root_dir).strip() or not Path(root_dir).expanduser().exists():
        raise JobError(f"dataset root not found: {root_dir or '(empty)'}")
    job_id = new_id()
    job = Job(id=job_id, path=str(queue.root / EVAL_DIR / job_id), cwd=os.getcwd(), kind="evaluate", created=now(),
              argv=["-m", "core.evaluate", "--run-dir", str(target.path), "--checkpoint", checkpoint,
                    "--dataset", dataset, "--root", str(root_dir), "--protocol", protocol, "--json"],
              overrides={"dataset": dataset, "root": str(root_dir), "protocol": protocol, "checkpoint": checkpoint})
    status = Status(kind="evaluate", name=f"evaluate {run_id} on {dataset}/{protocol}", created=job.created,
                    target=run_id)
    _write_folders(queue, [(job, None, status)], start_scheduler)
    return job_id


def as_dict(overrides: Overrides) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return flatten(overrides)
    return dict(parse_override(o) for o in overrides)


def check_specs(specs: list[tuple[str | None, dict[str, Any]]]) -> list[Config]:
    """Every (preset, overrides) loaded and checked up front (core.validation); the configs."""
    from core.validation import check_config

    configs = []
    for config, overrides in specs:
        cfg = load_config(config, overrides)
        check_config(cfg)
        configs.append(cfg)
    return configs


def enqueue(queue: Queue, specs: list[_Spec], start_scheduler: bool, chained: bool = False,
            backend: str | None = None, tune: TuneOptions | None = None) -> list[str]:
    """Validate every spec, then write all folders, then all rows in one transaction, then hand
    them to the backend (jobs.backends: the argument, else $HANDID_BACKEND, else local)."""
    backend = backends.resolve(backend)
    if tune is not None and backend != "ray":
        raise JobError("early stopping and search run on Ray Tune; add --backend ray")
    ids = new_ids(len(specs))
    if chained:
        for i in range(1, len(specs)):
            specs[i].after = ids[i - 1]
    for spec in specs:
        if spec.after:
            spec.overrides["model.init_from"] = str(queue.root / spec.after)
    configs = _check_chain(queue, specs) if chained or any(s.after for s in specs) else check_specs(
        [(s.config, s.overrides) for s in specs])
    prepared = []
    for run_id, spec, config in zip(ids, specs, configs):
        run = RunDir.at(queue.root / run_id)
        name = spec.name or config.name or (Path(spec.config).stem if spec.config else "run")
        job = Job(id=run_id, path=str(run.path), cwd=os.getcwd(), created=now(), backend=backend,
                  config=str(Path(spec.config).absolute()) if spec.config else "", overrides=spec.overrides,
                  after=spec.after, argv=["-m", "core.train", "--config", str(run.config_path), "--run-dir", str(run.path)])
        status = Status(name=name, created=job.created, epochs=config.train.epochs, after=spec.after, **spec.labels)
        prepared.append((job, to_dict(config), status))
    _write_folders(queue, prepared, start_scheduler, tune)
    return ids


def _check_chain(queue: Queue, specs: list[_Spec]) -> list[Config]:
    """A chained stage starts from a checkpoint that does not exist yet: check it without init_from."""
    from core.validation import check_config

    configs = []
    for spec in specs:
        cfg = load_config(spec.config, spec.overrides)
        start, cfg.model.init_from = cfg.model.init_from, ""
        check_config(cfg)
        cfg.model.init_from = start
        configs.append(cfg)
    return configs


def _write_folders(queue: Queue, entries: list[tuple[Job, dict[str, Any] | None, Status]],
                   start_scheduler: bool, tune: TuneOptions | None = None) -> None:
    """Folders (config.yaml, status queued) first, then the rows; on any failure remove the folders.

    Each entry is (row, resolved config or None, its queued status)."""
    created: list[Path] = []
    try:
        for job, config, status in entries:
            run = RunDir.at(job.path)
            run.path.mkdir(parents=True)
            created.append(run.path)
            if config is not None:
                run.write_config(config)
            run.update_status(**asdict(status))
        queue.insert([job for job, _, _ in entries])
    except OSError as exc:
        _remove(created)
        raise JobError(f"cannot write run folders in {queue.root}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(created)
        raise
    if start_scheduler:
        backends.get(entries[0][0].backend).start(queue, [job.id for job, _, _ in entries], tune)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


# reading

def list_runs(root: str | Path | None = None, start_scheduler: bool = True) -> list[RunInfo]:
    """Every run and evaluation job of the root, newest first, after settling their states (runs
    started by hand included; a damaged folder is listed with its problem). A scheduler is started
    when runs wait and none is alive."""
    queue = Queue(root)
    settled = state.settle_all(queue)
    known = {Path(job.path) for job, _ in settled}
    infos = [_info(RunDir.at(job.path), status, job) for job, status in settled]
    for run in list_run_dirs(queue.root):
        if run.path not in known:
            infos.append(_info(run, state.settle(run), None))
    if start_scheduler and any(i.state == "queued" and i.backend == "local" for i in infos):
        ensure_scheduler(queue.root)
    return sorted(infos, key=lambda i: (i.created or 0, i.run_id), reverse=True)


def get_run(run_id: str, root: str | Path | None = None) -> RunInfo:
    queue = Queue(root)
    check_run_id(run_id)
    job = queue.get(run_id)
    run = RunDir.at(job.path if job else queue.root / run_id)
    if job is None and not (run.status_path.exists() or run.config_path.exists()):
        raise JobError(f"no run {run_id} in {queue.root}")
    parent = state.read_status(RunDir.at(queue.root / job.after)) if job and job.after else None
    return _info(run, state.settle(run, job, parent=parent), job)


def heal(root: str | Path | None = None) -> bool:
    """Start a scheduler when runs wait and none is alive (every jobs command ends with this, so a crashed
    scheduler never strands the queue); True when one was started."""
    queue = Queue(root)
    waiting = any(job.backend == "local" and (status := state.read_status(RunDir.at(job.path))) is not None
                  and status.state == "queued" for job in queue.all())
    return ensure_scheduler(queue.root) if waiting else False


def runs_of(infos: list[RunInfo], sweep_id: str | None = None, study_id: str | None = None) -> list[str]:
    """Ids of the runs of a sweep or study."""
    return [i.run_id for i in infos if (sweep_id and i.sweep_id == sweep_id) or (study_id and i.study_id == study_id)]


# controlling

def annotate(run_id: str, add: list[str] = (), remove: list[str] = (), note: str | None = None,
             root: str | Path | None = None) -> RunMeta:
    """Add or remove a run's tags, or replace its note (meta.json; its status is left alone)."""
    return RunDir.at(get_run(run_id, root).path).update_meta(add, remove, note)


def cancel(run_id: str, root: str | Path | None = None) -> str:
    """Cancel a queued run at once; ask a running one to stop (SIGTERM, SIGKILL after a grace period).
    Returns the state it is left in (`cancelled`, or `running` while it stops)."""
    return cancel_many([run_id], root, strict=True)[run_id]


def cancel_many(run_ids: list[str], root: str | Path | None = None, strict: bool = False) -> dict[str, str]:
    """Cancel many runs (a sweep, a study) with one queue transaction: the queued ones never start.
    Runs already ended are skipped (an error with `strict`). {run id: state left in}."""
    queue = Queue(root)
    for run_id in run_ids:
        check_run_id(run_id)
    rows = {job.id: job for job in queue.request_cancel(run_ids, now())}
    out = {}
    for run_id in run_ids:
        job = rows.get(run_id)
        if job is None:
            raise JobError(f"no run {run_id} in {queue.path}")
        run = RunDir.at(job.path)
        current = state.read_status(run)
        if current is None or current.state in FINAL_STATES:
            if strict:
                raise JobError(f"run {run_id} already {current.state if current else 'ended'}; nothing to cancel")
            continue
        moved = run.transition(("queued",), state="cancelled", ended=now(), error="cancelled before it started")
        if moved is None and job.cancel_requested is None:
            backends.get(job.backend).stop(queue, job, run, current)
        out[run_id] = "cancelled" if moved else "running"
    return out


def resume(run_id: str, root: str | Path | None = None) -> None:
    """Queue a failed, cancelled or stopped run again; it continues after its last checkpoint."""
    queue = Queue(root)
    job = queue.get(check_run_id(run_id))
    if job is None:
        raise JobError(f"no run {run_id} in {queue.path}")
    run = RunDir.at(job.path)
    current = state.settle(run, job)
    if current is None or current.state not in RESUMABLE:
        raise JobError(f"run {run_id} is {current.state if current else 'unreadable'}; "
                       "only a failed, cancelled or stopped run can be resumed")
    queue.clear_cancel(run_id)
    if run.transition(RESUMABLE, state="queued", error=None, ended=None, updated=now()) is None:
        raise JobError(f"run {run_id} changed state while resuming; try again")
    backends.get(job.backend).start(queue, [run_id], None)


# internals

def _info(run: RunDir, status: Status | None, job: Job | None) -> RunInfo:
    info = RunInfo(run_id=run.run_id, path=str(run.path))
    if job is not None:
        info.kind, info.after, info.attempt, info.slot, info.pid = job.kind, job.after, job.attempt, job.slot, job.pid
        info.backend, info.created = job.backend, job.created
    try:
        status = status or run.read_status()
        if status is None:
            info.state, info.error = "damaged", f"{run.status_path}: missing"
            return info
        _from_status(info, status)
        _results(info, run)
    except RecordError as exc:
        info.state, info.error = "damaged", str(exc)
        return info
    info.eta_seconds = _eta(info, status)
    _meta(info, run)
    return info


def _meta(info: RunInfo, run: RunDir) -> None:
    """Tags and note; a damaged meta.json is reported without hiding the run's state."""
    try:
        meta = run.read_meta()
    except RecordError as exc:
        info.error = info.error or str(exc)
        return
    info.tags, info.note = meta.tags, meta.note


def _from_status(info: RunInfo, status: Status) -> None:
    for name in ("kind", "name", "state", "error", "epoch", "epochs", "started", "ended", "sweep_id", "study_id",
                 "arm", "seed", "after", "target"):
        value = getattr(status, name)
        if value is not None or getattr(info, name) is None:
            setattr(info, name, value)
    info.created = info.created or status.created or status.started
    info.progress = status.progress
    info.pid = status.pid or info.pid


def _results(info: RunInfo, run: RunDir) -> None:
    if info.kind == "evaluate":
        info.final = {k: v for k, v in (state.read_result(run).get("test") or {}).items()}
        return
    config = summaries.config_summary(run)
    if config is not None:
        info.backbone, info.losses = config.backbone, config.losses
        info.name = info.name or config.name or run.run_id
    record = summaries.eval_summary(run)
    info.final, info.selected = dict(record.final), dict(record.selected)
    info.selected_epoch = record.selected_epoch


def run_settings(info: RunInfo) -> dict[str, Any]:
    """A training run's config as {dotted key: value} ({} without one), read once per file version;
    shared between callers: read it, never change it."""
    config = summaries.config_summary(RunDir.at(info.path)) if info.kind == "train" else None
    return config.settings if config else {}


def _eta(info: RunInfo, status: Status) -> float | None:
    """Seconds left at this attempt's pace: elapsed / progress made since it started x progress left."""
    if info.state != "running" or not status.started or not info.epochs:
        return None
    done = info.progress - min(status.start_epoch / info.epochs, 1.0)
    if done <= 0:
        return None
    return (now() - status.started) * (1.0 - info.progress) / done


def active(infos: list[RunInfo]) -> bool:
    return any(i.state in ACTIVE_STATES for i in infos)
