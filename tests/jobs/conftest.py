"""Shared fixtures of the jobs tests: a checkpoints root per test, the tiny demo config, and a
teardown that kills every scheduler and trainer process the test started."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.data.prepare import ensure_dataset
from jobs import process

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Overrides that shrink configs/demo.yaml to a run of a few seconds (8 identities, 32 px,
    1 epoch, a checkpoint every epoch); its synthetic data is generated once per session."""
    base = tmp_path_factory.mktemp("jobs-data")
    overrides = {"data.root": str(base / "synthetic"), "data.cache_dir": str(base / "cache"),
                 "data.synth_identities": 8, "data.image_size": 32, "sampler.p": 4, "sampler.k": 2,
                 "train.batch_size": 8, "train.epochs": 1, "train.device": "cpu", "eval.every": 1,
                 "eval.runs": 1, "eval.batch_size": 32, "data.synth_images_per_aspect": 4, "train.threads": 1,
                 # named, so that the tests do not follow the demo preset's loss choices
                 "loss.ce.weight": 1.0, "loss.triplet.weight": 1.0, "loss.center.weight": 0.0,
                 "loss.arcface.weight": 0.0, "loss.i2t.weight": 0.0, "sampler.kind": "pk"}
    ensure_dataset(load_config(DEMO, overrides).data)
    return overrides


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh checkpoints root (via $HANDID_CHECKPOINTS), a quick scheduler, CPU slots only."""
    root = tmp_path / "checkpoints"
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    monkeypatch.setenv("HANDID_SCHEDULER_IDLE", "3")
    monkeypatch.setenv("HANDID_SCHEDULER_POLL", "0.2")
    monkeypatch.setenv("HANDID_CPU_SLOTS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.chdir(tmp_path)
    yield root
    kill_processes_under(root)


def processes_under(path: Path) -> list[int]:
    """Pids of live processes whose command line names path (schedulers and runs of that root)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            args = process.cmdline(int(entry.name)) or []
            if any(str(path) in a for a in args):
                pids.append(int(entry.name))
    return pids


def kill_processes_under(path: Path) -> None:
    """SIGKILL the process groups of every process of this root (each leads its own session)."""
    for _ in range(50):
        pids = processes_under(path)
        if not pids:
            return
        for pid in pids:
            process.signal_group(pid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until predicate() is truthy; its value, or an AssertionError naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def wait_for() -> Callable[[Callable[[], Any], float, str], Any]:
    return _wait_for
