"""The local backend: the SQLite queue's scheduler on this machine (jobs.scheduler)."""

from __future__ import annotations

import signal

from core.runs import RunDir, Status
from jobs import process
from jobs.queue import Job, Queue


def start(queue: Queue, run_ids: list[str], options=None) -> None:
    _ensure_scheduler(queue.root)


def _ensure_scheduler(root) -> None:
    """jobs.api.ensure_scheduler: the one name every starter goes through (jobs.api imports this module)."""
    from jobs import api

    api.ensure_scheduler(root)


def stop(queue: Queue, job: Job, run: RunDir, status: Status) -> None:
    """SIGTERM the run's process group; the scheduler kills it if it ignores that for the grace period."""
    if process.is_running(status.pid, job.argv):
        process.signal_group(status.pid, signal.SIGTERM)
    _ensure_scheduler(queue.root)
