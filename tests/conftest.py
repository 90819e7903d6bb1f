"""Fixtures shared by the dashboard and browser tests: runs made by real tiny trainings, made once.

`trained_root` (session): a checkpoints root holding
- `done`: demo preset (CE + triplet, PK sampler), 2 epochs, evaluated every epoch, succeeded,
  plus a cross-aspect evaluation on palmar_r recorded in eval.json["cross"];
- `done_ce`: CE only, random sampler, 1 epoch, succeeded;
- `broken`: a folder dataset of one identity (refused when it is read), failed.
All train HandID-Tiny at 32x32 on a 6-identity synthetic 11k-layout dataset (`synth_root`),
running side by side. Tests that write into a root (submit, cache projections) use a copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.data.synth import write_dataset

REPO = Path(__file__).resolve().parents[1]
TINY = [  # the losses are named so that the tests do not follow the demo preset's choices
    "data.image_size=32", "eval.runs=2", "loss.ce.weight=1", "loss.triplet.weight=1", "loss.center.weight=0",
    "loss.arcface.weight=0", "loss.i2t.weight=0", "sampler.kind=pk", "train.threads=1",
    "sampler.p=3", "sampler.k=2", "train.batch_size=6", "train.device=cpu", "train.log_every=1",
]
RUNS = {
    "done": ["train.epochs=2", "eval.every=1"],
    "done_ce": ["train.epochs=1", "loss.triplet.weight=0", "sampler.kind=random"],
    "broken": ["data.dataset=folder"],  # data.root: a folder holding one identity (train_command)
}
CROSS_PROTOCOL = "palmar_r"


def train_command(root: Path, synth: Path, cache: Path, run_id: str) -> list[str]:
    data = synth if run_id != "broken" else one_identity(root.parent / "one-identity")
    sets = [f"data.root={data}", f"data.cache_dir={cache}", *TINY, *RUNS[run_id]]
    return [sys.executable, "-m", "core.train", "--config", "configs/demo.yaml", "--run-dir", str(root / run_id),
            *(arg for s in sets for arg in ("--set", s))]


def one_identity(folder: Path) -> Path:
    """A folder dataset holding one identity: readable, but no protocol can be built on it."""
    (folder / "a").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 150, 120)).save(folder / "a" / "1.png")
    return folder


def run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Run commands side by side; their results in order."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=600), p.stdout.read(), "") for p in procs]


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic identities in the 11k layout, 4 images per aspect, 40x32 (written in-process: fast)."""
    return write_dataset("11k", tmp_path_factory.mktemp("data") / "synthetic-11k", identities=6, seed=0, size=(40, 32))


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory, synth_root: Path) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    cache = tmp_path_factory.mktemp("cache")
    trainings = run_all([train_command(root, synth_root, cache, run_id) for run_id in RUNS])
    assert [r.returncode for r in trainings] == [0, 0, 2], "\n".join(r.stdout[-2000:] for r in trainings)
    cross, = run_all([[sys.executable, "-m", "core.evaluate", "--run-dir", str(root / "done"), "--dataset", "synthetic",
                       "--root", str(synth_root), "--protocol", CROSS_PROTOCOL, "--device", "cpu", "--json"]])
    assert cross.returncode == 0, cross.stdout[-3000:]
    return root
