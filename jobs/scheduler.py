"""The scheduler: starts queued runs into free slots, settles finished ones, then goes away.

One per checkpoints root (an flock on `scheduler.lock` in the root, which also holds its pid).
`ensure_scheduler()` starts one, detached, whenever work is submitted and none is alive; it
exits after being idle for a while. Runs are detached processes, so they survive the
scheduler; a new scheduler adopts them by pid and heartbeat (jobs/state.py).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from core.runs import ACTIVE_STATES, RunDir, Status, now
from jobs import process, state
from jobs.queue import Job, JobError, Queue, resolve_root

LOCK_NAME = "scheduler.lock"
LOG_NAME = "scheduler.log"
ENV_IDLE = "HANDID_SCHEDULER_IDLE"
ENV_POLL = "HANDID_SCHEDULER_POLL"
ENV_GRACE = "HANDID_CANCEL_GRACE"
IDLE_S = 60.0
POLL_S = 1.0
CANCEL_GRACE_S = 20.0

log = logging.getLogger("jobs.scheduler")
_spawned: list[subprocess.Popen] = []  # schedulers this process started, reaped on the next call


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise JobError(f"{name}={raw!r} is not valid; give a number of seconds") from None


def _try_lock(root: Path) -> IO | None:
    """The open, exclusively locked lock file, or None when another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    fh = open(root / LOCK_NAME, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def scheduler_pid(root: str | Path | None = None) -> int | None:
    """Pid of the live scheduler of root, None when none holds the lock."""
    root = resolve_root(root)
    fh = _try_lock(root)
    if fh is not None:
        fh.close()
        return None
    text = (root / LOCK_NAME).read_text().strip()
    return int(text) if text.isdigit() else None


def ensure_scheduler(root: str | Path | None = None) -> bool:
    """Start a detached scheduler for root unless one is alive; True when one was started."""
    root = resolve_root(root)
    for proc in list(_spawned):
        if proc.poll() is not None:
            _spawned.remove(proc)
    if any(proc.args[-1] == str(root) for proc in _spawned):
        return False  # one this process started is still starting up (imports take seconds): it takes the lock
    try:
        fh = _try_lock(root)
    except OSError as exc:
        raise JobError(f"cannot use the checkpoints folder {root}: {exc.strerror}") from None
    if fh is None:
        return False
    fh.close()
    process.slots()  # a bad $HANDID_CPU_SLOTS is the submitter's error, not a silent scheduler's
    _spawned.append(process.spawn(["-m", "jobs", "scheduler", "--root", str(root)], process.PROJECT_ROOT,
                                  root / LOG_NAME))
    return True


class Scheduler:
    """The loop of one root: settle, enforce cancels, start ready runs, sleep."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.queue = Queue(root)
        self.slots = process.slots()
        self.children: dict[str, subprocess.Popen] = {}
        self.idle_s = _env_seconds(ENV_IDLE, IDLE_S)
        self.poll_s = _env_seconds(ENV_POLL, POLL_S)
        self.grace_s = _env_seconds(ENV_GRACE, CANCEL_GRACE_S)

    def run(self) -> int:
        """Loop until idle for idle_s; returns at once when another scheduler holds the lock."""
        lock = self._acquire()
        if lock is None:
            return 0
        log.info("scheduler %d started on %s with slots %s", os.getpid(), self.queue.root, ",".join(self.slots))
        idle_since = time.monotonic()
        while True:
            if self._step_logged():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_s:
                lock.close()
                # A submitter that saw the lock held just before we let go relies on this check.
                if not self._active() or (lock := self._acquire()) is None:
                    log.info("scheduler %d idle, exiting", os.getpid())
                    return 0
                idle_since = time.monotonic()
            time.sleep(self.poll_s)

    def _step_logged(self) -> bool:
        """A step whose failure (a full disk, a locked queue) is logged and retried, never fatal:
        queued runs rely on this loop."""
        try:
            return self.step()
        except Exception:
            log.exception("scheduler step failed; retrying")
            return True

    def _settled(self) -> list[tuple[Job, Status]]:
        """Every local row of the queue with its settled folder status (rows without one left out)."""
        return [(job, status) for job, status in state.settle_all(self.queue, self.children)
                if status is not None and job.backend == "local"]

    def _active(self) -> bool:
        return any(status.state in ACTIVE_STATES for _, status in self._settled())

    def step(self) -> bool:
        """One pass; True while anything is queued or running."""
        settled = self._settled()
        running = [job for job, status in settled if status.state == "running"]
        self.children = {j.id: self.children[j.id] for j in running if j.id in self.children}
        self._enforce_cancels(running)
        states = {job.id: status.state for job, status in settled}
        queued = [job for job, status in settled if status.state == "queued" and job.cancel_requested is None]
        self._start_ready(queued, states, {j.slot for j in running})
        return any(status.state in ACTIVE_STATES for _, status in settled)

    def _acquire(self) -> IO | None:
        for _ in range(10):  # a submitter probing the lock holds it for a moment only
            fh = _try_lock(self.queue.root)
            if fh is not None:
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
                return fh
            time.sleep(0.05)
        return None

    def _enforce_cancels(self, running: list[Job]) -> None:
        """SIGKILL the process group of runs that ignored SIGTERM for the grace period."""
        for job in running:
            if job.cancel_requested and now() - job.cancel_requested > self.grace_s:
                if process.is_running(job.pid, job.argv):
                    log.warning("run %s ignored SIGTERM for %.0f s: killing it", job.id, self.grace_s)
                    process.signal_group(job.pid, signal.SIGKILL)

    def _start_ready(self, queued: list[Job], states: dict[str, str], busy: set[str | None]) -> None:
        free = [s for s in self.slots if s not in busy]
        for job in queued:
            if not free:
                return
            if job.after is None or states.get(job.after) == "succeeded":
                if self._start(job, free[0]):
                    free.pop(0)

    def _start(self, job: Job, slot: str) -> bool:
        """Claim the row (refused once a cancel is requested), check the folder is still queued, start
        its process, then mark the folder running (only while it is still queued: a cancel that arrived
        in between kills the process at once)."""
        run = RunDir.at(job.path)
        if not self.queue.claim(job.id, job.attempt, slot, now()):
            return False
        current = state.read_status(run)
        if current is None or current.state != "queued":
            return False  # cancelled between the listing and the claim: never spawned
        argv = list(job.argv)
        if job.kind == "train" and run.last_path.exists():
            argv.append("--resume")
        try:
            proc = process.spawn(argv, job.cwd, run.process_log_path, process.slot_env(slot),
                                 stdout_path=run.path / state.RESULT_NAME if job.kind == "evaluate" else None)
        except OSError as exc:
            run.transition(("queued",), state="failed", error=f"could not start the process: {exc}", ended=now())
            return False
        marked = run.transition(("queued",), state="running", pid=proc.pid, started=now(), ended=None, error=None,
                                attempt=job.attempt + 1, updated=now())
        if marked is None:
            process.signal_group(proc.pid, signal.SIGKILL)  # cancelled in the meantime
            proc.wait()
            return False
        self.queue.update(job.id, pid=proc.pid)
        self.children[job.id] = proc
        log.info("started %s (pid %d, slot %s): %s", job.id, proc.pid, slot, " ".join(argv))
        return True


def main(root: str | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Scheduler(root).run()
