"""Splitting a trainer's wall time into phases from its train.log."""

from datetime import datetime

import pytest

from bench.time_to_result import phase_seconds

LOG = """\
2026-01-01 10:00:02,000 INFO core.training.trainer: read synthetic/default: 400 training images of 32 identities
2026-01-01 10:00:05,500 INFO core.training.trainer: train synthetic/default: {...}; evaluate synthetic/default: {...}
2026-01-01 10:00:05,600 INFO root: Parsing tokenizer identifier. Schema: None
2026-01-01 10:00:06,000 INFO core.training.trainer: model HandID-Tiny (random init) on cpu: 16 classes
2026-01-01 10:00:07,000 INFO core.training.trainer: eval epoch 0 on synthetic/default (10 runs): rank1 0.1
2026-01-01 10:00:09,000 INFO core.training.trainer: epoch 1/2 step 2: loss 2.0 (ce 1.0) lr 0.001, 50 images/s
  a continuation line without a time stamp
2026-01-01 10:00:10,500 INFO core.training.trainer: epoch 2/2 step 4: loss 1.0 (ce 1.0) lr 0.001, 50 images/s
2026-01-01 10:00:11,000 INFO core.training.trainer: eval epoch 2 on synthetic/default (10 runs): rank1 0.2
2026-01-01 10:00:11,250 INFO core.train: succeeded: /x/run
"""


def test_each_marked_line_closes_its_phase():
    start = datetime(2026, 1, 1, 10, 0, 0).timestamp()
    phases = phase_seconds(LOG, start, start + 12.0)
    assert phases == pytest.approx({"startup": 2.0, "data_prep": 3.5, "model_build": 0.5, "evaluation": 1.5,
                                    "training": 3.5, "finish": 1.0})
    assert sum(phases.values()) == pytest.approx(12.0)
