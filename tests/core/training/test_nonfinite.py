"""A loss that becomes NaN stops the run at once, naming the step and the loss part that went bad."""

from __future__ import annotations

import pytest
import torch

from core.errors import TrainingError
from core.losses.combined import LossSet
from core.runs import RunDir
from core.train import train


def test_a_nan_loss_part_fails_the_run_naming_its_step_and_part(tiny_config, tmp_path, monkeypatch):
    real = LossSet.forward
    calls = {"n": 0}

    def nan_from_step_3(self, outputs, labels):
        total, parts = real(self, outputs, labels)
        calls["n"] += 1
        if calls["n"] >= 3:
            parts = {**parts, "triplet": torch.tensor(float("nan"))}
            total = total + parts["triplet"]
        return total, parts

    monkeypatch.setattr(LossSet, "forward", nan_from_step_3)
    cfg = tiny_config({"loss.triplet.weight": 1.0, "train.epochs": 3})
    with pytest.raises(TrainingError, match="the triplet loss became NaN or infinite at step 3"):
        train(cfg, str(tmp_path / "run"))
    status = RunDir.at(tmp_path / "run").read_status()
    assert status.state == "failed" and "step 3" in status.error and status.epoch < 3
