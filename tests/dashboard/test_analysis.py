"""Background projections and the rank-1 column of the analysis pages, on hand-built embeddings."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from core.runs import Embeddings
from core.errors import DataError
from core.projections import projection_path
from core.runs import RunDir
from dashboard import analysis
from dashboard.figures import projection_figure


@pytest.fixture
def run(tmp_path) -> RunDir:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(12, 4)).astype(np.float32)
    text = lambda prefix, n: np.array([f"{prefix}{i}" for i in range(n)])  # noqa: E731
    arrays = Embeddings(f[:6], np.arange(6) % 3, text("/q/", 6), (np.arange(6) % 3).astype(str), np.array(["a"] * 6),
                        f[6:], np.arange(6) % 3, text("/g/", 6), (np.arange(6) % 3).astype(str), np.array(["b"] * 6))
    run = RunDir(tmp_path)
    run.write_embeddings(arrays)
    return run


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "background projection did not finish"
        time.sleep(0.05)


def test_slow_projection_runs_in_the_background(run, monkeypatch):
    release = threading.Event()
    real = analysis.cached_projection
    monkeypatch.setattr(analysis, "cached_projection", lambda r, m: release.wait(10) and real(r, m))
    assert analysis.projection(run, "tsne") is None  # started
    assert analysis.projection(run, "tsne") is None  # still running: not started twice
    release.set()
    wait_for(lambda: projection_path(run, "tsne").exists())
    frame = analysis.projection(run, "tsne")
    assert frame is not None and len(frame) == 12


def test_failed_projection_reports_until_retried(run, monkeypatch):
    calls = []

    def fail(r, m):
        calls.append(m)
        raise DataError("boom.npz: broken")

    monkeypatch.setattr(analysis, "cached_projection", fail)
    assert analysis.projection(run, "tsne") is None
    wait_for(lambda: all(f.done() for f in analysis._running.values()))
    for _ in range(2):
        with pytest.raises(DataError, match="boom"):
            analysis.projection(run, "tsne")
    assert calls == ["tsne"]
    analysis.retry_projection(run, "tsne")
    assert analysis.projection(run, "tsne") is None
    wait_for(lambda: len(calls) == 2)


def test_pca_is_computed_in_place(run):
    frame = analysis.projection(run, "pca")
    assert list(frame["split"]) == ["query"] * 6 + ["gallery"] * 6


def test_with_rank1_marks_queries_right_or_wrong(run):
    frame = analysis.projection(run, "pca")
    outcome = pd.DataFrame({"correct": [True, False, True, False, False, True]})
    marked = analysis.with_rank1(frame, outcome)
    assert marked["rank-1"].tolist() == ["right", "wrong", "right", "wrong", "wrong", "right"] + ["gallery"] * 6


def test_scatter_customdata_maps_back_to_rows(run):
    frame = analysis.with_rank1(analysis.projection(run, "pca"), pd.DataFrame({"correct": [True] * 3 + [False] * 3}))
    fig = projection_figure(frame, "rank-1")
    rows = {trace.name: sorted(int(r[0]) for r in trace.customdata) for trace in fig.data}
    assert rows == {"gallery": list(range(6, 12)), "right": [0, 1, 2], "wrong": [3, 4, 5]}
    by_identity = projection_figure(frame, "identity")  # one trace per split, coloured by identity
    colours = {int(r[0]): c for t in by_identity.data for r, c in zip(t.customdata, t.marker.color)}
    assert sorted(colours) == list(range(12))
    assert colours[0] == colours[3] == colours[6] and colours[0] != colours[1]  # one colour per identity
