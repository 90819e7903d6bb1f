"""The ray backend: runs, sweeps and searches on a Ray cluster, each group as one Ray Tune experiment.

Submitting writes the run folders and queue rows as the local backend does (backend `ray`), then
`<root>/ray/<group>/group.json`, and starts a detached driver (`python -m jobs ray drive`) that
connects to the cluster ($HANDID_RAY_ADDRESS: `local` (default; a head on this machine, started
with `ray start --head` when none runs, outliving the command), `auto`, or `ray://host:10001`).
Every run is a Tune trial: a Ray actor asking for one GPU when the cluster has GPUs, else
$HANDID_RAY_CPUS CPUs (default 1), that starts the same trainer (`python -m core.train`) as a
child (which inherits the CUDA_VISIBLE_DEVICES Ray gave the actor and dies with it) and writes
the same run folder. The folder stays the one record of the run's state:
- the run root must be a path every node sees: a trial first checks that it reads the root's
  marker (`<root>/ray/shared-root`, written by the submitter) and fails the run if not;
- cancel writes the folder's cancel request; the trial forwards SIGTERM (SIGKILL after
  $HANDID_CANCEL_GRACE) to its trainer, which saves and ends `cancelled`;
- a worker dying mid-run makes the run `failed` (the driver, else the heartbeat), or retried
  $HANDID_RAY_RETRIES times (default 0) from its last checkpoint;
- ASHA stops weak trials on the val mAP of each evaluation: they end `stopped` with their figures
  so far; Optuna samples each search trial's overrides.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from core.runs import FINAL_STATES, RunDir, Status, now
from jobs import process, state
from jobs.queue import Job, JobError, Queue, new_id
from jobs.scheduler import ENV_GRACE, CANCEL_GRACE_S, _env_seconds
from jobs.tune import METRIC, Dist, TuneOptions

ENV_ADDRESS = "HANDID_RAY_ADDRESS"
ENV_CPUS = "HANDID_RAY_CPUS"
ENV_RETRIES = "HANDID_RAY_RETRIES"
ENV_HEAD_CPUS = "HANDID_RAY_HEAD_CPUS"
ENV_PORT = "HANDID_RAY_PORT"
LOCAL = "local"
PORT = 6390
STOP_REASON = "tune-stop.txt"  # in a run folder: why Tune stopped it (the driver settles it `stopped`)
MARKER = "shared-root"
POLL_S = 0.5
EXCEPTION_LINE = re.compile(r"[\w.]+(Error|Exception): .")


# configuration

def address() -> str:
    """$HANDID_RAY_ADDRESS: `local`, `auto` or `ray://host:port` (also `host:port`)."""
    value = os.environ.get(ENV_ADDRESS, LOCAL).strip()
    if not value:
        raise JobError(f"{ENV_ADDRESS} is empty; give local, auto or ray://host:10001")
    return value


def _number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise JobError(f"{name}={raw!r} is not valid; give a number of at least {minimum:g}")
    return value


def _port() -> int:
    return int(_number(ENV_PORT, PORT, 1))


def ray_dir(root: str | Path) -> Path:
    """Where the backend keeps its files in a run root: groups, Tune's storage, the marker."""
    return Path(root) / "ray"


# the local head

def _ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_head() -> bool:
    """Start a Ray head on this machine unless one listens on $HANDID_RAY_PORT; True when started."""
    port = _port()
    if _listening(port):
        return False
    command = [_ray_command(), "start", "--head", f"--port={port}", "--include-dashboard=false",
               "--disable-usage-stats"]
    if os.environ.get(ENV_HEAD_CPUS):
        command.append(f"--num-cpus={int(_number(ENV_HEAD_CPUS, 1, 1))}")
    done = subprocess.run(command, capture_output=True, text=True, env=process.child_env(), timeout=300)
    if done.returncode != 0 and not _listening(port):
        last = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise JobError(f"could not start a local Ray head (ray start --head --port={port}): "
                       f"{last[-1] if last else 'exit code ' + str(done.returncode)}")
    return True


def stop_head() -> None:
    """`ray stop`: end the Ray processes of this machine (the local head and its workers)."""
    subprocess.run([_ray_command(), "stop"], capture_output=True, text=True, timeout=300)


def connect() -> None:
    """Join the cluster of $HANDID_RAY_ADDRESS (starting the local head when it is `local`)."""
    target = address()
    if target == LOCAL:
        ensure_head()
        target = f"127.0.0.1:{_port()}"
    try:
        ray.init(address=target, logging_level="WARNING", configure_logging=True,
                 runtime_env={"env_vars": {"PYTHONPATH": process.child_env()["PYTHONPATH"]}})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"cannot reach the Ray cluster at {ENV_ADDRESS}={address()}: {exc}") from None


