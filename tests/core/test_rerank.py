"""k-reciprocal re-ranking against neighbour sets and Jaccard distances worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics import ranked_gallery, retrieval_metrics
from core.rerank import expanded_set, k_reciprocal, rerank_distance, rerank_metrics, rerank_summary


def on_circle(degrees: list[float]) -> np.ndarray:
    """Unit vectors at these angles: distance grows with the angle between them (below 180)."""
    a = np.radians(degrees)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


# Points 0, 1 are the queries q0 (0 deg), q1 (90 deg); 2..5 the gallery g0 (10), g1 (30), g2 (80), g3 (210).
ANGLES = [0, 90, 10, 30, 80, 210]
QUERIES, GALLERY = on_circle(ANGLES[:2]), on_circle(ANGLES[2:])
# Nearest first (angles between): 0: 0 2 3 4 1 5 | 1: 1 4 3 2 0 5 | 2: 2 0 3 4 1 5
#                                 3: 3 2 0 4 1 5 | 4: 4 1 3 2 0 5 | 5: 5 1 4 0 2 3
RANK = np.array([[0, 2, 3, 4, 1, 5], [1, 4, 3, 2, 0, 5], [2, 0, 3, 4, 1, 5],
                 [3, 2, 0, 4, 1, 5], [4, 1, 3, 2, 0, 5], [5, 1, 4, 0, 2, 3]])
# k1 = 2: R(i) = those of i's 3 nearest that have i among their own 3 nearest.
# R(0) = {0, 2, 3}: 2's nearest 2 0 3 and 3's 3 2 0 both hold 0.  R(1) = {1, 4}: 3's nearest 3 2 0 lack 1.
# R(5) = {5}: neither 1 (1 4 3) nor 4 (4 1 3) has 5 among its 3 nearest.
# The expansion adds nothing: R(j, round(2/2) = 1) has at most 2 members, which must then both lie in R(i).
SETS = {0: [0, 2, 3], 1: [1, 4], 2: [0, 2, 3], 3: [0, 2, 3], 4: [1, 4], 5: [5]}


def test_the_ranking_above_is_the_one_the_features_give():
    dist = 2 - 2 * on_circle(ANGLES) @ on_circle(ANGLES).T
    assert (np.argsort(dist, axis=1, kind="stable") == RANK).all()


def test_k_reciprocal_sets_by_hand():
    for i, expected in SETS.items():
        assert sorted(k_reciprocal(RANK, i, 2)) == expected
        assert sorted(expanded_set(RANK, i, 2)) == expected


def test_jaccard_distances_by_hand():
    """lambda = 0, k2 = 1: only the Jaccard distance of the k-reciprocal features."""
    x = on_circle(ANGLES)
    d = 2 - 2 * x @ x.T
    d = d / d.max(axis=1, keepdims=True)  # row-normalised original distance

    def v(i: int) -> np.ndarray:  # Gaussian weights exp(-d) over R*(i), summing to 1
        out = np.zeros(6)
        out[SETS[i]] = np.exp(-d[i, SETS[i]])
        return out / out.sum()

    def jaccard(i: int, j: int) -> float:
        return 1 - np.minimum(v(i), v(j)).sum() / np.maximum(v(i), v(j)).sum()

    # Disjoint sets are 1 apart: R(0) = {0, 2, 3} vs R(4) = {1, 4} and R(5) = {5}; R(1) = {1, 4} vs the rest.
    expected = np.array([[jaccard(0, 2), jaccard(0, 3), 1.0, 1.0],
                         [1.0, 1.0, jaccard(1, 4), 1.0]])
    got = rerank_distance(QUERIES, GALLERY, k1=2, k2=1, lambda_=0.0)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0, 0] < got[0, 1] < 1  # g0 shares q0's set with weights closer to q0's own


def test_lambda_mixes_in_the_row_normalised_original_distance():
    x = on_circle(ANGLES)
    d = 2 - 2 * x @ x.T
    original = (d / d.max(axis=1, keepdims=True))[:2, 2:]
    jaccard = rerank_distance(QUERIES, GALLERY, k1=2, k2=1, lambda_=0.0)
    mixed = rerank_distance(QUERIES, GALLERY, k1=2, k2=1, lambda_=0.3)
    assert mixed == pytest.approx(0.7 * jaccard + 0.3 * original, abs=1e-12)


def test_the_half_k_expansion_adds_a_set_sharing_more_than_two_thirds():
    """k1 = 6 over 8 points (ranks given directly): R(0, 6) = {0..6}, and 7 comes in through 1."""
    rank = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [1, 7, 0, 2, 3, 4, 5, 6], [2, 1, 0, 3, 4, 5, 6, 7],
                     [3, 0, 1, 2, 4, 5, 6, 7], [4, 0, 1, 2, 3, 5, 6, 7], [5, 0, 1, 2, 3, 4, 6, 7],
                     [6, 0, 1, 2, 3, 4, 5, 7], [7, 1, 2, 3, 4, 5, 6, 0]])
    assert sorted(k_reciprocal(rank, 0, 6)) == [0, 1, 2, 3, 4, 5, 6]  # 7 is 0's last
    # R(1, 3) = {1, 7, 0, 2} (each has 1 among its 4 nearest); 3 of its 4 lie in R(0, 6): 3 > 2/3 * 4.
    assert sorted(k_reciprocal(rank, 1, 3)) == [0, 1, 2, 7]
    assert sorted(expanded_set(rank, 0, 6)) == list(range(8))
    # With 3 instead of 2 among 1's 4 nearest, and 1 no longer among 3's, R(1, 3) = {1, 7, 0}
    # shares only 2 of its 3 members with R(0, 6): not > 2, so 7 stays out.
    rank[1] = [1, 7, 0, 3, 2, 4, 5, 6]
    rank[3] = [3, 0, 2, 4, 1, 5, 6, 7]
    assert sorted(k_reciprocal(rank, 0, 6)) == [0, 1, 2, 3, 4, 5, 6]
    assert sorted(k_reciprocal(rank, 1, 3)) == [0, 1, 7]
    assert 7 not in expanded_set(rank, 0, 6)


def test_lambda_one_keeps_the_original_ranking():
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(12, 5)), rng.normal(size=(20, 5))
    ql, gl = rng.integers(0, 5, 12), rng.integers(0, 5, 20)
    dist = rerank_distance(qf, gf, k1=4, k2=2, lambda_=1.0)
    order, _ = ranked_gallery(qf, gf, k=20)
    assert (np.argsort(dist, axis=1, kind="stable") == order.numpy()).all()
    plain = retrieval_metrics(qf, ql, gf, gl)
    assert rerank_metrics(qf, ql, gf, gl, k1=4, k2=2, lambda_=1.0) == pytest.approx(plain)


def test_a_bridge_of_queries_pulls_the_true_match_to_rank_1():
    """q0 (0 deg) is nearer B's gallery image (-30) than its own (40), but A's other queries (12, 24,
    32) lead from q0 to 40, while B's image belongs to B's queries (-34 ... -46)."""
    queries = on_circle([0, 12, 24, 32, -34, -38, -42, -46])
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    gallery, gallery_labels = on_circle([40, -30]), [0, 1]
    plain = retrieval_metrics(queries, labels, gallery, gallery_labels)
    reranked = rerank_metrics(queries, labels, gallery, gallery_labels, k1=3, k2=2, lambda_=0.3)
    assert plain["rank1"] == 7 / 8 and plain["mAP"] == pytest.approx(15 / 16)
    assert reranked["rank1"] == 1.0 and reranked["mAP"] == 1.0


def test_summary_averages_runs_and_names_its_parameters():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(30, 4)), rng.integers(0, 6, 30)
    runs = [(np.arange(0, 20), np.arange(20, 30)), (np.arange(10, 30), np.arange(0, 10))]
    s = rerank_summary(features, labels, runs, k1=5, k2=3, lambda_=0.3)
    per_run = [rerank_metrics(features[q], labels[q], features[g], labels[g], 5, 3, 0.3) for q, g in runs]
    assert s["mAP"] == pytest.approx(np.mean([m["mAP"] for m in per_run]))
    assert s["mAP_std"] == pytest.approx(np.std([m["mAP"] for m in per_run]))
    assert (s["k1"], s["k2"], s["lambda"]) == (5, 3, 0.3) and "skipped_queries_std" not in s


def test_bad_parameters_are_value_errors():
    with pytest.raises(ValueError, match="lambda"):
        rerank_distance(QUERIES, GALLERY, lambda_=1.5)
    with pytest.raises(ValueError, match="dim"):
        rerank_distance(QUERIES, np.ones((3, 4)))
