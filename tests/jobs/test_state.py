from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core.runs import FINAL_STATES, RunDir, now
from jobs import api, process
from jobs.queue import Job, Queue
from jobs.state import refresh, settle_folder

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")


def _running_job(root: Path, run_id: str, pid: int, argv: list[str], status: dict) -> Job:
    run = RunDir.at(root / run_id).create()
    run.update_status(**status)
    job = Job(id=run_id, path=str(run.path), argv=argv, cwd="/", state="running", created=now(), pid=pid,
              started=now())
    Queue().insert([job])
    return job


def test_a_vanished_process_without_final_state_is_failed_as_crashed(root):
    job = _running_job(root, "a", 2 ** 22 + 1, ["-m", "core.train"], {"state": "running"})
    refresh(Queue())
    expected = f"crashed: process {job.pid} ended without a final state (killed or out of memory)"
    assert (Queue().get("a").state, Queue().get("a").error) == ("failed", expected)
    assert RunDir.at(job.path).read_status()["error"] == expected


def test_a_final_state_written_by_the_trainer_is_kept(root):
    _running_job(root, "b", 2 ** 22 + 1, ["-m", "core.train"], {"state": "cancelled", "error": None})
    refresh(Queue())
    assert (Queue().get("b").state, Queue().get("b").error) == ("cancelled", None)


def test_a_reused_pid_running_something_else_is_not_the_run(root):
    # this test process is alive, but its command line is not the run's command
    _running_job(root, "c", os.getpid(), ["-m", "core.train", "--run-dir", "x"], {"state": "running"})
    refresh(Queue())
    assert Queue().get("c").state == "failed"


def test_a_hand_started_folder_whose_pid_is_gone_reads_failed(root):
    run = RunDir.at(root / "manual").create()
    run.update_status(state="running", pid=2 ** 22 + 1)
    assert settle_folder(run)["state"] == "failed"
    assert [(i.run_id, i.state) for i in api.list_runs()] == [("manual", "failed")]


@pytest.mark.slow
def test_kill_9_mid_run_reads_failed_then_resume_continues_from_the_checkpoint(root, tiny, wait_for):
    run_id = api.submit(DEMO, {**tiny, "train.epochs": 12})  # long enough to be killed mid-run
    run = RunDir.at(root / run_id)
    wait_for(lambda: run.optimizer_state().exists(), 240, "the first checkpoint")
    pid = api.get_run(run_id).pid
    assert process.is_running(pid, ["-m", "core.train"])
    process.signal_group(pid, signal.SIGKILL)
    info = wait_for(lambda: (i := api.get_run(run_id)).state != "running" and i, 10, "the crash to be seen")
    assert info.state == "failed"
    assert info.error == f"crashed: process {pid} ended without a final state (killed or out of memory)"
    before = run.metrics_path.read_text()
    assert '"kind": "train", "epoch": 1' in before and run.checkpoint("last").exists()

    api.resume(run_id)
    info = wait_for(lambda: (i := api.get_run(run_id)).state in FINAL_STATES and i, 240, "the resumed run to end")
    assert info.state == "succeeded", info.error
    assert info.attempt == 2 and info.progress == 1.0
    after = run.metrics_path.read_text()
    assert after.startswith(before)
    resumed = [r for r in run.read_metrics()[len(before.splitlines()):] if r["kind"] == "train"]
    assert resumed and min(r["epoch"] for r in resumed) >= 2
    assert "resumed from" in run.log_path.read_text()
