from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs import RunDir
from jobs.process import child_env
from jobs.queue import Job, JobError, Queue, check_run_id, new_id, new_ids, resolve_root

CONCURRENT_SUBMIT = """
import sys
from jobs import api
for i in range(5):
    print(api.submit(sys.argv[1], {"train.epochs": 1}, name=f"{sys.argv[2]}-{i}", start_scheduler=False), flush=True)
"""


def test_ids_carry_the_time_then_random_hex():
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", new_id())


def test_one_submission_gets_distinct_ids_even_when_draws_repeat(monkeypatch):
    draws = iter(["a", "b", "a", "c", "b", "d"])
    monkeypatch.setattr("jobs.queue.new_id", lambda: next(draws))
    assert new_ids(4) == ["a", "b", "c", "d"]


def test_root_comes_from_argument_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root() == tmp_path / "env"


def test_rows_round_trip_and_a_claim_is_taken_once(root):
    queue = Queue()
    job = Job(id="20260101-000000-abcdef", path=str(root / "x"), argv=["-m", "core.train"], cwd="/",
              created=1.0, overrides={"optim.lr": 1e-4})
    queue.insert([job])
    assert queue.get(job.id) == job
    assert (root / "queue.sqlite").exists()
    assert queue.claim(job.id, attempt=0, slot="cpu0", at=2.0) is True
    assert queue.claim(job.id, attempt=0, slot="cpu1", at=2.0) is False  # another claim won that attempt
    row = queue.get(job.id)
    assert (row.attempt, row.slot, row.started) == (1, "cpu0", 2.0)


def test_a_cancel_request_blocks_the_next_claim_until_cleared(root):
    queue = Queue()
    queue.insert([Job(id="a", path=str(root / "a"), argv=[], cwd="/"), Job(id="b", path=str(root / "b"), argv=[], cwd="/")])
    before = queue.request_cancel(["a", "b"], at=5.0)
    assert [j.cancel_requested for j in before] == [None, None]
    queue.request_cancel(["a"], at=9.0)
    assert queue.get("a").cancel_requested == 5.0  # the first request keeps its time
    assert queue.claim("a", attempt=0, slot="cpu0", at=6.0) is False
    assert queue.clear_cancel("a") and queue.claim("a", attempt=0, slot="cpu0", at=6.0) is True


@pytest.mark.parametrize("bad", ["../other", "a/b", "..", "", ".hidden", "x" * 300])
def test_run_ids_that_could_leave_the_root_are_refused(bad):
    with pytest.raises(JobError, match="is not a run id"):
        check_run_id(bad)


def test_twenty_concurrent_submits_from_four_processes_queue_each_run_once(root):
    demo = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_SUBMIT, demo, f"p{n}"], stdout=subprocess.PIPE,
                              text=True, env=child_env()) for n in range(4)]
    printed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        printed += out.split()
    rows = Queue().all()
    assert len(printed) == 20 and sorted(printed) == sorted(j.id for j in rows)
    statuses = [RunDir.at(j.path).read_status() for j in rows]
    assert sorted(s.name for s in statuses) == sorted(f"p{n}-{i}" for n in range(4) for i in range(5))
    assert all(s.state == "queued" for s in statuses)
    folders = [p for p in root.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folders) == sorted(printed)
    assert all((p / "config.yaml").exists() and (p / "status.json").exists() for p in folders)
