"""Statistics of repeated training runs: summaries over seeds, paired comparisons, Holm correction.

One training seed per variant is not evidence, so a study repeats each arm over seeds and
reports the t-interval of the mean and a paired t-test against a reference arm (runs paired by
seed share their evaluation draws). Every output is JSON-safe: plain floats, never NaN or inf;
a quantity that is undefined (a spread from one value) is None.

Degenerate cases, decided here once:
- n = 0: mean, std and ci95 are None; n = 1: mean is the value, std and ci95 are None.
- values all equal (n >= 2): std 0, ci95 [mean, mean] (the limit of the t-interval).
- paired differences all equal: ci95 [d, d]; p = 1.0 when d = 0 (identical arms), else 0.0
  (the limit of the t-test as the spread goes to 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


def finite(value: Any) -> float | None:
    """A plain float, or None for None, NaN and inf (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _interval(values: np.ndarray) -> list[float] | None:
    """The 95% t-interval of the mean of values (None below two values)."""
    if len(values) < 2:
        return None
    mean = float(values.mean())
    if np.ptp(values) == 0:
        return [mean, mean]
    lo, hi = scipy.stats.t.interval(CONFIDENCE, len(values) - 1, loc=mean, scale=scipy.stats.sem(values))
    return [float(lo), float(hi)]


def summary(values: Sequence[float]) -> dict[str, Any]:
    """{"n", "mean", "std" (ddof=1), "ci95": [lo, hi] (t-interval of the mean), "values"} of the values."""
    x = np.asarray(values, dtype=float)
    return {"n": len(x), "mean": finite(x.mean()) if len(x) else None,
            "std": finite(x.std(ddof=1)) if len(x) > 1 else None,
            "ci95": _interval(x), "values": [float(v) for v in x]}


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """a against b, paired by position: {"diff" (mean of a - b), "ci95", "p" (paired t-test), "n_pairs"}."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {len(x)} and {len(y)}")
    d = x - y
    out = {"diff": finite(d.mean()) if len(d) else None, "ci95": _interval(d), "p": None, "n_pairs": len(d)}
    if len(d) >= 2:
        if np.ptp(d) == 0:
            out["p"] = 1.0 if d[0] == 0 else 0.0
        else:
            out["p"] = finite(scipy.stats.ttest_rel(x, y).pvalue)
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the input order; None stays None and is not counted."""
    known = [i for i, p in enumerate(pvalues) if p is not None]
    p = np.array([pvalues[i] for i in known], dtype=float)
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    out: list[float | None] = [None] * len(pvalues)
    for i, value in zip(known, adjusted):
        out[i] = float(value)
    return out


def spans_zero(ci95: Sequence[float] | None) -> bool:
    """Whether an interval contains 0 (an unknown interval counts as spanning it)."""
    return ci95 is None or ci95[0] <= 0 <= ci95[1]


def format_p(p: float | None) -> str:
    """A p-value for tables: `0.004`, `<0.001`, `–` when undefined."""
    return "–" if p is None else "<0.001" if p < 0.001 else f"{p:.3f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _details(comparison: dict[str, Any]) -> str:
    lo, hi = comparison["ci95"]
    parts = [f"95% CI {lo:+.3f} to {hi:+.3f}", _p(comparison["p"])]
    if comparison.get("p_holm") is not None:
        parts.append(f"Holm {_p(comparison['p_holm'])}")
    return ", ".join(parts)


def sentence(arm: str, reference: str, metric: str, comparison: dict[str, Any], n_seeds: int | None = None) -> str:
    """The comparison in one plain sentence, e.g. "CE+triplet beats CE by +0.031 mAP (95% CI +0.012
    to +0.050, p = 0.004, Holm p = 0.008) over 5 training seeds"; "No detectable difference ..."
    when the interval spans 0. n_seeds defaults to the comparison's n_pairs."""
    n = comparison["n_pairs"] if n_seeds is None else n_seeds
    seeds = f"over {n} training seed{'s' if n != 1 else ''}"
    diff = comparison["diff"]
    if comparison["ci95"] is None or comparison["p"] is None:
        shown = "no paired runs" if diff is None else f"a difference of {diff:+.3f}"
        return f"Too few paired runs to compare {arm} with {reference} in {metric}: {shown} {seeds} (need 2 or more)"
    if spans_zero(comparison["ci95"]):
        return (f"No detectable difference between {arm} and {reference} in {metric} "
                f"({diff:+.3f}, {_details(comparison)}) {seeds}")
    by = f"beats {reference} by {diff:+.3f}" if diff > 0 else f"is below {reference} by {-diff:.3f}"
    text = f"{arm} {by} {metric} ({_details(comparison)}) {seeds}"
    holm_p = comparison.get("p_holm")
    return text + ("; not significant after Holm correction" if holm_p is not None and holm_p >= ALPHA else "")
