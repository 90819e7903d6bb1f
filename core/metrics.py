"""Retrieval (CMC, mAP, mINP), verification (ROC, EER, TAR@FAR) and embedding statistics.

Every score is the cosine similarity of L2-normalised features, computed on the device of
the query features (numpy inputs run on the CPU). float64 inputs are kept in float64,
anything else is computed in float32.

Ranking rule, shared by every function here: the gallery is sorted by similarity descending
with a stable sort, so gallery items with equal similarity keep ascending gallery-index
order. No same-camera filtering is applied (the hand protocols have no cameras).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import auc, roc_curve, silhouette_score

ArrayLike = torch.Tensor | np.ndarray | Sequence

_CHUNK_ELEMENTS = 1 << 22
"""Similarity-matrix entries handled per chunk of queries (~4M: about 100 MB with sort indices)."""

FAR_TARGETS = {"tar@far=1e-2": 1e-2, "tar@far=1e-3": 1e-3}
RANKS = (1, 5, 10, 20)

# The vocabulary every page, table and CLI shows metrics with (key -> label).
RETRIEVAL = {"rank1": "rank-1", "rank5": "rank-5", "rank10": "rank-10", "rank20": "rank-20", "mAP": "mAP",
             "mAP_trapezoid": "mAP (papers' convention)", "mINP": "mINP"}
STATISTICS = {"intra": "intra-identity distance", "inter": "inter-identity distance", "ratio": "intra / inter",
              "silhouette": "silhouette", "spread_pre_bn": "pre-BN spread (mean pairwise distance)"}
VALIDATION = {"rank1": "val rank-1", "mAP": "val mAP", "mAP_trapezoid": "val mAP (papers' convention)",
              "id_accuracy": "val identity accuracy"}
VERIFICATION = {"eer": "EER", "auc": "ROC AUC", "tar@far=1e-2": "TAR at FAR 1e-2", "tar@far=1e-3": "TAR at FAR 1e-3"}
CONVENTIONS = (
    "mAP is the standard non-interpolated AP (torchreid, fast-reid, pytorch-metric-learning). The published "
    "hand-ID tables use the trapezoid rule (each positive: the mean of the precision just before its rank and at "
    "it); with one gallery image per identity that is (rank-1 + mAP) / 2, and mAP equals mINP."
)


def _features(x: ArrayLike, name: str, device: torch.device | None = None) -> torch.Tensor:
    """`x` as a finite 2-D float tensor (float64 kept, else float32) on `device` (default: its own)."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, dim], got shape {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contain NaN or inf")
    return t


def _codes(labels: ArrayLike) -> np.ndarray:
    """Labels as a flat numpy array (tensors are copied to the CPU)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu()
    return np.asarray(labels).reshape(-1)


def _labels(ql: ArrayLike, gl: ArrayLike, nq: int, ng: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and gallery labels as shared int64 codes on `device` (any hashable labels work)."""
    q, g = _codes(ql), _codes(gl)
    if len(q) != nq:
        raise ValueError(f"query_labels has {len(q)} entries for {nq} query features")
    if len(g) != ng:
        raise ValueError(f"gallery_labels has {len(g)} entries for {ng} gallery features")
    _, codes = np.unique(np.concatenate([q, g]), return_inverse=True)
    codes = torch.as_tensor(codes.reshape(-1), dtype=torch.int64, device=device)
    return codes[:nq], codes[nq:]


