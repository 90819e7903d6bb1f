"""Seconds for `retrieval_metrics` at the size of a large protocol, against a per-query numpy loop.

5,000 queries x 5,000 gallery, 512-d features, ~500 identities. The vectorised version is
timed (median of repeats) on the CPU and, where available, on CUDA. The loop baseline ranks
one query at a time with numpy; it runs on a subset of queries and is scaled to the full
query count. Run: `python -m bench.bench_metrics [--quick] [--json]` from the repo root.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from bench.timing import component_main
from core.metrics import retrieval_metrics


def make_data(n_query: int, n_gallery: int, dim: int, identities: int, seed: int = 0):
    """Identity centres plus noise, so rankings are neither trivial nor random (mAP well below 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim)).astype(np.float32)
    ql, gl = rng.integers(0, identities, n_query), rng.integers(0, identities, n_gallery)
    qf = centres[ql] + 3.0 * rng.normal(size=(n_query, dim)).astype(np.float32)
    gf = centres[gl] + 3.0 * rng.normal(size=(n_gallery, dim)).astype(np.float32)
    return qf, ql, gf, gl


def loop_map(qf: np.ndarray, ql: np.ndarray, gf: np.ndarray, gl: np.ndarray) -> float:
    """The per-query baseline (Market-1501 evaluation style): mAP by one argsort per query."""
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    aps = []
    for q, label in zip(qn, ql):
        order = np.argsort(-(gn @ q), kind="stable")
        matches = gl[order] == label
        hits = np.flatnonzero(matches)
        if len(hits):
            aps.append(float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1))))
    return float(np.mean(aps))


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    """Timings in seconds and the loop/vectorised ratio; `quick` uses 1,000 x 1,000."""
    n, dim, identities = (1000, 512, 100) if quick else (5000, 512, 500)
    repeats = 2 if quick else 3
    qf, ql, gf, gl = make_data(n, n, dim, identities)
    subset = n // 10
    result: dict = {"queries": n, "gallery": n, "dim": dim, "identities": identities, "torch_threads": torch.get_num_threads()}

    metrics = retrieval_metrics(qf, ql, gf, gl)
    result["mAP"] = metrics["mAP"]
    result["cpu_s"] = median_seconds(lambda: retrieval_metrics(qf, ql, gf, gl), repeats)
    loop_s = median_seconds(lambda: loop_map(qf[:subset], ql[:subset], gf, gl), repeats) * (n / subset)
    result["loop_cpu_s"] = loop_s
    result["loop_over_vectorised_cpu"] = loop_s / result["cpu_s"]
    sub = (qf[:subset], ql[:subset], gf, gl)
    result["loop_mAP_abs_diff"] = abs(loop_map(*sub) - retrieval_metrics(*sub)["mAP"])

    if torch.cuda.is_available():
        qc, gc = torch.from_numpy(qf).cuda(), torch.from_numpy(gf).cuda()
        result["device"] = torch.cuda.get_device_name()

        def on_cuda():
            retrieval_metrics(qc, ql, gc, gl)
            torch.cuda.synchronize()

        on_cuda()  # warm-up: kernels and allocator
        result["cuda_s"] = median_seconds(on_cuda, repeats)
        result["loop_over_vectorised_cuda"] = loop_s / result["cuda_s"]
        result["cuda_mAP_abs_diff"] = abs(retrieval_metrics(qc, ql, gc, gl)["mAP"] - metrics["mAP"])
    return result


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "1,000 x 1,000 instead of 5,000 x 5,000", argv)


if __name__ == "__main__":
    raise SystemExit(main())
