from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core.runs import RunDir
from jobs import api, process
from jobs.queue import Job, Queue
from jobs.scheduler import ensure_scheduler, scheduler_pid

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")


def test_cpu_slots_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("HANDID_CPU_SLOTS", "3")
    assert process.slots() == ["cpu0", "cpu1", "cpu2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert process.slots() == ["2", "5"]
    assert process.slot_env("5") == {"CUDA_VISIBLE_DEVICES": "5"}


def test_only_one_scheduler_runs_per_root(root, wait_for):
    assert ensure_scheduler(root) is True
    pid = wait_for(lambda: scheduler_pid(root), 60, "the scheduler to take its lock")
    assert ensure_scheduler(root) is False
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: scheduler_pid(root) is None, 10, "the lock to be released")


@pytest.mark.slow
def test_a_run_outlives_a_killed_scheduler_and_the_next_one_records_it(root, tiny, wait_for):
    run_id = api.submit(DEMO, {**tiny, "train.epochs": 8})  # still training when its scheduler is killed
    run = RunDir.at(root / run_id)
    wait_for(lambda: run.heartbeat_path.exists(), 240, "the trainer to start")
    first = scheduler_pid(root)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: scheduler_pid(root) is None, 10, "the killed scheduler's lock to be released")
    job = Queue().get(run_id)
    assert process.is_running(job.pid, job.argv)
    assert ensure_scheduler(root) is True
    assert wait_for(lambda: scheduler_pid(root), 60, "a new scheduler") != first
    wait_for(lambda: run.read_status().state != "running", 240, "the run to end")
    job, status = Queue().get(run_id), run.read_status()
    assert (status.state, job.attempt) == ("succeeded", 1), status.error
    wait_for(lambda: not process.is_running(job.pid, job.argv), 60, "the trainer to exit after its final state")


@pytest.mark.slow
def test_queued_runs_left_by_a_killed_scheduler_start_on_the_next_jobs_list(root, tiny, wait_for):
    first = api.submit(DEMO, {**tiny, "train.epochs": 3})
    second = api.submit(DEMO, tiny)  # waits for the one CPU slot
    wait_for(lambda: api.get_run(first).state == "running", 240, "the first run to start")
    os.kill(scheduler_pid(root), signal.SIGKILL)
    wait_for(lambda: scheduler_pid(root) is None, 10, "the killed scheduler's lock to be released")
    api.list_runs()  # any reader restarts a scheduler while runs wait
    assert wait_for(lambda: scheduler_pid(root), 60, "a scheduler started by the listing")
    info = wait_for(lambda: (i := api.get_run(second)).state in ("succeeded", "failed") and i, 480, "the second run")
    assert info.state == "succeeded", info.error



def _queue_command(root: Path, code: str, kind: str) -> str:
    """A queue row whose process is `python -c CODE`: a stand-in with a behaviour the trainer lacks."""
    run = RunDir.at(root / "stand-in").create()
    run.update_status(state="queued", kind=kind)
    Queue().insert([Job(id="stand-in", path=str(run.path), argv=["-c", code], cwd=str(root), kind=kind,
                        created=0.0)])
    return "stand-in"


def test_a_run_ignoring_sigterm_is_killed_after_the_grace_period(root, wait_for, monkeypatch):
    monkeypatch.setenv("HANDID_CANCEL_GRACE", "1")
    run_id = _queue_command(root, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                  "print('ready', flush=True); time.sleep(120)", kind="evaluate")
    ensure_scheduler(root)
    stdout = root / run_id / "result.json"  # an evaluation job's stdout
    wait_for(lambda: stdout.exists() and "ready" in stdout.read_text(), 60, "the process to start")
    pid = api.get_run(run_id).pid
    api.cancel(run_id)
    info = wait_for(lambda: (i := api.get_run(run_id)).state != "running" and i, 30, "the kill")
    assert (info.state, info.error) == ("cancelled", "cancelled: the process was stopped before it saved a final state")
    assert process.cmdline(pid) in (None, [])


def test_a_live_run_without_heartbeat_is_killed_and_failed(root, wait_for, monkeypatch):
    monkeypatch.setenv("HANDID_HEARTBEAT_TIMEOUT", "1")
    run_id = _queue_command(root, "import time; time.sleep(120)", kind="train")
    ensure_scheduler(root)
    info = wait_for(lambda: (i := api.get_run(run_id)).state == "failed" and i, 60, "the silent run to be failed")
    assert info.error.startswith(f"crashed: process {info.pid} stopped responding (no heartbeat for ")
    wait_for(lambda: process.cmdline(info.pid) in (None, []), 10, "the silent process to be killed")
