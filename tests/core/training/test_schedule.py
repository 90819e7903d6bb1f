"""Per-step learning-rate factors: linear warm-up, then cosine, step or constant."""

from __future__ import annotations

import pytest

from core.config import OptimConfig
from core.training.schedule import lr_factor


def test_warmup_is_linear_over_the_warmup_epochs():
    cfg = OptimConfig(warmup_epochs=2, schedule="constant")
    assert [lr_factor(s, 2, 10, cfg) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_cosine_falls_from_one_to_zero_after_warmup():
    cfg = OptimConfig(warmup_epochs=1, schedule="cosine")
    # 1 step per epoch, 5 epochs: warm-up step 0, then cos over the 4 remaining steps
    factors = [lr_factor(s, 1, 5, cfg) for s in range(5)]
    assert factors == pytest.approx([1.0, 1.0, 0.8535534, 0.5, 0.1464466])


def test_step_decay_multiplies_by_gamma_every_step_size_epochs():
    cfg = OptimConfig(warmup_epochs=0, schedule="step", step_size=2, gamma=0.1)
    assert [lr_factor(s, 3, 6, cfg) for s in (0, 5, 6, 11, 12)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
