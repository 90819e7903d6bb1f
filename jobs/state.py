"""The truth about each run's state, settled from its process and its folder.

`refresh()` may be called by any reader (the CLI, the dashboard) and by the scheduler every
loop. A running run stays `running` only while its process lives (pid alive, not a zombie,
running the run's command) and, for training, its heartbeat is fresh. Once the process is
gone its final state is what the run wrote; without one it is `failed` with the reason. A
queued run chained after a run that failed or was cancelled can never start and is settled
the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from core.runs import FINAL_STATES, RunDir, now
from jobs import process
from jobs.queue import Job, Queue

ENV_HEARTBEAT_TIMEOUT = "HANDID_HEARTBEAT_TIMEOUT"
HEARTBEAT_TIMEOUT_S = 60.0
CRASHED = "crashed: process {pid} ended without a final state (killed or out of memory)"
RESULT_NAME = "result.json"  # an evaluation job's stdout (`core.evaluate --json`): its only record


def heartbeat_timeout() -> float:
    return float(os.environ.get(ENV_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_S))


def refresh(queue: Queue, children: dict[str, subprocess.Popen] | None = None) -> None:
    """Settle every running and chained-queued row of the queue; `children` gives exit codes."""
    children = children or {}
    for job in queue.with_state("running"):
        settle_running(queue, job, children.get(job.id))
    for job in queue.with_state("queued"):
        if job.after:
            settle_chained(queue, job)


def settle_running(queue: Queue, job: Job, child: subprocess.Popen | None = None) -> None:
    """Record how a running row's process ended, if it did (or kill it if it hangs)."""
    run = RunDir.at(job.path)
    if process.is_running(job.pid, job.argv):
        silent = _silence(run, job)
        if job.kind == "train" and silent > heartbeat_timeout():
            process.signal_group(job.pid, signal.SIGKILL)
            finish(queue, job, "failed",
                    f"crashed: process {job.pid} stopped responding (no heartbeat for {silent:.0f} s)")
        return
    # The process is gone, so whatever it wrote is in the folder now: read it only after the check.
    exit_code = child.poll() if child is not None else job.exit_code
    state, error = _verdict(job, run, exit_code)
    finish(queue, job, state, error, exit_code)


def settle_chained(queue: Queue, job: Job) -> None:
    """A run waiting for a parent that failed or was cancelled ends the same way, never starting."""
    parent = queue.get(job.after) if job.after else None
    if parent is None:
        finish(queue, job, "failed", f"parent {job.after} not found", only_if=("queued",))
    elif parent.state in ("failed", "cancelled"):
        finish(queue, job, parent.state, f"parent {parent.id} {parent.state}", only_if=("queued",))


def settle_folder(run: RunDir, module: str = "core.train") -> dict:
    """Status of a run folder the queue does not know (started by hand): crashed if its process is gone."""
    status = run.read_status()
    pid = status.get("pid")
    if status.get("state") != "running" or not pid:
        return status
    args = process.cmdline(pid) or []
    ours = any(module in a for a in args) and any(run.run_id in a for a in args)
    age = run.heartbeat_age()
    if ours and (age is None or age <= heartbeat_timeout()):
        return status
    status = run.read_status()  # read again after the liveness check: it may have just ended
    if status.get("state") == "running":
        status = run.update_status(state="failed", ended=now(), error=CRASHED.format(pid=pid))
    return status


def _silence(run: RunDir, job: Job) -> float:
    """Seconds since the last sign of life of this attempt (its start counts as one)."""
    age = run.heartbeat_age()
    since_start = now() - (job.started or now())
    return since_start if age is None else min(age, since_start)


def _verdict(job: Job, run: RunDir, exit_code: int | None) -> tuple[str, str | None]:
    status = run.read_status()
    if status.get("state") in FINAL_STATES:
        return status["state"], status.get("error")
    if job.cancel_requested is not None:
        return "cancelled", "cancelled: the process was stopped before it saved a final state"
    if job.kind == "evaluate" and exit_code in (0, None) and read_result(run):
        return "succeeded", None
    if exit_code == 0:
        if "final" in run.read_eval():
            return "succeeded", None
        return "failed", f"process {job.pid} exited without final results (no final entry in {run.eval_path})"
    if exit_code is not None and exit_code > 0:
        return "failed", f"process {job.pid} exited with code {exit_code}{_last_line(run.path / 'process.log')}"
    return "failed", CRASHED.format(pid=job.pid)


def read_result(run: RunDir) -> dict:
    """The metrics an evaluation job printed, {} while there are none."""
    try:
        data = json.loads((run.path / RESULT_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return f": {lines[-1].strip()}" if lines else ""


def finish(queue: Queue, job: Job, state: str, error: str | None, exit_code: int | None = None,
            only_if: tuple[str, ...] = ("running",)) -> None:
    """Write the final state to the run folder, then to the queue (folder first: it is the record)."""
    run = RunDir.at(job.path)
    status = run.read_status()
    ended = status.get("ended") or now()
    if status.get("state") != state or (error and status.get("error") != error):
        run.update_status(state=state, error=error, ended=ended)
    queue.update(job.id, only_if=only_if, state=state, error=error, ended=ended, exit_code=exit_code)
