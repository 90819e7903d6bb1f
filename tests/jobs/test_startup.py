"""Start-up is not a hang: the trainer beats before it imports the model stack, and a run that fails
while starting records the real cause (its one-line error), never an empty log or a heartbeat kill."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import core.train
from core.errors import DataError
from core.runs import RunDir, now
from jobs import process, state
from jobs.queue import Job, Queue

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")


def test_the_trainer_entry_point_imports_no_model_stack():
    code = "import sys, core.train; print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_queued_folder_beats_while_its_config_is_checked(tmp_path, monkeypatch):
    run = RunDir.at(tmp_path / "run").create()
    run.update_status(state="queued")

    def slow_check(*args):
        deadline = time.monotonic() + 30
        while run.heartbeat_age() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        raise DataError(f"dataset root not found: /nonexistent (data.root), heartbeat {run.heartbeat_age() is not None}")

    monkeypatch.setattr(core.train, "resolve_config", slow_check)
    with pytest.raises(DataError):
        core.train.main(["--config", DEMO, "--run-dir", str(run.path)])
    status = run.read_status()
    assert status.state == "failed" and status.error.endswith("heartbeat True")


def test_a_run_failing_at_start_up_records_its_real_error(root, wait_for):
    run = RunDir.at(root / "r1").create()
    run.update_status(state="queued", created=now())
    argv = ["-m", "core.train", "--config", DEMO, "--set", "data.dataset=folder", "--set", "data.root=/nonexistent/hands",
            "--run-dir", str(run.path)]
    Queue().insert([Job(id="r1", path=str(run.path), argv=argv, cwd=str(REPO), created=now())])
    proc = process.spawn(argv, REPO, run.process_log_path)
    run.update_status(state="running", pid=proc.pid, started=now())
    assert proc.wait(timeout=120) == 2
    settled = state.settle(run, Queue().get("r1"), proc)
    assert settled.state == "failed" and settled.error == "dataset root not found: /nonexistent/hands (data.root)"
    assert "error: dataset root not found: /nonexistent/hands" in run.process_log_path.read_text()
