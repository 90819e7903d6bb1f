"""Settling a run's state from its folder and its process: the folder is the record, moves are compare-and-set."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core.runs import FINAL_STATES, RunDir, now
from jobs import api, process
from jobs.queue import Job, Queue
from jobs.state import settle, settle_all

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
GONE = 2 ** 22 + 1  # a pid no process has


def _row(root: Path, run_id: str, argv: list[str], status: dict, **job) -> Job:
    run = RunDir.at(root / run_id).create()
    run.update_status(**status)
    row = Job(id=run_id, path=str(run.path), argv=argv, cwd="/", created=now(), **job)
    Queue().insert([row])
    return row


def test_a_vanished_process_without_final_state_is_failed_as_crashed(root):
    job = _row(root, "a", ["-m", "core.train"], {"state": "running", "pid": GONE, "started": now()}, pid=GONE)
    settle_all(Queue())
    status = RunDir.at(job.path).read_status()
    assert (status.state, status.error) == ("failed", f"crashed: process {GONE} ended without a final state "
                                                      "(killed or out of memory)")


def test_a_final_state_written_by_the_trainer_is_kept(root):
    job = _row(root, "b", ["-m", "core.train"], {"state": "cancelled", "pid": GONE})
    settle_all(Queue())
    assert (RunDir.at(job.path).read_status().state, RunDir.at(job.path).read_status().error) == ("cancelled", None)


def test_a_reused_pid_running_something_else_is_not_the_run(root):
    # this test process is alive, but its command line is not the run's command
    job = _row(root, "c", ["-m", "core.train", "--run-dir", "x"], {"state": "running", "pid": os.getpid()})
    settle_all(Queue())
    assert RunDir.at(job.path).read_status().state == "failed"


def test_a_queued_run_with_a_cancel_request_is_cancelled_and_never_starts(root):
    job = _row(root, "d", ["-m", "core.train"], {"state": "queued"}, cancel_requested=now())
    settle_all(Queue())
    assert RunDir.at(job.path).read_status().state == "cancelled"
    assert Queue().claim("d", 0, "cpu0", now()) is False


def test_a_chained_run_follows_a_parent_that_failed(root):
    _row(root, "p", ["-m", "core.train"], {"state": "failed"})
    child = _row(root, "k", ["-m", "core.train"], {"state": "queued"}, after="p")
    settle_all(Queue())
    status = RunDir.at(child.path).read_status()
    assert (status.state, status.error) == ("failed", "parent p failed")


def test_a_hand_started_folder_whose_pid_is_gone_reads_failed(root):
    run = RunDir.at(root / "manual").create()
    run.update_status(state="running", pid=GONE)
    assert settle(run).state == "failed"
    assert [(i.run_id, i.state) for i in api.list_runs()] == [("manual", "failed")]


def test_a_move_is_compare_and_set_on_state_and_pid(tmp_path):
    run = RunDir.at(tmp_path / "r").create()
    run.update_status(state="running", pid=11)
    assert run.transition(("queued",), state="cancelled") is None
    assert run.transition(("running",), expect_pid=12, state="failed") is None  # a newer attempt's process
    assert run.transition(("running",), expect_pid=11, state="failed").state == "failed"


@pytest.mark.slow
def test_kill_9_mid_run_reads_failed_then_resume_continues_from_the_checkpoint(root, tiny, wait_for):
    run_id = api.submit(DEMO, {**tiny, "train.epochs": 12})  # long enough to be killed mid-run
    run = RunDir.at(root / run_id)
    wait_for(lambda: run.last_path.exists(), 240, "the first checkpoint")
    pid = api.get_run(run_id).pid
    assert process.is_running(pid, ["-m", "core.train"])
    process.signal_group(pid, signal.SIGKILL)
    info = wait_for(lambda: (i := api.get_run(run_id)).state != "running" and i, 10, "the crash to be seen")
    assert info.state == "failed"
    assert info.error.startswith(f"crashed: process {pid} ended without a final state (killed or out of memory)")

    api.resume(run_id)
    info = wait_for(lambda: (i := api.get_run(run_id)).state in FINAL_STATES and i, 240, "the resumed run to end")
    assert info.state == "succeeded", info.error
    assert info.attempt == 2 and info.progress == 1.0
    trains = [(r["epoch"], r["step"]) for r in run.read_metrics() if r["kind"] == "train"]
    assert len(trains) == len(set(trains)) and sorted({e for e, _ in trains}) == list(range(1, 13))
    assert "resumed from" in run.log_path.read_text()