# submitting

def marker_token(root: Path) -> str:
    """The root's marker (written once): what every trial must read to know it sees the same root."""
    path = ray_dir(root) / MARKER
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{MARKER}.{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(16))
        os.replace(tmp, path)
    return path.read_text().strip()


def start(queue: Queue, run_ids: list[str], options: TuneOptions | None = None) -> str:
    """Write the group of these runs and start its driver (detached); the group's id."""
    if address() == LOCAL:
        ensure_head()
    group_id = write_group(queue, run_ids, options)
    spawn_driver(queue.root, group_id, marker_token(queue.root))
    return group_id


def write_group(queue: Queue, run_ids: list[str], options: TuneOptions | None = None) -> str:
    """`<root>/ray/<group>/group.json`: the runs (command, folder, base config) and the Tune options."""
    group_id = f"group-{new_id()}"
    folder = ray_dir(queue.root) / group_id
    folder.mkdir(parents=True)
    jobs = [queue.get(run_id) for run_id in run_ids]
    group = {"id": group_id, "root": str(queue.root), "options": options.to_json() if options else None,
             "chained": any(job.after for job in jobs), "runs": {job.id: _entry(job) for job in jobs}}
    (folder / "group.json").write_text(json.dumps(group, indent=1))
    return group_id


def spawn_driver(root: Path, group_id: str, token: str) -> None:
    """The group's driver, detached; its trials check they read the root's marker as `token`."""
    process.spawn(["-m", "jobs", "ray", "drive", "--root", str(root), "--group", group_id, "--token", token],
                  process.PROJECT_ROOT, ray_dir(root) / group_id / "driver.log")


def _entry(job: Job) -> dict[str, Any]:
    return {"argv": job.argv, "cwd": job.cwd, "config": job.config or None, "overrides": job.overrides}


def stop(queue: Queue, job: Job, run: RunDir, status: Status) -> None:
    """Ask the run's trial, wherever it runs, to stop its trainer (through the shared run folder)."""
    run.request_cancel()


# the driver

def drive(root: str, group_id: str, token: str) -> int:
    """Run a group as one Tune experiment until every trial ended; runs it never started end failed."""
    group = json.loads((ray_dir(root) / group_id / "group.json").read_text())
    try:
        connect()
        _tuner(group, token).fit()
    finally:
        _settle_stopped(group)
        _fail_leftovers(group)
    return 0


def _settle_stopped(group: dict[str, Any]) -> None:
    """Runs Tune stopped end `stopped`, even when the driver ended before a trial's clean-up wrote it:
    the clean-up leaves its reason in STOP_REASON before it signals the trainer."""
    for run_id in group["runs"]:
        run = RunDir.at(Path(group["root"]) / run_id)
        reason = run.path / STOP_REASON
        if reason.is_file():
            run.transition(("running", "cancelled"), state="stopped", ended=now(), updated=now(),
                           error=reason.read_text().strip())


def _tuner(group: dict[str, Any], token: str) -> tune.Tuner:
    options = TuneOptions.from_json(group["options"]) if group["options"] else TuneOptions()
    trainable = tune.with_resources(tune.with_parameters(RunTrial, group=group, token=token), _resources())
    tuned = bool(options.early_stop or options.search)
    config = tune.TuneConfig(
        metric=METRIC if tuned else None, mode="max" if tuned else None,
        scheduler=_asha(group, options) if options.early_stop else None,
        search_alg=OptunaSearch() if options.search else None,
        num_samples=options.trials if options.search else 1,
        max_concurrent_trials=1 if group["chained"] else None)
    space = ({key: _domain(d) for key, d in options.space.items()} if options.search
             else {"run_id": tune.grid_search(list(group["runs"]))})
    run_config = tune.RunConfig(name=group["id"], storage_path=str(ray_dir(group["root"]) / "tune"), verbose=0,
                                failure_config=tune.FailureConfig(max_failures=int(_number(ENV_RETRIES, 0, 0))),
                                callbacks=[_Settle(group)])
    return tune.Tuner(trainable, param_space=space, tune_config=config, run_config=run_config)


def _resources() -> dict[str, float]:
    """One GPU per run when the cluster has GPUs, else $HANDID_RAY_CPUS CPUs."""
    if ray.cluster_resources().get("GPU", 0) >= 1:
        return {"cpu": 1, "gpu": 1}
    return {"cpu": _number(ENV_CPUS, 1, 0.01)}


def _asha(group: dict[str, Any], options: TuneOptions) -> ASHAScheduler:
    """ASHA on epochs; max_t past the last epoch, so that a run that gets there is never stopped."""
    epochs = max(_epochs(RunDir.at(Path(group["root"]) / run_id)) for run_id in group["runs"])
    return ASHAScheduler(time_attr="epoch", max_t=epochs + 1, grace_period=options.grace,
                         reduction_factor=options.reduction)