def _pair(qf: ArrayLike, gf: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised query and gallery features on the query device, same dtype and dim."""
    q = _features(qf, "query_features")
    g = _features(gf, "gallery_features", q.device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query features have dim {q.shape[1]} but gallery features have dim {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    return F.normalize(q.to(dtype), dim=1), F.normalize(g.to(dtype), dim=1)


def _ranked_chunks(q: torch.Tensor, g: torch.Tensor) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(first query row, sorted similarities, gallery order) per chunk of queries."""
    step = max(1, _CHUNK_ELEMENTS // max(g.shape[0], 1))
    for start in range(0, q.shape[0], step):
        yield (start, *_ranked(q[start : start + step] @ g.T))


def _ranked(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores sorted descending per row and the gallery order, by the module's tie rule (stable)."""
    return torch.sort(scores, dim=1, descending=True, stable=True)


def ranked_gallery(
    query_features: ArrayLike, gallery_features: ArrayLike, k: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k gallery indices (LongTensor [Q, k]) and similarities per query, by the module's tie rule.

    k is clipped to the gallery size.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    q, g = _pair(query_features, gallery_features)
    k = min(int(k), g.shape[0])
    idx = torch.empty((q.shape[0], k), dtype=torch.int64, device=q.device)
    sims = torch.empty((q.shape[0], k), dtype=q.dtype, device=q.device)
    for start, sorted_sims, order in _ranked_chunks(q, g):
        idx[start : start + order.shape[0]] = order[:, :k]
        sims[start : start + order.shape[0]] = sorted_sims[:, :k]
    return idx, sims


def retrieval_metrics(
    query_features: ArrayLike,
    query_labels: ArrayLike,
    gallery_features: ArrayLike,
    gallery_labels: ArrayLike,
    ranks: Sequence[int] = (1, 5, 10, 20),
) -> dict:
    """CMC rank-k, mAP and mINP of queries against a gallery, as fractions in [0, 1].

    Per query the gallery is ranked by cosine similarity descending; ties keep ascending
    gallery-index order (stable sort). AP is Market-1501 style: the mean over the query's
    positives of the precision at each positive's rank. `mAP_trapezoid` is the AP of the
    published hand-ID code: per positive, the mean of the precision just before its rank (1 at
    rank 1) and the precision at its rank. CMC rank-k is 1 when the first
    positive is within the top k. INP (Ye et al., AGW) is num_positives / rank of the last
    positive. Queries whose label has no gallery match are left out of every mean and
    counted in `skipped_queries`; with no usable query every metric is 0.
    """
    q, g = _pair(query_features, gallery_features)
    orders = ((start, order) for start, _, order in _ranked_chunks(q, g))
    return _score_rankings(orders, query_labels, gallery_labels, q.shape[0], g.shape[0], q.device, ranks)


def retrieval_metrics_from_scores(
    scores: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike, ranks: Sequence[int] = (1, 5, 10, 20)
) -> dict:
    """`retrieval_metrics` of a given [Q, G] score matrix (higher = more similar; pass -distance).

    Same ranking, tie rule, metrics and skipping as `retrieval_metrics`, for rankings that are
    not a cosine similarity (e.g. k-reciprocal re-ranking, core.rerank).
    """
    s = _features(scores, "scores")
    step = max(1, _CHUNK_ELEMENTS // max(s.shape[1], 1))
    orders = ((start, _ranked(s[start : start + step])[1]) for start in range(0, s.shape[0], step))
    return _score_rankings(orders, query_labels, gallery_labels, s.shape[0], s.shape[1], s.device, ranks)


def _score_rankings(
    orders: Iterable[tuple[int, torch.Tensor]],
    query_labels: ArrayLike,
    gallery_labels: ArrayLike,
    nq: int,
    ng: int,
    device: torch.device,
    ranks: Sequence[int],
) -> dict:
    """CMC, mAP and mINP from (first query row, gallery order) chunks covering every query."""
    ranks = [int(r) for r in ranks]
    if any(r < 1 for r in ranks):
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    ql, gl = _labels(query_labels, gallery_labels, nq, ng, device)

    ap_sum = trapezoid_sum = inp_sum = 0.0
    cmc_hits = [0] * len(ranks)
    used = 0
    for start, order in orders:
        matches = gl[order] == ql[start : start + order.shape[0], None]
        counts = matches.sum(dim=1)
        valid = counts > 0
        if not bool(valid.any()):
            continue
        rows, cols = matches.nonzero(as_tuple=True)  # row-major: hits in rank order per query
        first_hit = torch.cumsum(counts, 0) - counts
        hit_number = torch.arange(rows.shape[0], device=device) - first_hit[rows] + 1
        precision = hit_number.double() / (cols + 1).double()
        before = torch.where(cols == 0, 1.0, (hit_number - 1).double() / cols.clamp(min=1).double())
        sums = torch.zeros((2, counts.shape[0]), dtype=torch.float64, device=device)
        sums.index_add_(1, rows, torch.stack([precision, (before + precision) / 2]))
        ap, trapezoid = sums[:, valid] / counts[valid].double()
        first_rank = cols[first_hit[valid]] + 1
        last_rank = cols[(first_hit + counts - 1)[valid]] + 1
        inp = counts[valid].double() / last_rank.double()

        ap_sum += float(ap.sum())
        trapezoid_sum += float(trapezoid.sum())
        inp_sum += float(inp.sum())
        for i, r in enumerate(ranks):
            cmc_hits[i] += int((first_rank <= r).sum())
        used += int(valid.sum())

    denom = max(used, 1)
    out = {f"rank{r}": cmc_hits[i] / denom for i, r in enumerate(ranks)}
    out["mAP"] = ap_sum / denom
    out["mAP_trapezoid"] = trapezoid_sum / denom
    out["mINP"] = inp_sum / denom
    out["skipped_queries"] = nq - used
    return out


def _interp_at(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """y on the piecewise-linear curve (x non-decreasing) at x = target, from the last point with x <= target."""
    i = int(np.searchsorted(x, target, side="right")) - 1
    if i < 0:
        return float("nan")
    if i == len(x) - 1:
        return float(y[i])
    return float(y[i] + (target - x[i]) * (y[i + 1] - y[i]) / (x[i + 1] - x[i]))


def _eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: FPR where FPR = 1 - TPR, interpolated linearly along the ROC."""
    d = fpr - (1.0 - tpr)  # non-decreasing along the curve, from -1 to +1
    i = int(np.argmax(d >= 0))
    if i == 0 or d[i] == 0:
        return float(fpr[i])
    s = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + s * (fpr[i] - fpr[i - 1]))


def verification_metrics(
    query_features: ArrayLike,
    query_labels: ArrayLike,
    gallery_features: ArrayLike,
    gallery_labels: ArrayLike,
) -> dict:
    """ROC over all query-gallery pairs (cosine score; genuine = same label).

    Returns `fpr`, `tpr`, `thresholds` (numpy, from sklearn's roc_curve), `auc`, `eer` and
    `tar@far=1e-2`, `tar@far=1e-3`. EER and TAR@FAR are read off the piecewise-linear ROC:
    TAR@FAR=t starts from the last ROC point whose FAR <= t (the lowest such threshold, so
    the highest TAR a threshold reaches without exceeding t) and moves linearly toward the
    next point; this differs from that point's TAR only where genuine and impostor scores
    tie (a diagonal ROC step). With no genuine or no impostor
    pair the curve is undefined: arrays are empty and the floats are nan.
    """
    q, g = _pair(query_features, gallery_features)
    ql, gl = _labels(query_labels, gallery_labels, q.shape[0], g.shape[0], q.device)
    scores = (q @ g.T).reshape(-1).cpu().numpy()
    genuine = (ql[:, None] == gl[None, :]).reshape(-1).cpu().numpy()
    n_genuine = int(genuine.sum())
    if n_genuine == 0 or n_genuine == len(genuine):
        empty = np.zeros(0)
        undefined = dict.fromkeys(("auc", "eer", *FAR_TARGETS), float("nan"))
        return {"fpr": empty, "tpr": empty, "thresholds": empty} | undefined
    fpr, tpr, thresholds = roc_curve(genuine, scores)
    out = {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(auc(fpr, tpr)), "eer": _eer(fpr, tpr)}
    for key, target in FAR_TARGETS.items():
        out[key] = _interp_at(fpr, tpr, target)
    return out


def feature_statistics(features: ArrayLike, labels: ArrayLike, max_points: int = 5000, seed: int = 0) -> dict:
    """Compactness and separability of embeddings per identity (cosine distance 1 - cos).

    `intra`: mean distance over pairs of different images of one identity; `inter`: over
    pairs of different identities (both exact, over all points); `ratio` = intra / inter,
    lower is better; `silhouette`: sklearn's cosine silhouette on at most `max_points`
    points (a seeded random subset). Undefined values are nan.
    """
    f = F.normalize(_features(features, "features").double(), dim=1)
    n = f.shape[0]
    labels = _codes(labels)
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} features")
    codes = torch.as_tensor(np.unique(labels, return_inverse=True)[1].reshape(-1), dtype=torch.int64, device=f.device)
    class_sums = torch.zeros((int(codes.max()) + 1 if n else 0, f.shape[1]), dtype=f.dtype, device=f.device)
    class_sums.index_add_(0, codes, f)
    sizes = torch.bincount(codes, minlength=class_sums.shape[0]).double()
    # Sum of cos over ordered pairs i != j within a set = |sum of its vectors|^2 - its size.
    intra_sum = float((class_sums.pow(2).sum(1) - sizes).sum())
    intra_pairs = float((sizes * (sizes - 1)).sum())
    all_sum = float(f.sum(0).pow(2).sum()) - n
    inter_sum, inter_pairs = all_sum - intra_sum, n * (n - 1) - intra_pairs
    intra = 1.0 - intra_sum / intra_pairs if intra_pairs else float("nan")
    inter = 1.0 - inter_sum / inter_pairs if inter_pairs else float("nan")
    ratio = intra / inter if inter_pairs and inter > 0 else float("nan")
    return {"intra": intra, "inter": inter, "ratio": ratio, "silhouette": _silhouette(f, codes, max_points, seed)}


def _silhouette(f: torch.Tensor, codes: torch.Tensor, max_points: int, seed: int) -> float:
    """Cosine silhouette on a seeded subset of at most max_points points; nan where undefined."""
    x, y = f.cpu().numpy(), codes.cpu().numpy()
    if len(y) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), size=max_points, replace=False))
        x, y = x[keep], y[keep]
    if not 2 <= len(np.unique(y)) <= len(y) - 1:
        return float("nan")
    return float(silhouette_score(x, y, metric="cosine"))


def mean_pairwise_distance(features: ArrayLike, max_points: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance between the L2-normalised rows over pairs of distinct rows (on a
    seeded subset of at most `max_points` rows); near 0 when the embedding has collapsed to one
    direction, about sqrt(2) for directions spread evenly. nan for fewer than 2 rows."""
    f = F.normalize(_features(features, "features").double(), dim=1)
    if len(f) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(f), size=max_points, replace=False))
        f = f[torch.as_tensor(keep, device=f.device)]
    n = len(f)
    if n < 2:
        return float("nan")
    return float(torch.cdist(f, f).sum() / (n * (n - 1)))


def mean_std(metric_dicts: Sequence[Mapping]) -> dict:
    """Mean and population std (ddof=0) of each numeric key over runs: {key, key + "_std"}.

    Keys come from the first dict, in its order; non-numeric values (arrays) are left out.
    """
    if not metric_dicts:
        raise ValueError("mean_std needs at least one metrics dict")
    out: dict = {}
    for key, value in metric_dicts[0].items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            continue
        values = np.array([float(d[key]) for d in metric_dicts])
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std())
    return out
