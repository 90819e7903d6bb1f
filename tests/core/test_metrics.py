"""Retrieval, verification and embedding statistics against hand-computed values and a brute-force loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from core.metrics import (feature_statistics, mean_pairwise_distance, mean_std, ranked_gallery, retrieval_metrics,
                          retrieval_metrics_from_scores, verification_metrics)

QUERY = np.array([[1.0, 0.0]])


def gallery_with_scores(scores: list[float]) -> np.ndarray:
    """2-D unit vectors whose cosine similarity with QUERY is exactly each score."""
    s = np.asarray(scores, dtype=np.float64)
    return np.stack([s, np.sqrt(1.0 - s**2)], axis=1)


# ---------------------------------------------------------------- retrieval, by hand


def test_positives_at_ranks_2_and_4_of_5():
    # gallery index:  0    1    2    3    4   -> ranks 4, 1, 5, 2, 3
    scores = [0.6, 0.9, 0.5, 0.8, 0.7]
    labels = [7, 1, 2, 7, 3]  # label 7 at ranks 2 and 4
    m = retrieval_metrics(QUERY, [7], gallery_with_scores(scores), labels)
    assert m["rank1"] == 0.0
    assert m["rank5"] == 1.0
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["mINP"] == pytest.approx(2 / 4)
    # papers' trapezoid AP: per positive, the mean of the precision just before its rank and at it:
    # rank 2: (0/1 + 1/2) / 2; rank 4: (1/3 + 2/4) / 2
    assert m["mAP_trapezoid"] == pytest.approx(((0 + 1 / 2) / 2 + (1 / 3 + 2 / 4) / 2) / 2)
    assert m["skipped_queries"] == 0
    assert set(m) == {"rank1", "rank5", "rank10", "rank20", "mAP", "mAP_trapezoid", "mINP", "skipped_queries"}


def test_trapezoid_ap_counts_precision_one_before_a_first_rank_hit():
    scores = [0.9, 0.8, 0.7, 0.6]
    m = retrieval_metrics(QUERY, [7], gallery_with_scores(scores), [7, 1, 7, 2])  # hits at ranks 1 and 3
    assert m["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["mAP_trapezoid"] == pytest.approx(((1 + 1) / 2 + (1 / 2 + 2 / 3) / 2) / 2)


def test_one_gallery_image_per_identity_gives_the_papers_relation():
    # each query has one true match, at rank r: AP = 1/r, trapezoid AP = 1 at rank 1, else 1/(2r)
    rng = np.random.default_rng(3)
    gallery, queries = rng.normal(size=(12, 6)), rng.normal(size=(30, 6))
    gl, ql = np.arange(12), rng.integers(0, 12, 30)
    m = retrieval_metrics(queries, ql, gallery, gl)
    assert m["mAP_trapezoid"] == pytest.approx((m["rank1"] + m["mAP"]) / 2)
    assert m["mAP"] == pytest.approx(m["mINP"])


def test_single_match_at_rank_3():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    m = retrieval_metrics(QUERY, [5], gallery_with_scores(scores), [1, 2, 5, 3, 4], ranks=(1, 2, 3))
    assert (m["rank1"], m["rank2"], m["rank3"]) == (0.0, 0.0, 1.0)
    assert m["mAP"] == pytest.approx(1 / 3)
    assert m["mINP"] == pytest.approx(1 / 3)


def test_query_without_match_is_skipped_and_left_out_of_means():
    gallery = gallery_with_scores([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = [1, 0, 2, 0, 3]  # label 0 at ranks 2 and 4 (AP 0.5); label 2 at rank 3 (AP 1/3)
    queries = np.repeat(QUERY, 3, axis=0)
    m = retrieval_metrics(queries, [0, 99, 2], gallery, labels)
    assert m["skipped_queries"] == 1
    assert m["mAP"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert m["mINP"] == pytest.approx((2 / 4 + 1 / 3) / 2)
    assert m["rank1"] == 0.0 and m["rank5"] == 1.0


def test_ties_keep_ascending_gallery_index():
    gallery = gallery_with_scores([0.5, 0.5, 0.5, 0.5])  # all tied
    m = retrieval_metrics(QUERY, [4], gallery, [1, 2, 4, 3])
    assert m["mAP"] == pytest.approx(1 / 3)  # rank 3, not 2 (descending index) or 1
    idx, sims = ranked_gallery(QUERY, gallery, k=4)
    assert idx.tolist() == [[0, 1, 2, 3]]
    assert idx.dtype == torch.int64
    assert sims[0].tolist() == pytest.approx([0.5] * 4)


def test_features_are_normalised_inside():
    gallery = gallery_with_scores([0.6, 0.9, 0.5, 0.8, 0.7]) * np.array([[3.0], [0.1], [7.0], [2.0], [0.5]])
    m = retrieval_metrics(QUERY * 5, [7], gallery, [7, 1, 2, 7, 3])
    assert m["mAP"] == pytest.approx(0.5)


def test_numpy_and_torch_inputs_agree_and_string_labels_work():
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
    ql, gl = rng.integers(0, 6, 20), rng.integers(0, 6, 30)
    a = retrieval_metrics(qf, ql, gf, gl)
    b = retrieval_metrics(torch.from_numpy(qf), torch.from_numpy(ql), torch.from_numpy(gf), torch.from_numpy(gl))
    c = retrieval_metrics(qf, [f"id{x}" for x in ql], gf, np.array([f"id{x}" for x in gl]))
    assert a == b == c
    assert all(isinstance(v, float) for k, v in a.items() if k != "skipped_queries")


def test_empty_query_set_and_no_usable_query_give_zeros():
    gallery = gallery_with_scores([0.9, 0.8])
    empty = retrieval_metrics(np.zeros((0, 2)), [], gallery, [1, 2])
    assert empty == {"rank1": 0.0, "rank5": 0.0, "rank10": 0.0, "rank20": 0.0, "mAP": 0.0, "mAP_trapezoid": 0.0,
                     "mINP": 0.0, "skipped_queries": 0}
    none = retrieval_metrics(np.repeat(QUERY, 2, axis=0), [5, 6], gallery, [1, 2])
    assert none["skipped_queries"] == 2 and none["mAP"] == 0.0


@pytest.mark.parametrize(
    "qf, ql, gf, gl",
    [
        (np.ones((2, 3)), [0, 1], np.ones((4, 5)), [0, 1, 2, 3]),  # feature dims differ
        (np.ones((2, 3)), [0], np.ones((4, 3)), [0, 1, 2, 3]),  # query labels short
        (np.ones((2, 3)), [0, 1], np.ones((4, 3)), [0, 1, 2]),  # gallery labels short
        (np.ones(3), [0], np.ones((4, 3)), [0, 1, 2, 3]),  # 1-D features
        (np.full((1, 3), np.nan), [0], np.ones((4, 3)), [0, 1, 2, 3]),  # diverged model
    ],
)
def test_mismatched_shapes_raise_value_error(qf, ql, gf, gl):
    with pytest.raises(ValueError):
        retrieval_metrics(qf, ql, gf, gl)


# ---------------------------------------------------------------- retrieval, against brute force


def brute_force(qf: np.ndarray, ql, gf: np.ndarray, gl, ranks=(1, 5, 10, 20)) -> dict:
    """Pure-python reference: rank by (-similarity, gallery index), then AP, CMC and INP per query."""

    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    gallery = [unit(list(map(float, g))) for g in gf]
    aps, trapezoids, inps, first_ranks, skipped = [], [], [], [], 0
    for q, label in zip(qf, ql):
        q = unit(list(map(float, q)))
        sims = [sum(a * b for a, b in zip(q, g)) for g in gallery]
        order = sorted(range(len(gallery)), key=lambda i: (-sims[i], i))
        hit_ranks = [r + 1 for r, i in enumerate(order) if gl[i] == label]
        if not hit_ranks:
            skipped += 1
            continue
        aps.append(sum((n + 1) / r for n, r in enumerate(hit_ranks)) / len(hit_ranks))
        trapezoids.append(sum(((n / (r - 1) if r > 1 else 1.0) + (n + 1) / r) / 2
                              for n, r in enumerate(hit_ranks)) / len(hit_ranks))
        inps.append(len(hit_ranks) / hit_ranks[-1])
        first_ranks.append(hit_ranks[0])
    used = max(len(aps), 1)
    out = {f"rank{k}": sum(r <= k for r in first_ranks) / used for k in ranks}
    return out | {"mAP": sum(aps) / used, "mAP_trapezoid": sum(trapezoids) / used, "mINP": sum(inps) / used,
                  "skipped_queries": skipped}


def random_case(seed: int, quantised: bool):
    """Queries/gallery over many classes, some query labels absent from the gallery.

    Quantised features have 4 entries of +-1 in 8 dims: normalised entries are +-0.5, so every
    similarity is an exact multiple of 1/4 and ties are exact in any arithmetic order.
    """
    rng = np.random.default_rng(seed)
    nq, ng, dim, classes = 60, 150, 8, 40
    if quantised:
        feats = np.zeros((nq + ng, dim))
        for row in feats:
            row[rng.choice(dim, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
    else:
        feats = rng.normal(size=(nq + ng, dim))
    ql = rng.integers(0, classes + 10, nq)  # labels >= classes never occur in the gallery
    gl = rng.integers(0, classes, ng)
    return feats[:nq], ql, feats[nq:], gl


def assert_matches_reference(case, device: str):
    qf, ql, gf, gl = case
    expected = brute_force(qf, ql.tolist(), gf, gl.tolist())
    got = retrieval_metrics(torch.from_numpy(qf).to(device), torch.from_numpy(ql), torch.from_numpy(gf).to(device), gl)
    assert got["skipped_queries"] == expected["skipped_queries"] > 0
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("quantised", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_random_data(seed, quantised, monkeypatch):
    monkeypatch.setattr("core.metrics._CHUNK_ELEMENTS", 150 * 7)  # several query chunks
    assert_matches_reference(random_case(seed, quantised), "cpu")


def test_map_matches_sklearn_average_precision_without_ties():
    qf, ql, gf, gl = random_case(5, quantised=False)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    aps = [average_precision_score(gl == label, gn @ q) for q, label in zip(qf, ql) if (gl == label).any()]
    assert retrieval_metrics(qf, ql, gf, gl)["mAP"] == pytest.approx(np.mean(aps), abs=1e-9)


def test_ranked_gallery_matches_brute_force_order():
    qf, _, gf, _ = random_case(3, quantised=True)
    idx, sims = ranked_gallery(qf, gf, k=10)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    for q, row, row_sims in zip(qf / np.linalg.norm(qf, axis=1, keepdims=True), idx.tolist(), sims.tolist()):
        s = gn @ q
        assert row == sorted(range(len(gf)), key=lambda i: (-s[i], i))[:10]
        assert row_sims == pytest.approx(s[row].tolist())


@pytest.mark.parametrize("quantised", [True, False])
def test_scores_path_equals_the_feature_path(quantised, monkeypatch):
    monkeypatch.setattr("core.metrics._CHUNK_ELEMENTS", 150 * 7)  # several query chunks
    qf, ql, gf, gl = random_case(6, quantised)
    qn, gn = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (qf, gf))
    assert retrieval_metrics_from_scores(qn @ gn.T, ql, gl) == retrieval_metrics(qf, ql, gf, gl)


def test_scores_path_ranks_ties_by_gallery_index_and_checks_shapes():
    m = retrieval_metrics_from_scores(-np.array([[0.5, 0.5, 0.5, 0.5]]), [4], [1, 2, 4, 3], ranks=(1, 3))
    assert (m["rank1"], m["rank3"], m["mAP"]) == (0.0, 1.0, pytest.approx(1 / 3))
    with pytest.raises(ValueError, match="gallery_labels"):
        retrieval_metrics_from_scores(np.zeros((2, 3)), [0, 1], [0, 1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("quantised", [True, False])
def test_matches_brute_force_on_cuda(quantised):
    assert_matches_reference(random_case(4, quantised), "cuda")
    idx, _ = ranked_gallery(torch.ones(2, 3, device="cuda"), torch.ones(5, 3, device="cuda"), k=5)
    assert idx.device.type == "cuda" and idx.tolist() == [[0, 1, 2, 3, 4]] * 2


# ---------------------------------------------------------------- verification


def test_perfectly_separable_pairs_give_eer_0_and_tar_1():
    m = verification_metrics(QUERY, [0], gallery_with_scores([0.9, 0.8, 0.3, 0.1]), [0, 0, 1, 2])
    assert m["eer"] == 0.0
    assert m["auc"] == 1.0
    assert m["tar@far=1e-2"] == 1.0 and m["tar@far=1e-3"] == 1.0
    assert isinstance(m["fpr"], np.ndarray) and isinstance(m["thresholds"], np.ndarray)


def test_interleaved_scores_give_eer_one_third():
    # genuine 0.9, 0.6, 0.3; impostor 0.8, 0.5, 0.1 -> ROC passes (1/3, 2/3) where FPR = 1 - TPR
    m = verification_metrics(QUERY, [0], gallery_with_scores([0.9, 0.8, 0.6, 0.5, 0.3, 0.1]), [0, 1, 0, 2, 0, 3])
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["auc"] == pytest.approx(6 / 9)  # 6 of 9 genuine-impostor pairs ordered correctly
    assert m["tar@far=1e-2"] == pytest.approx(1 / 3)


def test_eer_interpolated_on_a_flat_roc_segment():
    # genuine 0.9, 0.6; impostor 0.8, 0.7, 0.1: FNR = 1/2 while FPR runs 0 -> 2/3, so EER = 1/2
    m = verification_metrics(QUERY, [0], gallery_with_scores([0.9, 0.8, 0.7, 0.6, 0.1]), [0, 1, 2, 0, 3])
    assert m["eer"] == pytest.approx(0.5)


def test_tie_between_genuine_and_impostor_is_interpolated():
    # genuine 0.9, 0.5; impostor 0.5 (tied), 0.1: ROC (0, 1/2) -> (1/2, 1) is diagonal
    m = verification_metrics(QUERY, [0], gallery_with_scores([0.9, 0.5, 0.5, 0.1]), [0, 0, 1, 2])
    assert m["eer"] == pytest.approx(0.25)
    assert m["tar@far=1e-2"] == pytest.approx(0.5 + 0.01)
    assert m["tar@far=1e-3"] == pytest.approx(0.5 + 0.001)


def test_tar_at_far_taken_at_the_top_of_a_vertical_roc_step():
    # impostors: one at 0.95, 99 at 0.1; genuine 0.9, 0.5. Thresholds in (0.1, 0.95) accept both
    # genuine pairs at FAR exactly 1/100, so TAR@FAR=1e-2 is 1; at FAR 1e-3 nothing is accepted.
    scores = [0.95, 0.9, 0.5] + [0.1] * 99
    m = verification_metrics(QUERY, [0], gallery_with_scores(scores), [1, 0, 0] + list(range(2, 101)))
    assert m["tar@far=1e-2"] == 1.0
    assert m["tar@far=1e-3"] == 0.0


def test_verification_without_impostor_pairs_is_nan():
    m = verification_metrics(QUERY, [0], gallery_with_scores([0.9, 0.5]), [0, 0])
    assert math.isnan(m["eer"]) and math.isnan(m["auc"]) and len(m["fpr"]) == 0


# ---------------------------------------------------------------- feature statistics


def unit_at(degrees: list[float]) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_feature_statistics_on_two_identities():
    # A at 0 and 60 degrees, B at 180 and 240: intra distance 1 - cos60 = 0.5 for both identities;
    # inter pairs at 180, 240, 120, 180 degrees: distances 2, 1.5, 1.5, 2 -> 1.75.
    feats = unit_at([0, 60, 180, 240]) * np.array([[3.0], [1.0], [0.2], [5.0]])
    s = feature_statistics(feats, ["a", "a", "b", "b"])
    assert s["intra"] == pytest.approx(0.5)
    assert s["inter"] == pytest.approx(1.75)
    assert s["ratio"] == pytest.approx(0.5 / 1.75)
    assert s["silhouette"] == pytest.approx(1 - 0.5 / 1.75)  # each point: a = 0.5, b = 1.75


def test_feature_statistics_subsamples_deterministically():
    rng = np.random.default_rng(0)
    feats, labels = rng.normal(size=(300, 4)), rng.integers(0, 5, 300)
    a = feature_statistics(feats, labels, max_points=100, seed=1)
    assert a == feature_statistics(feats, labels, max_points=100, seed=1)
    assert a["silhouette"] != feature_statistics(feats, labels, max_points=100, seed=2)["silhouette"]
    assert a["intra"] == feature_statistics(feats, labels)["intra"]  # intra/inter use every point


@pytest.mark.parametrize("labels", [[0, 0, 0], [0, 1, 2]])
def test_silhouette_undefined_is_nan(labels):
    s = feature_statistics(unit_at([0, 10, 20]), labels)
    assert math.isnan(s["silhouette"])


# ---------------------------------------------------------------- aggregation


def test_mean_std_uses_population_std_and_skips_arrays():
    runs = [{"rank1": 0.5, "mAP": 0.2, "skipped_queries": 0, "fpr": np.zeros(3)}, {"rank1": 1.0, "mAP": 0.4, "skipped_queries": 2, "fpr": np.zeros(3)}]
    assert mean_std(runs) == pytest.approx(
        {"rank1": 0.75, "rank1_std": 0.25, "mAP": 0.3, "mAP_std": 0.1, "skipped_queries": 1.0, "skipped_queries_std": 1.0}
    )


def test_mean_pairwise_distance_by_hand():
    # unit rows e1, e2, -e1 (the first given at length 3): distances sqrt 2, 2, sqrt 2
    rows = [[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    assert mean_pairwise_distance(rows) == pytest.approx((2 * math.sqrt(2) + 2) / 3)
    assert mean_pairwise_distance([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]]) == pytest.approx(0.0, abs=1e-7)
    assert math.isnan(mean_pairwise_distance([[1.0, 0.0]]))


def test_mean_pairwise_distance_subsample_is_seeded_and_close():
    rows = np.random.default_rng(0).normal(size=(300, 8))
    full = mean_pairwise_distance(rows)
    part = mean_pairwise_distance(rows, max_points=200, seed=1)
    assert part == mean_pairwise_distance(rows, max_points=200, seed=1) and part == pytest.approx(full, rel=0.03)
