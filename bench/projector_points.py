"""Seconds to build and serialise the Embeddings page's projector figure at 5,000 points.

5,000 points (2,500 queries, 2,500 gallery images, a fifth of the gallery distractors) in ~250
identities, PCA-projected; the figure (dashboard.projector: WebGL scatter coloured per identity,
distractor rings, one highlighted identity, variance-labelled axes) is built and serialised to
the JSON st.plotly_chart sends to the browser. Target: both together well under a second, so
every rerun (a highlight, a click) stays fluid. Run: `python -m bench.projector_points [--quick] [--json]`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.bench_projections import make_data
from bench.timing import component_main
from core.projections import project


def frame_of(n: int, identities: int) -> pd.DataFrame:
    """A projection frame as core.projections writes it, plus roles."""
    x, labels = make_data(n, 512, identities)
    xy = project(x, "pca")
    split = np.where(np.arange(n) < n // 2, "query", "gallery")
    role = np.where((split == "gallery") & (np.arange(n) % 5 == 0), "distractor", "target")
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "split": split, "index": np.arange(n), "label": labels,
                         "identity": [f"{i:07d}" for i in labels], "aspect": "dorsal_r",
                         "path": [f"/data/11k/Hands/Hand_{i:07d}.jpg" for i in range(n)], "role": role})


def run(quick: bool = False) -> dict:
    """Build and to_json seconds (best of 3), and the JSON's size; `quick` uses 1,000 points."""
    from dashboard.projector import projector_figure

    n, identities = (1000, 50) if quick else (5000, 250)
    frame = frame_of(n, identities)
    build, serialise = [], []
    for _ in range(3):
        start = time.perf_counter()
        fig = projector_figure(frame, "identity", [frame["identity"].iloc[0]], (0.12, 0.08))
        middle = time.perf_counter()
        spec = fig.to_json()
        build.append(middle - start)
        serialise.append(time.perf_counter() - middle)
    return {"points": n, "identities": identities, "figure_build_s": min(build), "to_json_s": min(serialise),
            "json_mb": len(spec) / 1e6, "fluid": min(build) + min(serialise) < 1.0}


def main(argv: list[str] | None = None) -> int:
    return component_main(run, __doc__.splitlines()[0], "1,000 points instead of 5,000", argv)


if __name__ == "__main__":
    raise SystemExit(main())
