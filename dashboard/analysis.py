"""Data behind the analysis pages: a run's embeddings and outcomes cached per file version, and
projections computed off the UI thread.

t-SNE of a few thousand points takes seconds, so it runs in one background thread per
dashboard process; the page shows a note and polls until the cache file exists. PCA takes a
fraction of a second and is computed in place.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import misidentified, query_outcomes
from core.metrics import ranked_gallery
from core.projections import cached_projection, load_projection, projection_path
from core.runs import Embeddings, RunDir, no_embeddings
from dashboard.common import pick_run, require_inside_roots

NO_EMBEDDINGS = "This run has no embeddings yet: its final evaluation writes them."


def pick_run_with_embeddings() -> RunDir | None:
    """The run picker of the pages that read embeddings.npz; None (with a note) when it has none."""
    run = pick_run("Run", key="run")
    if run is not None and not run.embeddings_path.exists():
        st.info(NO_EMBEDDINGS)
        return None
    if run is not None:
        _version(run)  # a damaged file, or one naming images outside the run's dataset roots: its error
    return run


INSTANT = ("pca",)  # computed in place; anything else goes to the background thread

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection")
_running: dict[Path, Future] = {}
_lock = threading.Lock()


def _version(run: RunDir) -> int:
    """The embeddings file's modification time (a re-evaluation invalidates the caches below), once its
    images are known to lie under the run's dataset roots (DataError otherwise)."""
    try:
        version = run.embeddings_path.stat().st_mtime_ns
    except FileNotFoundError:
        raise no_embeddings(run.embeddings_path) from None
    _contained(run, str(run.embeddings_path), version)
    return version


@st.cache_data(max_entries=16, show_spinner=False)
def _contained(_run: RunDir, path: str, version: int) -> bool:
    emb = _load(path, version)
    require_inside_roots(_run, [*emb.query_paths, *emb.gallery_paths], Path(path))
    return True


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(path: str, version: int) -> Embeddings:
    return Embeddings.load(path)


def embeddings(run: RunDir) -> Embeddings:
    """The run's embeddings, read once per file version (shared, not copied: do not modify)."""
    return _load(str(run.embeddings_path), _version(run))


@st.cache_data(max_entries=16, show_spinner=False)
def _outcomes(path: str, version: int, k: int) -> pd.DataFrame:
    return query_outcomes(_load(path, version), k)


@st.cache_data(max_entries=16, show_spinner=False)
def _misidentified(path: str, version: int, k: int) -> pd.DataFrame:
    return misidentified(_load(path, version), k)


def outcomes(run: RunDir, k: int = 5) -> pd.DataFrame:
    """`core.analysis.query_outcomes` of the run's embeddings, cached per file version."""
    return _outcomes(str(run.embeddings_path), _version(run), k)


def wrong_queries(run: RunDir, k: int = 5) -> pd.DataFrame:
    """`core.analysis.misidentified` of the run's embeddings, cached per file version."""
    return _misidentified(str(run.embeddings_path), _version(run), k)


def projection(run: RunDir, method: str) -> pd.DataFrame | None:
    """The run's projection by `method`, or None while a background thread computes it.

    The first call for a missing projection starts the thread; later calls return None until
    the cache file is written. A failed computation raises its error on every call until
    `retry_projection`.
    """
    if method in INSTANT:
        return cached_projection(run, method)
    key = projection_path(run, method)
    if key.exists():
        return load_projection(run, method)
    with _lock:
        future = _running.get(key)
        if future is None:
            _running[key] = _executor.submit(cached_projection, run, method)
            return None
        if not future.done():
            return None
        if future.exception() is None:
            del _running[key]
    return future.result()


def retry_projection(run: RunDir, method: str) -> None:
    """Forget a failed background computation, so the next `projection` call starts it again."""
    with _lock:
        _running.pop(projection_path(run, method), None)


def with_rank1(frame: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    """The projection frame plus a `rank-1` column: right or wrong for queries, gallery otherwise."""
    out = frame.copy()
    out["rank-1"] = "gallery"
    queries = out["split"] == "query"
    correct = outcome["correct"].to_numpy()[out.loc[queries, "index"].to_numpy()]
    out.loc[queries, "rank-1"] = np.where(correct, "right", "wrong")
    return out


def nearest_neighbours(emb: Embeddings, rows: list[int], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """For points `rows` of `emb.points()`, the k most similar other points (indices, similarities)."""
    features = emb.features
    idx, sims = ranked_gallery(features[rows], features, k + 1)
    idx, sims = idx.numpy(), sims.numpy()
    keep = idx != np.asarray(rows)[:, None]
    return (np.stack([r[m][:k] for r, m in zip(idx, keep)]), np.stack([s[m][:k] for s, m in zip(sims, keep)]))
