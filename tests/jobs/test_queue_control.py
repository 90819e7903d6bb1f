"""Controlling queued runs: a cancel request is honoured before the process is spawned, however the
cancel and the scheduler's pass interleave; every jobs command restarts a dead scheduler while runs
wait; `jobs resume` says whether the run continues or starts over."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.runs import RunDir, now
from jobs import api, process
from jobs.queue import Job, Queue
from jobs.scheduler import Scheduler


def queued_rows(root: Path, count: int) -> list[str]:
    """Rows whose process would leave a marker file in its folder: proof that it started."""
    ids = []
    for i in range(count):
        run = RunDir.at(root / f"r{i}").create()
        run.update_status(state="queued", kind="evaluate", created=now())
        Queue().insert([Job(id=run.run_id, path=str(run.path), kind="evaluate", cwd=str(run.path), created=now(),
                            argv=["-c", "open('STARTED', 'w').close()"])])
        ids.append(run.run_id)
    return ids


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    real = process.spawn
    monkeypatch.setattr(process, "spawn", lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs))
    return calls


def test_cancelled_queued_runs_never_start(root, spawned):
    ids = queued_rows(root, 3)
    assert api.cancel_many(ids) == dict.fromkeys(ids, "cancelled")
    scheduler = Scheduler()
    assert scheduler.step() is False
    assert spawned == [] and {api.get_run(i).state for i in ids} == {"cancelled"}
    assert not any((root / i / "STARTED").exists() for i in ids)


def test_a_cancel_arriving_after_the_schedulers_listing_is_honoured_before_spawn(root, spawned, monkeypatch):
    run_id, = queued_rows(root, 1)
    scheduler = Scheduler()
    stale = scheduler._settled()  # the pass lists the run as queued, then the cancel arrives
    api.cancel(run_id)
    monkeypatch.setattr(scheduler, "_settled", lambda: stale)
    scheduler.step()
    assert spawned == [] and api.get_run(run_id).state == "cancelled"


def test_a_cancel_arriving_between_claim_and_spawn_is_honoured_before_spawn(root, spawned, monkeypatch):
    run_id, = queued_rows(root, 1)
    scheduler = Scheduler()
    claim = scheduler.queue.claim

    def claim_then_cancel(*args):
        won = claim(*args)
        api.cancel_many([run_id])  # lands after the claim: the row is taken, the folder moves to cancelled
        return won

    monkeypatch.setattr(scheduler.queue, "claim", claim_then_cancel)
    scheduler.step()
    assert spawned == [] and api.get_run(run_id).state == "cancelled"
    assert not (root / run_id / "STARTED").exists()


@pytest.mark.parametrize("command", [["show", "r1"], ["logs", "r1"], ["cancel", "r0"], ["list"]])
def test_every_jobs_command_restarts_a_dead_scheduler_while_runs_wait(root, monkeypatch, capsys, command):
    from jobs.__main__ import main

    queued_rows(root, 2)
    started = []
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: started.append(root) or True)
    assert main(command) == 0
    assert started == [root]


@pytest.mark.parametrize(("checkpoint", "said"), [(True, "it continues after its last checkpoint"),
                                                  (False, "it starts from epoch 1 (no checkpoint was saved)")])
def test_resume_says_whether_it_continues_or_starts_over(root, monkeypatch, capsys, checkpoint, said):
    from jobs.__main__ import main

    run_id, = queued_rows(root, 1)
    RunDir.at(root / run_id).update_status(state="failed")
    if checkpoint:
        RunDir.at(root / run_id).last_path.write_bytes(b"")
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)
    assert main(["resume", run_id]) == 0
    assert capsys.readouterr().out == f"{run_id}: queued again; {said}\n"
