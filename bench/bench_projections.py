"""Seconds to project embeddings to 2-D (PCA, t-SNE, UMAP when installed) at dashboard scale.

5,000 L2-normalised 512-d points in ~250 identity clusters (about a large protocol's query
plus gallery), projected by `core.projections.project` (t-SNE on one thread, PCA with BLAS's);
target: t-SNE within 30 s on a 2-core machine, PCA well under a second. Each layout is also
scored: the fraction of points whose 2-D nearest neighbour shares their identity.
Run: `python -m bench.bench_projections [--quick] [--json]` from the repo root.
"""

from __future__ import annotations

import os
import time

import numpy as np

from bench.timing import component_main
from core.projections import methods, project


def make_data(n: int, dim: int, identities: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Identity centres plus noise, normalised like real retrieval features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim)).astype(np.float32)
    labels = rng.integers(0, identities, n)
    x = centres[labels] + 1.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def neighbour_agreement(xy: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of points whose nearest other point in 2-D has the same label."""
    sq = (xy * xy).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * xy @ xy.T
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


def run(quick: bool = False) -> dict:
    """Wall and CPU seconds per method (one timed call each); `quick` uses 1,000 points.

    On a shared machine the wall time grows with the load; the CPU time does not.
    """
    n, dim, identities = (1000, 512, 50) if quick else (5000, 512, 250)
    x, labels = make_data(n, dim, identities)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    result: dict = {"points": n, "dim": dim, "identities": identities, "cores": cores}
    for method in methods():
        start, cpu = time.perf_counter(), time.process_time()
        xy = project(x, method, seed=0)
        result[f"{method}_s"] = time.perf_counter() - start
        result[f"{method}_cpu_s"] = time.process_time() - cpu  # all threads: wall x cores when they are free
        result[f"{method}_neighbour_agreement"] = neighbour_agreement(xy, labels)
    result["tsne_within_30s"] = result["tsne_s"] <= 30.0
    return result


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "1,000 points instead of 5,000", argv)


if __name__ == "__main__":
    raise SystemExit(main())