def _domain(dist: Dist) -> Any:
    if dist.kind == "int":
        return tune.randint(int(dist.low), int(dist.high) + 1)
    return (tune.loguniform if dist.kind == "loguniform" else tune.uniform)(dist.low, dist.high)


def _epochs(run: RunDir) -> int:
    status = run.read_status()
    return status.epochs if status else 0


def _fail_leftovers(group: dict[str, Any]) -> None:
    """Runs of the group still queued when the driver ends never got a trial: failed, with the reason."""
    log_tail = state._last_line(ray_dir(group["root"]) / group["id"] / "driver.log")
    for run_id in group["runs"]:
        RunDir.at(Path(group["root"]) / run_id).transition(
            ("queued",), state="failed", ended=now(), updated=now(),
            error=f"its Ray driver ended before it started{log_tail}")


class _Settle(tune.Callback):
    """The driver's side of a trial's life: a trial that died (its worker or node lost, or an
    error before the trainer ran) fails its run."""

    def __init__(self, group: dict[str, Any]) -> None:
        self.group = group

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = trial.config.get("run_id") or _claimed(self.group, trial.trial_id)
        if run_id is None:
            return
        RunDir.at(Path(self.group["root"]) / run_id).transition(
            ("queued", "running"), state="failed", ended=now(), updated=now(), error=f"Ray trial failed: {_reason(trial)}")


def _reason(trial: Any) -> str:
    """The last exception line of the trial's error file (e.g. `JobError: run root ... is not shared`)."""
    try:
        text = Path(trial.error_file).read_text(errors="replace") if trial.error_file else ""
    except OSError:
        text = ""
    errors = [line.strip() for line in text.splitlines() if EXCEPTION_LINE.match(line.strip())]
    return errors[-1].split(": ", 1)[1] if errors else "its Ray worker died"


def _claims(group: dict[str, Any]) -> Path:
    return ray_dir(group["root"]) / group["id"] / "trials"


def _claimed(group: dict[str, Any], trial_id: str) -> str | None:
    try:
        return (_claims(group) / trial_id).read_text().strip()
    except FileNotFoundError:
        return None


def check_shared(root: Path, token: str) -> None:
    """Refuse a run root this node does not share with the submitter (its marker missing or another's)."""
    marker = ray_dir(root) / MARKER
    try:
        seen = marker.read_text().strip()
    except OSError:
        seen = None
    if seen != token:
        raise JobError(f"run root {root} is not shared with Ray node {ray.util.get_node_ip_address()}: its marker "
                       f"{marker} is {'missing' if seen is None else 'another root’s'} there; put the run root on a "
                       f"filesystem every node mounts at the same path")


# a trial

