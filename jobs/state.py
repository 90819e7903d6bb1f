"""The truth about each run's state, settled from its folder and its process.

A run's folder is the record of its state (core.runs.Status); the queue only knows how it was
started. `settle()` may be called by any reader (the CLI, the dashboard) and by the scheduler
every loop, and moves a folder's state only by compare-and-set (RunDir.transition), so
concurrent settlers agree:
- queued with a cancel request -> cancelled; queued after a parent that failed, was cancelled or
  stopped -> the same (it can never start);
- running whose process lives (pid alive, not a zombie, running the run's command) stays
  running while its heartbeat is fresh (training) and is killed and failed once it is silent
  for `HANDID_HEARTBEAT_TIMEOUT` seconds; running whose process is gone gets the final state
  the run wrote, else `failed` with the reason (its exit code and the last line it printed);
  a run of another backend (Ray) whose process is on another node is judged by its heartbeat alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from core.runs import FINAL_STATES, RecordError, RunDir, Status, now
from jobs import process
from jobs.queue import Job

ENV_HEARTBEAT_TIMEOUT = "HANDID_HEARTBEAT_TIMEOUT"
HEARTBEAT_TIMEOUT_S = 60.0
CRASHED = "crashed: process {pid} ended without a final state (killed or out of memory)"
RESULT_NAME = "result.json"  # an evaluation job's stdout (`core.evaluate --json`): its only record
TRAINER = ["-m", "core.train"]


def heartbeat_timeout() -> float:
    return float(os.environ.get(ENV_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_S))


def read_status(run: RunDir) -> Status | None:
    """The folder's status; None when it has none or it is damaged (listings show that problem)."""
    try:
        return run.read_status()
    except RecordError:
        return None


def settle(run: RunDir, job: Job | None = None, child: subprocess.Popen | None = None,
           parent: Status | None = None) -> Status | None:
    """The run's settled status (see the module docstring). `job` is its queue row (None for a
    folder started by hand), `child` the process when this caller started it (for its exit
    code), `parent` the status of the run it is chained after."""
    status = read_status(run)
    if status is None:
        return None
    if status.state == "queued" and job is not None:
        return _settle_queued(run, job, status, parent)
    if status.state == "running":
        return _settle_running(run, job, status, child)
    return status


def _settle_queued(run: RunDir, job: Job, status: Status, parent: Status | None) -> Status:
    if job.cancel_requested is not None:
        return _move(run, status, "cancelled", "cancelled before it started")
    if job.after and parent is None:
        return _move(run, status, "failed", f"parent {job.after} not found")
    if job.after and parent.state in ("failed", "cancelled", "stopped"):
        return _move(run, status, parent.state, f"parent {job.after} {parent.state}")
    return status


def _settle_running(run: RunDir, job: Job | None, status: Status, child: subprocess.Popen | None) -> Status:
    pid = status.pid or (job.pid if job else None)
    argv = job.argv if job else [*TRAINER, "--run-dir"]
    if job is not None and job.backend != "local" and not process.is_running(pid, argv):
        return _settle_remote(run, status)
    if process.is_running(pid, argv) and (job is not None or _names_run(pid, run)):
        silent = _silence(run, status)
        if status.kind == "train" and silent > heartbeat_timeout():
            process.signal_group(pid, signal.SIGKILL)
            return _move(run, status, "failed", f"crashed: process {pid} stopped responding "
                                                f"(no heartbeat for {silent:.0f} s)", pid=pid)
        return status
    # The process is gone, so whatever it wrote is in the folder now: read it only after the check.
    latest = read_status(run) or status
    if latest.state != "running":
        return latest
    exit_code = child.poll() if child is not None else (job.exit_code if job else None)
    state, error = _verdict(run, job, latest, exit_code)
    return _move(run, latest, state, error, pid=latest.pid)


def _settle_remote(run: RunDir, status: Status) -> Status:
    """A run of another backend whose process this machine cannot see (another node): alive while
    its heartbeat is fresh; failed once it is silent (its worker or node died and nothing said so)."""
    silent = _silence(run, status)
    if silent <= heartbeat_timeout():
        return status
    return _move(run, status, "failed", f"lost: no heartbeat for {silent:.0f} s (its worker or node died)")


def _names_run(pid: int | None, run: RunDir) -> bool:
    """A process started by hand is the run's trainer when its command line names the run folder."""
    args = process.cmdline(pid) if pid else None
    return bool(args) and any(run.run_id in a for a in args)


def _silence(run: RunDir, status: Status) -> float:
    """Seconds since the last sign of life of this attempt (its start counts as one)."""
    age = run.heartbeat_age()
    since_start = now() - (status.started or now())
    return since_start if age is None else min(age, since_start)


def _verdict(run: RunDir, job: Job | None, status: Status, exit_code: int | None) -> tuple[str, str | None]:
    if job is not None and job.cancel_requested is not None:
        return "cancelled", "cancelled: the process was stopped before it saved a final state"
    if status.kind == "evaluate" and exit_code in (0, None) and read_result(run):
        return "succeeded", None
    if exit_code == 0 and status.kind == "train":
        if run.read_eval().final is not None:
            return "succeeded", None
        return "failed", f"process {status.pid} exited without final results (no final entry in {run.eval_path})"
    if exit_code is not None and exit_code != 0:
        return "failed", f"process {status.pid} exited with code {exit_code}{_last_line(run.process_log_path)}"
    return "failed", CRASHED.format(pid=status.pid) + _last_line(run.process_log_path)


def _move(run: RunDir, status: Status, state: str, error: str | None, pid: int | None = None) -> Status:
    """Compare-and-set the folder from `status.state` (and, given `pid`, that process) to a final
    `state`; the status that holds after."""
    fields = {"state": state, "error": error, "ended": status.ended or now(), "updated": now()}
    return run.transition((status.state,), expect_pid=pid, **fields) or read_status(run) or status


def read_result(run: RunDir) -> dict:
    """The metrics an evaluation job printed, {} while there are none."""
    try:
        data = json.loads((run.path / RESULT_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return f": {lines[-1].strip()[:300]}" if lines else ""


def is_final(status: Status | None) -> bool:
    return status is not None and status.state in FINAL_STATES


def settle_all(queue, children: dict[str, subprocess.Popen] | None = None) -> list[tuple[Job, Status | None]]:
    """Every row of the queue with its settled folder status, oldest first (parents settle first)."""
    children = children or {}
    settled: dict[str, Status | None] = {}
    out = []
    for job in queue.all():
        parent = settled.get(job.after) if job.after else None
        if job.after and job.after not in settled:
            parent = read_status(RunDir.at(queue.root / job.after))
        status = settle(RunDir.at(job.path), job, children.get(job.id), parent)
        settled[job.id] = status
        out.append((job, status))
    return out
