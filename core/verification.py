"""Verification figures of an evaluation: EER, TAR@FAR, ROC and DET curves, decision thresholds.

Built on `core.metrics.verification_metrics` (cosine scores over every query-gallery pair of
a run; genuine = same label). `verification_summary` gives the JSON-able record of one
evaluation: mean and std over the protocol's runs of EER, AUC and TAR@FAR, and for run 0
(the run embeddings.npz holds) the curves and the thresholds that deployment uses
(`core.identify`: a probe is accepted when its score >= the threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.metrics import FAR_TARGETS, ArrayLike, mean_std, verification_metrics

MAX_POINTS = 200
SUMMARY_KEYS = ("eer", "auc", *FAR_TARGETS)


def finite_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """sklearn's ROC thresholds with its leading +inf ("accept nothing") replaced by the next
    float above the highest score, which accepts nothing too but fits in JSON."""
    out = np.asarray(thresholds, dtype=np.float64).copy()
    if len(out) > 1 and not np.isfinite(out[0]):
        out[0] = np.nextafter(out[1], np.inf)
    return out


def operating_point(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, far: float) -> dict:
    """The lowest ROC threshold whose FAR is <= `far`, with the FAR and TAR it gives.

    Accepting scores >= this threshold keeps the false accept rate on these pairs within `far`
    while accepting as many genuine pairs as any such threshold. Its TAR is the ROC point's own,
    not the interpolated TAR@FAR (they differ only where genuine and impostor scores tie).
    """
    i = int(np.searchsorted(fpr, far, side="right")) - 1  # fpr[0] == 0, so i >= 0
    return {"far_target": float(far), "threshold": float(finite_thresholds(thresholds)[i]),
            "far": float(fpr[i]), "tar": float(tpr[i])}


def downsample(fpr: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `max_points` ROC points, spread evenly in log FAR (for log/probit axes).

    Each kept point is the last one at or below a log-spaced FAR, so it is an exact operating
    point, the top of any vertical step; the first and the last point are always kept.
    """
    n = len(fpr)
    if n <= max_points:
        return np.arange(n)
    positive = fpr[fpr > 0]
    grid = np.geomspace(positive[0], 1.0, max(max_points - 2, 1))
    picked = np.searchsorted(fpr, grid, side="right") - 1
    return np.unique(np.concatenate([[0], picked, [n - 1]]))


def curves(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, max_points: int = MAX_POINTS) -> dict:
    """ROC (TAR vs FAR, with each point's threshold) and DET (FNMR vs FMR) as JSON lists."""
    keep = downsample(fpr, max_points)
    far, tar = fpr[keep].astype(float), tpr[keep].astype(float)
    return {
        "roc": {"far": far.tolist(), "tar": tar.tolist(), "threshold": finite_thresholds(thresholds)[keep].tolist()},
        "det": {"fmr": far.tolist(), "fnmr": (1.0 - tar).tolist()},
    }


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


def verification_summary(
    features: ArrayLike, labels: np.ndarray, runs: Sequence[tuple[np.ndarray, np.ndarray]],
    max_points: int = MAX_POINTS,
) -> dict:
    """The verification record of one evaluation (test features sliced per run, as in training).

    `{"eer", "eer_std", "auc", "auc_std", "tar@far=1e-2", "tar@far=1e-2_std", "tar@far=1e-3",
    "tar@far=1e-3_std"` (means and population std over runs; None where undefined), and for
    run 0: `"thresholds": [{"far_target", "threshold", "far", "tar"}, ...]` (one per FAR target),
    `"roc": {"far", "tar", "threshold"}`, `"det": {"fmr", "fnmr"}` (at most `max_points`
    points), `"pairs": {"genuine", "impostor"}}`. Run 0 without genuine or impostor pairs gives
    empty thresholds and curves.
    """
    labels = np.asarray(labels)
    per_run = [verification_metrics(features[q], labels[q], features[g], labels[g]) for q, g in runs]
    stats = mean_std([{k: m[k] for k in SUMMARY_KEYS} for m in per_run])
    out: dict = {k: _none_if_nan(v) for k, v in stats.items()}
    first, (query, gallery) = per_run[0], runs[0]
    fpr, tpr, thresholds = first["fpr"], first["tpr"], first["thresholds"]
    defined = len(fpr) > 0
    out["thresholds"] = [operating_point(fpr, tpr, thresholds, far) for far in FAR_TARGETS.values()] if defined else []
    out.update(curves(fpr, tpr, thresholds, max_points) if defined else curves(*(np.zeros(0),) * 3))
    genuine = int((labels[query][:, None] == labels[gallery][None, :]).sum())
    out["pairs"] = {"genuine": genuine, "impostor": len(query) * len(gallery) - genuine}
    return out


def threshold_at(thresholds: Sequence[dict], far: float) -> float | None:
    """The threshold recorded for FAR target `far` in a summary's "thresholds" list, else None."""
    for point in thresholds:
        if math.isclose(point["far_target"], far, rel_tol=1e-9):
            return float(point["threshold"])
    return None