class RunTrial(tune.Trainable):
    """One run on a Ray worker: starts its trainer, reports each validation mAP, forwards cancels."""

    def setup(self, config: dict[str, Any], group: dict[str, Any], token: str) -> None:
        self.group, self.proc, self.cancelling = group, None, None
        self.reported, self.value = 0, float("nan")
        root = Path(group["root"])
        check_shared(root, token)
        self.run_id = config.get("run_id") or self._claim(config)
        if self.run_id is None:
            return
        self.run = RunDir.at(root / self.run_id)
        if not self._begin():
            return
        self.epochs = _epochs(self.run)
        entry = group["runs"][self.run_id]
        argv = [*entry["argv"], *(["--resume"] if self.run.last_path.exists() else [])]
        self.proc = process.spawn(argv, entry["cwd"], self.run.process_log_path, die_with_parent=True)

    def _claim(self, sampled: dict[str, Any]) -> str | None:
        """A search trial takes the first queued run of its group (or, retried, the one it took)."""
        claimed = _claimed(self.group, self.trial_id)
        if claimed:
            return claimed
        for run_id in self.group["runs"]:
            run = RunDir.at(Path(self.group["root"]) / run_id)
            if run.transition(("queued",), state="running", pid=None, started=now(), updated=now()) is not None:
                _write_sampled(run, self.group["runs"][run_id], sampled)
                return run_id
        return None

    def _begin(self) -> bool:
        """Mark the run running for this attempt (after its parent, if chained); False when it must not run."""
        self.run.clear_cancel_request()
        _claims(self.group).mkdir(parents=True, exist_ok=True)
        (_claims(self.group) / self.trial_id).write_text(self.run_id)
        begun = self.run.transition(("queued", "running"), state="running", pid=None, started=now(), ended=None,
                                    error=None, updated=now(),
                                    attempt=(self.run.read_status() or Status()).attempt + 1)
        return begun is not None and _after_parent(self.run, begun)

    def step(self) -> dict[str, Any]:
        """Wait for the next validation figure (or the trainer's end, reported as done)."""
        while self.proc is not None:
            self._forward_cancel()
            figure = self._next_val()
            if figure is not None:
                return figure
            if self.proc.poll() is not None:
                self._finish()
                break
            time.sleep(POLL_S)
        return {METRIC: self.value, "epoch": self.reported, "run_id": self.run_id, "done": True}

    def _next_val(self) -> dict[str, Any] | None:
        """The first val evaluation after the last reported one, before the last epoch (that one is
        reported when the trainer has written its final results: ASHA never stops a run then)."""
        for record in self.run.read_metrics():
            epoch = record.get("epoch")
            if (record.get("kind") == "eval" and record.get("split") == "val" and isinstance(epoch, int)
                    and self.reported < epoch < self.epochs):
                self.reported, self.value = epoch, _figure(record)
                return {METRIC: self.value, "epoch": epoch, "run_id": self.run_id}
        return None

    def _finish(self) -> None:
        """The trainer ended: its last val figure, and the run's final state (settled from its exit)."""
        vals = [r for r in self.run.read_metrics() if r.get("kind") == "eval" and r.get("split") == "val"]
        if vals:
            self.reported, self.value = max(int(vals[-1].get("epoch", 0)), self.reported), _figure(vals[-1])
        if self.cancelling is not None:
            self.run.transition(("running",), state="cancelled", ended=now(), updated=now(),
                                error="cancelled: the trainer was stopped before it saved a final state")
        state.settle(self.run, None, self.proc)
        self.proc = None

    def _forward_cancel(self) -> None:
        """A cancel request: SIGTERM to the trainer's group, SIGKILL once it ignored that for the grace period."""
        if self.cancelling is None and self.run.cancel_requested():
            self.cancelling = time.monotonic()
            process.signal_group(self.proc.pid, signal.SIGTERM)
        elif self.cancelling is not None and time.monotonic() - self.cancelling > _env_seconds(ENV_GRACE, CANCEL_GRACE_S):
            process.signal_group(self.proc.pid, signal.SIGKILL)

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        """Tune's checkpoint of a trial is only the run it drives: the weights are in the run folder."""
        return {"run_id": self.run_id}

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Nothing to load: a retried trial resumes its run from the folder's last checkpoint (setup)."""

    def cleanup(self) -> None:
        """Tune stops a trial whose trainer still runs (ASHA found it weak): stop it, the run ends `stopped`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        error = f"stopped early by Ray Tune's ASHA after epoch {self.reported} (val mAP {self.value:.4f})"
        (self.run.path / STOP_REASON).write_text(error + "\n")
        process.signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(_env_seconds(ENV_GRACE, CANCEL_GRACE_S))
        except subprocess.TimeoutExpired:
            process.signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.run.transition(("running", "cancelled"), state="stopped", ended=now(), updated=now(), error=error)


def _figure(record: dict[str, Any]) -> float:
    value = record.get("mAP")
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _write_sampled(run: RunDir, entry: dict[str, Any], sampled: dict[str, Any]) -> None:
    """A search trial's config: the group's base with the values Optuna sampled (checked again)."""
    from core.config import load_config, to_dict
    from core.validation import check_config

    cfg = load_config(entry["config"], {**entry["overrides"], **sampled})
    check_config(cfg)
    run.write_config(to_dict(cfg))
    label = " ".join(f"{key.rsplit('.', 1)[-1]}={value:.3g}" for key, value in sampled.items())
    status = run.read_status()
    run.update_status(name=f"{status.name if status else run.run_id} {label}")


def _after_parent(run: RunDir, status: Status) -> bool:
    """A chained run waits for its parent's end; one that did not succeed ends the run the same way."""
    if not status.after:
        return True
    parent = RunDir.at(run.path.parent / status.after)
    while (current := state.read_status(parent)) is None or current.state not in FINAL_STATES:
        time.sleep(POLL_S)
    if current.state == "succeeded":
        return True
    run.transition(("running",), state=current.state, ended=now(), updated=now(),
                   error=f"parent {status.after} {current.state}")
    return False


# `python -m jobs ray ...`

def main(args: argparse.Namespace) -> int:
    if args.action == "start":
        print("started a local Ray head" if ensure_head() else "a local Ray head is already running")
    elif args.action == "stop":
        stop_head()
        print("stopped the local Ray processes")
    elif not (args.group and args.token):
        raise JobError("ray drive needs --group and --token (it is started by a submission)")
    else:
        return drive(str(Queue(args.root).root), args.group, args.token)
    return 0
