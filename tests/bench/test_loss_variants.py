"""The loss-variants benchmark's summary: means and stds over seeds, and its checks, by hand."""

import math

import pytest

from bench.loss_variants import summarise


def _runs(spread=0.8, margins=((0.40, 0.42), (0.41, 0.43)), i2t=1.5):
    return {
        "CE": [{"mAP": 0.38, "rank1": 0.2, "spread_pre_bn": 0.7, "ce": 1.3},
               {"mAP": 0.40, "rank1": 0.3, "spread_pre_bn": 0.7, "ce": 1.1}],
        "CE+triplet": [{"mAP": 0.39, "rank1": 0.2, "spread_pre_bn": spread, "triplet": 0.3}] * 2,
        "CE+i2t": [{"mAP": 0.39, "rank1": 0.2, "spread_pre_bn": 0.9, "i2t": i2t}] * 2,
        "CE+triplet margin 0.2": [{"mAP": m, "spread_pre_bn": spread} for m in margins[0]],
        "CE+triplet margin 0.5": [{"mAP": m, "spread_pre_bn": spread} for m in margins[1]],
    }


def test_means_stds_and_passing_checks():
    out = summarise(_runs(), identities=30)
    assert out["CE"]["mAP"] == pytest.approx(0.39) and out["CE"]["mAP_std"] == pytest.approx(0.02 / math.sqrt(2))
    assert out["CE"]["ce"] == pytest.approx(1.2) and out["CE"]["seeds"] == 2
    assert out["i2t chance (ln identities)"] == pytest.approx(math.log(30))
    assert out["no variant below CE by more than CE's std"] and out["triplet pre-BN spread >= half of CE's"]
    assert out["margins 0.2 and 0.5 differ"] and out["i2t below chance"]


def test_failing_checks():
    out = summarise(_runs(spread=0.04, margins=((0.30, 0.30), (0.30, 0.30)), i2t=3.5), identities=30)
    assert not out["triplet pre-BN spread >= half of CE's"]
    assert not out["margins 0.2 and 0.5 differ"] and not out["i2t below chance"]
    assert not out["no variant below CE by more than CE's std"]  # 0.30 < 0.39 - 0.014
