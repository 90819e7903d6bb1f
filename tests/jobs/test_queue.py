from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from jobs.process import child_env
from jobs.queue import Job, Queue, new_id, new_ids, resolve_root

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


def test_rows_round_trip_and_updates_respect_state(root):
    queue = Queue()
    job = Job(id="20260101-000000-abcdef", path=str(root / "x"), argv=["-m", "core.train"], cwd="/",
              created=1.0, overrides={"optim.lr": 1e-4})
    queue.insert([job])
    assert queue.get(job.id) == job
    assert (root / "queue.sqlite").exists()
    assert queue.update(job.id, only_if=("running",), state="failed") is False
    assert queue.update(job.id, only_if=("queued",), state="running", pid=123) is True
    assert [j.pid for j in queue.with_state("running")] == [123]


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
    assert sorted(j.name for j in rows) == sorted(f"p{n}-{i}" for n in range(4) for i in range(5))
    assert all(j.state == "queued" for j in rows)
    folders = [p for p in root.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folders) == sorted(printed)
    assert all((p / "config.yaml").exists() and (p / "status.json").exists() for p in folders)
