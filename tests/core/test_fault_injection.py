"""Fault injection: the trainer SIGKILLed at seeded random points of training and saving, 20 times, each
time resumed; every interrupted run must end exactly like one that was never interrupted.

The trainer runs in a forked child (no start-up imports per attempt) that counts its events: each
training step, each metrics line, each checkpoint and record write and each rename, before and after
(so a kill lands with a temporary file written but not renamed, a record half changed, ...). At the
seeded event it sends itself SIGKILL: no handler, no cleanup. Then `--resume` runs in a new child,
until the run succeeds; kills continue on a fresh run until 20 were delivered. Each finished run must
hold every (epoch, step) once in metrics.jsonl, the very records, weights and optimizer state of the
uninterrupted run (so weights and optimizer state were never torn apart), and no temporary file.
"""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import core.model.checkpoint as checkpoint
from core.model.checkpoint import load_metadata, load_model_state, load_training_state
from core.runs import RunDir
from core.train import main
from core.training.trainer import Meter

from .test_train import cli_args

pytestmark = pytest.mark.slow

KILLS = 20
SEED = 12
EVENTS = (  # (owner, attribute): each call is an event before and after
    (Meter, "add"), (RunDir, "append_metrics"), (RunDir, "update_eval"), (RunDir, "update_status"),
    (RunDir, "truncate_metrics"), (RunDir, "write_embeddings"), (checkpoint, "save_file"), (os, "replace"),
)


def arm(kill_at: int) -> None:
    """In the child: SIGKILL this process at its `kill_at`-th event."""
    count = itertools.count(1)

    def tick() -> None:
        if next(count) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    for owner, name in EVENTS:
        real = getattr(owner, name)

        def hooked(*args, _real=real, **kwargs):
            tick()
            out = _real(*args, **kwargs)
            tick()
            return out
        setattr(owner, name, hooked)


def attempt(args: list[str], kill_at: int) -> str:
    """Run core.train in a forked child armed to die at `kill_at`: `killed` or `done` (exit code 0)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            arm(kill_at)
            code = main(args)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"attempt ended with status {status}"
    return "done"


def comparable(run: RunDir) -> list[dict]:
    """The records without what differs between attempts by design: throughput, wall time, resume marks."""
    return [{k: v for k, v in m.items() if k not in ("images_per_s", "time")} for m in run.read_metrics()
            if m["kind"] != "resume"]


def assert_same_state(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    else:
        assert a == b


def test_kill_9_at_random_points_then_resume_loses_and_repeats_nothing(tiny_overrides, tmp_path):
    overrides = {**tiny_overrides, "train.epochs": 2, "eval.every": 1}
    reference = RunDir.at(tmp_path / "reference")
    assert main(cli_args(overrides, reference.path)) == 0
    expected = comparable(reference)
    rng = np.random.default_rng(SEED)
    kills, finished = 0, 0
    while kills < KILLS:
        run = RunDir.at(tmp_path / f"run{finished}")
        args = cli_args(overrides, run.path)
        while attempt(args, int(rng.integers(1, 60))) == "killed":
            kills += 1
            args = ["--resume", "--run-dir", str(run.path)]
        finished += 1
        trains = [(m["epoch"], m["step"]) for m in run.read_metrics() if m["kind"] == "train"]
        assert len(trains) == len(set(trains)) and {e for e, _ in trains} == {1, 2}
        assert comparable(run) == expected, f"{run.path}: records differ after {kills} kills"
        assert load_metadata(run.last_path).epoch == load_training_state(run.last_path)["epoch"] == 2
        assert_same_state(load_model_state(run.last_path), load_model_state(reference.last_path))
        assert_same_state(load_training_state(run.last_path), load_training_state(reference.last_path))
        assert not list(run.path.glob(".*.tmp")) and run.read_status().state == "succeeded"
    assert finished >= 2, finished  # the kills spread over several runs, each resumed to the end
