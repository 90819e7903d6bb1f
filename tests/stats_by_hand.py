"""Statistics computed by hand for the tests of core.stats and jobs.studies: explicit formulas,
tabled t quantiles and closed-form t CDFs, never the scipy functions under test."""

from __future__ import annotations

import math

# two-sided 95% t quantiles: df 1 and 2 in closed form, 3 and 4 from tables
T975 = {1: math.tan(math.pi * 0.475), 2: 0.95 / math.sqrt(2 * 0.975 * 0.025), 3: 3.182446305284263,
        4: 2.7764451051977987}


def two_sided_p(t: float, df: int) -> float:
    """Closed forms of the t distribution's CDF for 1, 2 and 4 degrees of freedom."""
    t = abs(t)
    if df == 1:
        return 1 - 2 / math.pi * math.atan(t)
    if df == 2:
        return 1 - t / math.sqrt(2 + t * t)
    if df == 4:
        u = 1 + t * t / 4
        return 2 * (1 - (0.5 + 3 / 8 * t / math.sqrt(u) * (1 - t * t / (12 * u))))
    raise ValueError(f"no closed form for df={df}")


def mean_std_ci(values: list[float]) -> tuple[float, float, list[float]]:
    """Mean, sample standard deviation and the 95% t-interval of the mean."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T975[n - 1] * std / math.sqrt(n)
    return mean, std, [mean - half, mean + half]


def paired_by_hand(a: list[float], b: list[float]) -> dict:
    d = [x - y for x, y in zip(a, b)]
    mean, std, ci = mean_std_ci(d)
    return {"diff": mean, "ci95": ci, "p": two_sided_p(mean / (std / math.sqrt(len(d))), len(d) - 1),
            "n_pairs": len(d)}
