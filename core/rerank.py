"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), as the field's reference implementation computes it.

Over all probe and gallery images together (the method is transductive: queries are
neighbours too), on L2-normalised features:

1. original distance d = 2 - 2 cos (squared euclidean), each row divided by its maximum;
2. R(i, k1): the k1-reciprocal neighbours of i (j in i's k1+1 nearest and i in j's);
   expanded by R(j, round(k1/2)) of each member j whose set shares more than 2/3 of its
   members with R(i, k1) (the "1/2" expansion rule);
3. V[i]: weights exp(-d(i, j)) over the expanded set, summing to 1; local query expansion
   replaces V[i] by the mean of V over i's k2 nearest neighbours (k2 = 1: none);
4. Jaccard distance 1 - sum(min(V[q], V[g])) / sum(max(V[q], V[g]));
5. final = (1 - lambda) * jaccard + lambda * original.

Neighbours are ranked with a stable sort (ties by index); `round` is Python's (and numpy's)
round-half-to-even, as in the reference code (k1 = 5 -> 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix

from core.metrics import ArrayLike, mean_std, retrieval_metrics_from_scores

K1, K2, LAMBDA = 20, 6, 0.3


def _normalised(x: ArrayLike) -> np.ndarray:
    x = torch.as_tensor(x).detach().cpu().double().numpy()
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def original_distance(features: np.ndarray) -> np.ndarray:
    """[N, N] squared euclidean distance of L2-normalised rows (2 - 2 cos), each row divided by its max."""
    dist = np.clip(2.0 - 2.0 * features @ features.T, 0.0, None)
    return dist / np.maximum(dist.max(axis=1, keepdims=True), 1e-12)


def k_reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """R(i, k): those of i's k+1 nearest (itself included) that have i among their own k+1 nearest."""
    forward = rank[i, : k + 1]
    return forward[(rank[forward, : k + 1] == i).any(axis=1)]


def expanded_set(rank: np.ndarray, i: int, k1: int) -> np.ndarray:
    """R*(i): R(i, k1) plus R(j, round(k1/2)) of every member j sharing > 2/3 of it with R(i, k1)."""
    core = k_reciprocal(rank, i, k1)
    parts = [core]
    for j in core:
        candidate = k_reciprocal(rank, int(j), round(k1 / 2))
        if len(np.intersect1d(candidate, core)) > 2 / 3 * len(candidate):
            parts.append(candidate)
    return np.unique(np.concatenate(parts))


def encode(dist: np.ndarray, rank: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """[N, N] k-reciprocal feature V: Gaussian weights over R*(i), then local query expansion over k2."""
    v = np.zeros_like(dist)
    for i in range(len(dist)):
        members = expanded_set(rank, i, k1)
        weights = np.exp(-dist[i, members])
        v[i, members] = weights / weights.sum()
    neighbours = rank[:, :k2]
    if neighbours.shape[1] > 1:  # row i of a sparse averaging matrix holds 1/k2 at i's k2 nearest
        n, k = neighbours.shape
        average = csr_matrix((np.full(n * k, 1.0 / k), neighbours.reshape(-1), np.arange(0, n * k + 1, k)),
                             shape=(n, n))
        v = average @ v
    return v


def jaccard_distance(v_query: np.ndarray, v_gallery: np.ndarray) -> np.ndarray:
    """[Q, G] 1 - sum(min) / sum(max) of k-reciprocal features (rows summing to 1: sum(max) = 2 - sum(min))."""
    out = np.empty((len(v_query), len(v_gallery)))
    for q, row in enumerate(v_query):
        support = np.flatnonzero(row)
        overlap = np.minimum(v_gallery[:, support], row[support]).sum(axis=1)
        out[q] = 1.0 - overlap / (2.0 - overlap)
    return out


def rerank_distance(query_features: ArrayLike, gallery_features: ArrayLike, k1: int = K1, k2: int = K2,
                    lambda_: float = LAMBDA) -> np.ndarray:
    """[Q, G] re-ranked distance (lower = more similar) of queries against the gallery."""
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"re-ranking needs k1 >= 1, k2 >= 1 and lambda in [0, 1]; got {k1}, {k2}, {lambda_}")
    q, g = _normalised(query_features), _normalised(gallery_features)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query features have dim {q.shape[1]} but gallery features have dim {g.shape[1]}")
    nq = len(q)
    dist = original_distance(np.concatenate([q, g]))
    rank = np.argsort(dist, axis=1, kind="stable")[:, : max(k1 + 1, k2)]
    v = encode(dist, rank, k1, k2)
    jaccard = jaccard_distance(v[:nq], v[nq:])
    return (1.0 - lambda_) * jaccard + lambda_ * dist[:nq, nq:]


def rerank_metrics(query_features: ArrayLike, query_labels: ArrayLike, gallery_features: ArrayLike,
                   gallery_labels: ArrayLike, k1: int = K1, k2: int = K2, lambda_: float = LAMBDA,
                   ranks: Sequence[int] = (1, 5, 10, 20)) -> dict:
    """`core.metrics.retrieval_metrics` of the gallery ranked by the re-ranked distance."""
    dist = rerank_distance(query_features, gallery_features, k1, k2, lambda_)
    return retrieval_metrics_from_scores(-dist, query_labels, gallery_labels, ranks)


def rerank_summary(features: ArrayLike, labels: np.ndarray, runs: Sequence[tuple[np.ndarray, np.ndarray]],
                   k1: int = K1, k2: int = K2, lambda_: float = LAMBDA,
                   ranks: Sequence[int] = (1, 5, 10, 20)) -> dict:
    """Re-ranked retrieval metrics of one evaluation: mean and std over the protocol's runs (test
    features sliced per run), plus the parameters: `{"rank1", "rank1_std", ..., "mAP", "mAP_std",
    "mINP", "mINP_std", "skipped_queries", "k1", "k2", "lambda"}`."""
    labels = np.asarray(labels)
    per_run = [rerank_metrics(features[q], labels[q], features[g], labels[g], k1, k2, lambda_, ranks)
               for q, g in runs]
    metrics = {k: v for k, v in mean_std(per_run).items() if k != "skipped_queries_std"}
    return metrics | {"k1": k1, "k2": k2, "lambda": lambda_}
