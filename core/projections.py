"""2-D projections of embeddings (PCA, t-SNE, UMAP), cached on disk once per embeddings file.

PCA is sklearn's. t-SNE is openTSNE's on cosine distances after a PCA to 50 dimensions (as is
customary), with 250 early-exaggeration plus 250 plain iterations (its default 250 + 500 costs
a third more time and barely moves a layout of identity clusters), on one thread: openTSNE's
worker threads wait on each other every iteration, and on a busy 2-core machine two threads
ran 3-6x slower than one (1,000 points: 13.7 s against 2.4 s). sklearn's t-SNE is the fallback
when openTSNE is missing. UMAP is offered only when `umap-learn` is installed.

The cache lives in the run folder, `projections/<method>-<key>.npz`, where the key hashes the
embeddings file's size and modification time and the seed: a re-evaluated run gets a fresh
projection, and concurrent callers at worst compute twice, each writing atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from core.runs import Embeddings, no_embeddings
from core.errors import ConfigError
from core.runs import RunDir

PRE_TSNE_DIMS = 50
TSNE_ITERATIONS = 250  # after openTSNE's 250 early-exaggeration iterations
CACHE_DIR = "projections"


def methods() -> list[str]:
    """Projection methods available here: pca, tsne, and umap when umap-learn is installed."""
    return ["pca", "tsne", *(["umap"] if importlib.util.find_spec("umap") else [])]


def project(features: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """Features [N, D] -> float32 coordinates [N, 2] by `method` (see `methods()`), deterministic for a seed.

    Fewer than 2 points (or, for t-SNE/UMAP, fewer than 5) cannot be embedded meaningfully:
    they get the PCA layout, and a single point sits at the origin.
    """
    if method not in methods():
        raise ConfigError(f"unknown projection method {method!r}; choose one of {', '.join(methods())}")
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, dim], got shape {x.shape}")
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32)
    if method == "pca" or len(x) < 5:
        return _pca(x, 2, seed)
    if method == "tsne":
        return _tsne(_pca(x, PRE_TSNE_DIMS, seed) if x.shape[1] > PRE_TSNE_DIMS else x, seed)
    return _umap(x, seed)


def _pca(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """The first `dims` principal components, zero-padded when the data has fewer."""
    n = min(dims, *x.shape)
    out = np.zeros((len(x), dims), np.float32)
    out[:, :n] = PCA(n_components=n, random_state=seed).fit_transform(x)
    return out


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    try:
        from openTSNE import TSNE
    except ImportError:
        from sklearn.manifold import TSNE as SkTSNE

        model = SkTSNE(perplexity=perplexity, metric="cosine", init="pca", max_iter=250 + TSNE_ITERATIONS,
                       random_state=seed)
        return model.fit_transform(x).astype(np.float32)
    model = TSNE(perplexity=perplexity, metric="cosine", initialization="pca", n_iter=TSNE_ITERATIONS,
                 n_jobs=1, random_state=seed)
    return np.asarray(model.fit(x), dtype=np.float32)


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap

    model = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), metric="cosine", random_state=seed)
    return model.fit_transform(x).astype(np.float32)


def projection_path(run: RunDir, method: str, seed: int = 0) -> Path:
    """Where the projection of the run's current embeddings file is (or will be) cached."""
    try:
        stat = run.embeddings_path.stat()
    except FileNotFoundError:
        raise no_embeddings(run.embeddings_path) from None
    key = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}:{seed}".encode()).hexdigest()[:12]
    return run.path / CACHE_DIR / f"{method}-{key}.npz"


def load_projection(run: RunDir, method: str, seed: int = 0) -> pd.DataFrame | None:
    """The cached projection as `cached_projection` returns it, or None when not computed yet."""
    emb = Embeddings.load(run.embeddings_path)
    path = projection_path(run, method, seed)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return _frame(emb, data["xy"])


def cached_projection(run: RunDir, method: str, seed: int = 0) -> pd.DataFrame:
    """The run's query and gallery embeddings projected to 2-D, computed once and cached in the run folder.

    One row per image (query rows first): x, y and `Embeddings.points()`'s columns. A missing
    or unreadable embeddings file raises DataError.
    """
    cached = load_projection(run, method, seed)
    if cached is not None:
        return cached
    emb = Embeddings.load(run.embeddings_path)
    xy = project(emb.features, method, seed)
    path = projection_path(run, method, seed)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{id(xy)}.tmp.npz")
    np.savez(tmp, xy=xy)
    os.replace(tmp, path)
    return _frame(emb, xy)


def _frame(emb: Embeddings, xy: np.ndarray) -> pd.DataFrame:
    points = emb.points()
    points.insert(0, "y", xy[:, 1])
    points.insert(0, "x", xy[:, 0])
    return points
