"""Verification summary: EER, TAR@FAR, thresholds and curves against hand-computed small cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.metrics import verification_metrics
from core.verification import downsample, operating_point, threshold_at, verification_summary

# One probe (row 0) against seven gallery rows: genuine scores 0.9, 0.7, 0.5; impostors 0.8, 0.6, 0.4, 0.3.
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
LABELS = np.array([1, 1, 2, 1, 3, 1, 4, 5])


def unit_vectors(scores: list[float]) -> np.ndarray:
    """Row 0 = [1, 0], then 2-D unit vectors whose cosine with it is each score."""
    s = np.asarray(scores, dtype=np.float64)
    return np.concatenate([[[1.0, 0.0]], np.stack([s, np.sqrt(1 - s**2)], axis=1)])


FEATURES = unit_vectors(SCORES)
RUN0 = (np.array([0]), np.arange(1, 8))


def test_three_genuine_four_impostor_scores_by_hand():
    # Accepting score >= t, the ROC goes (FAR, TAR): (0, 1/3) at 0.9, (1/4, 1/3) at 0.8, (1/4, 2/3)
    # at 0.7, (1/2, 2/3) at 0.6, (1/2, 1) at 0.5, (1, 1) at 0.3. FNMR is 1/3 for FAR in [1/4, 1/2],
    # so FAR = FNMR = 1/3; AUC = 9 of 12 genuine-impostor pairs ordered right.
    s = verification_summary(FEATURES, LABELS, [RUN0])
    assert s["eer"] == pytest.approx(1 / 3)
    assert s["auc"] == pytest.approx(0.75)
    assert s["tar@far=1e-2"] == pytest.approx(1 / 3) and s["tar@far=1e-3"] == pytest.approx(1 / 3)
    assert s["eer_std"] == 0.0
    # FAR <= 1e-2 on 4 impostors means accepting none of them: the lowest such threshold is 0.9.
    assert s["thresholds"] == [
        {"far_target": 1e-2, "threshold": pytest.approx(0.9), "far": 0.0, "tar": pytest.approx(1 / 3)},
        {"far_target": 1e-3, "threshold": pytest.approx(0.9), "far": 0.0, "tar": pytest.approx(1 / 3)},
    ]
    assert s["roc"]["far"] == pytest.approx([0, 0, 1 / 4, 1 / 4, 1 / 2, 1 / 2, 1])
    assert s["roc"]["tar"] == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert s["roc"]["threshold"][1:] == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.3])
    assert s["roc"]["threshold"][0] > 0.9  # "accept nothing", finite
    assert s["det"]["fmr"] == s["roc"]["far"]
    assert s["det"]["fnmr"] == pytest.approx([1 - t for t in s["roc"]["tar"]])
    assert s["pairs"] == {"genuine": 3, "impostor": 4}
    json.dumps(s, allow_nan=False)


def test_mean_and_std_over_runs():
    separable = (np.array([0]), np.array([1, 2]))  # genuine 0.9 above impostor 0.8: EER 0, TAR 1
    s = verification_summary(FEATURES, LABELS, [RUN0, separable])
    assert s["eer"] == pytest.approx(1 / 6) and s["eer_std"] == pytest.approx(1 / 6)
    assert s["tar@far=1e-2"] == pytest.approx(2 / 3) and s["tar@far=1e-2_std"] == pytest.approx(1 / 3)
    assert s["pairs"] == {"genuine": 3, "impostor": 4}  # curves and pairs are run 0's


def test_thresholds_accept_within_the_far_target():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    labels = rng.integers(0, 30, size=300)
    runs = [(np.arange(100), np.arange(100, 300))]
    s = verification_summary(features, labels, runs)
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    scores = f[:100] @ f[100:].T
    genuine = labels[:100, None] == labels[None, 100:]
    for point in s["thresholds"]:
        accepted = scores >= point["threshold"]
        assert accepted[~genuine].mean() <= point["far_target"]
        assert accepted[~genuine].mean() == pytest.approx(point["far"])
        assert accepted[genuine].mean() == pytest.approx(point["tar"])
    assert threshold_at(s["thresholds"], 1e-3) == s["thresholds"][1]["threshold"]
    assert threshold_at(s["thresholds"], 0.05) is None


def test_an_impostor_on_top_gives_a_threshold_that_accepts_nothing():
    features = unit_vectors([0.9, 0.8])
    m = verification_metrics(features[[0]], [1], features[1:], [2, 1])  # top score is an impostor's
    point = operating_point(m["fpr"], m["tpr"], m["thresholds"], 1e-3)
    assert point["threshold"] > 0.9 and np.isfinite(point["threshold"])
    assert (point["far"], point["tar"]) == (0.0, 0.0)


def test_curves_are_downsampled_to_exact_roc_points():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(600, 4))
    labels = rng.integers(0, 20, size=600)
    s = verification_summary(features, labels, [(np.arange(200), np.arange(200, 600))], max_points=50)
    m = verification_metrics(features[:200], labels[:200], features[200:], labels[200:])
    assert len(m["fpr"]) > 50 and len(s["roc"]["far"]) <= 50
    exact = set(zip(m["fpr"].tolist(), m["tpr"].tolist()))
    assert set(zip(s["roc"]["far"], s["roc"]["tar"])) <= exact
    assert (s["roc"]["far"][0], s["roc"]["far"][-1]) == (0.0, 1.0)
    assert np.all(np.diff(s["roc"]["far"]) >= 0)
    assert list(downsample(np.array([0.0, 0.5, 1.0]))) == [0, 1, 2]


def test_no_impostor_pairs_give_undefined_figures():
    s = verification_summary(FEATURES, np.ones(8, dtype=int), [RUN0])
    assert s["eer"] is None and s["thresholds"] == [] and s["roc"]["far"] == []
    assert s["pairs"] == {"genuine": 7, "impostor": 0}
