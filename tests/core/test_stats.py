"""core.stats against hand computations (tests/stats_by_hand.py) and Holm on worked cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.stats import format_p, holm, paired, sentence, spans_zero, summary
from tests.stats_by_hand import mean_std_ci, paired_by_hand


def test_summary_is_mean_sample_std_and_t_interval():
    values = [0.41, 0.45, 0.38, 0.44]
    mean, std, ci = mean_std_ci(values)
    out = summary(values)
    assert out["n"] == 4 and out["values"] == values
    assert out["mean"] == pytest.approx(mean, abs=1e-12)
    assert out["std"] == pytest.approx(std, abs=1e-12)
    assert out["ci95"] == pytest.approx(ci, abs=1e-12)


def test_summary_of_one_or_no_values_has_no_spread():
    assert summary([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci95": None, "values": [0.5]}
    assert summary([]) == {"n": 0, "mean": None, "std": None, "ci95": None, "values": []}


def test_summary_of_equal_values_is_a_point_interval():
    assert summary([0.3, 0.3, 0.3])["ci95"] == [0.3, 0.3]
    assert summary([0.3, 0.3, 0.3])["std"] == 0.0


def test_paired_t_test_by_hand_three_pairs():
    a, b = [0.52, 0.55, 0.50], [0.50, 0.51, 0.49]
    expected = paired_by_hand(a, b)
    out = paired(a, b)
    assert out["n_pairs"] == 3
    assert out["diff"] == pytest.approx(expected["diff"], abs=1e-12)
    assert out["ci95"] == pytest.approx(expected["ci95"], abs=1e-12)
    assert out["p"] == pytest.approx(expected["p"], abs=1e-10)


def test_paired_t_test_by_hand_five_pairs_negative_direction():
    a, b = [0.47, 0.50, 0.48, 0.50, 0.49], [0.50, 0.52, 0.49, 0.55, 0.51]
    expected = paired_by_hand(a, b)
    out = paired(a, b)
    assert out["diff"] == pytest.approx(-0.026, abs=1e-12)
    assert out["ci95"] == pytest.approx(expected["ci95"], abs=1e-12) and expected["ci95"][1] < 0
    assert out["p"] == pytest.approx(expected["p"], abs=1e-10)


def test_arms_that_truly_differ_give_a_small_p():
    rng = np.random.default_rng(7)
    seed_effect = rng.normal(0.60, 0.03, 5)  # what a training seed does to both arms
    better = seed_effect + 0.03 + rng.normal(0, 0.005, 5)
    reference = seed_effect + rng.normal(0, 0.005, 5)
    out = paired(better, reference)
    assert out["p"] < 0.05 and out["ci95"][0] > 0


def test_identical_arms_give_p_one_and_a_zero_interval():
    values = [0.41, 0.45, 0.38, 0.44]
    out = paired(values, values)
    assert out == {"diff": 0.0, "ci95": [0.0, 0.0], "p": 1.0, "n_pairs": 4}
    assert spans_zero(out["ci95"])


def test_paired_degenerate_cases_are_json_safe():
    for a, b in (([0.5], [0.4]), ([], []), ([0.6, 0.7], [0.5, 0.6])):
        json.dumps(paired(a, b), allow_nan=False)
        json.dumps(summary(a), allow_nan=False)
    assert paired([0.5], [0.4]) == {"diff": pytest.approx(0.1), "ci95": None, "p": None, "n_pairs": 1}
    with pytest.raises(ValueError):
        paired([1, 2], [1])


@pytest.mark.parametrize("pvalues, expected", [
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),  # 4x, 3x, 2x, 1x, made monotone
    ([0.01, 0.02, 0.03, 0.04, 0.05], [0.05, 0.08, 0.09, 0.09, 0.09]),  # statsmodels multipletests(holm)
    ([0.5, 0.6], [1.0, 1.0]),  # capped at 1
    ([None, 0.02, 0.04], [None, 0.04, 0.04]),  # None is not counted
    ([0.03], [0.03]),
    ([], []),
])
def test_holm_on_worked_cases(pvalues, expected):
    assert holm(pvalues) == pytest.approx(expected)


def test_sentence_when_an_arm_is_better_worse_or_indistinguishable():
    better = {"diff": 0.031, "ci95": [0.012, 0.050], "p": 0.004, "p_holm": 0.008, "n_pairs": 5}
    assert sentence("CE+triplet", "CE", "mAP", better) == \
        "CE+triplet beats CE by +0.031 mAP (95% CI +0.012 to +0.050, p = 0.004, Holm p = 0.008) over 5 training seeds"
    worse = {"diff": -0.02, "ci95": [-0.03, -0.01], "p": 0.0004, "p_holm": 0.0008, "n_pairs": 3}
    assert sentence("SGD", "Adam", "rank1", worse) == \
        "SGD is below Adam by 0.020 rank1 (95% CI -0.030 to -0.010, p < 0.001, Holm p < 0.001) over 3 training seeds"
    same = {"diff": 0.003, "ci95": [-0.010, 0.016], "p": 0.6, "p_holm": 1.0, "n_pairs": 5}
    assert sentence("m0.5", "m0.3", "mAP", same) == ("No detectable difference between m0.5 and m0.3 in mAP (+0.003, "
                                                     "95% CI -0.010 to +0.016, p = 0.600, Holm p = 1.000) over 5 "
                                                     "training seeds")


def test_sentence_flags_a_difference_lost_to_the_holm_correction_and_too_few_pairs():
    lost = {"diff": 0.02, "ci95": [0.001, 0.039], "p": 0.045, "p_holm": 0.09, "n_pairs": 5}
    assert sentence("a", "b", "mAP", lost).endswith("over 5 training seeds; not significant after Holm correction")
    one = {"diff": 0.02, "ci95": None, "p": None, "p_holm": None, "n_pairs": 1}
    assert "Too few paired runs" in sentence("a", "b", "mAP", one, n_seeds=1)


def test_format_p():
    assert [format_p(p) for p in (None, 0.0002, 0.0456, 1.0)] == ["–", "<0.001", "0.046", "1.000"]
