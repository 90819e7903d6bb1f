"""2-D projections and their on-disk cache."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from scipy.spatial.distance import pdist

import core.projections as projections
from core.runs import Embeddings
from core.errors import ConfigError, DataError
from core.projections import cached_projection, load_projection, methods, project
from core.runs import RunDir


def two_clusters(n: int = 20, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.zeros((2, dim), np.float32)
    centres[0, 0] = centres[1, 1] = 1.0
    labels = np.repeat([0, 1], n)
    x = centres[labels] + 0.05 * rng.normal(size=(2 * n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_pca_keeps_distances_of_planar_points():
    # Points on a 2-D plane inside 5-D space: PCA is a rotation of that plane, distances survive.
    rng = np.random.default_rng(1)
    plane = np.linalg.qr(rng.normal(size=(5, 2)))[0].T  # two orthonormal 5-D vectors
    coords = rng.normal(size=(30, 2))
    xy = project(coords @ plane + 3.0, "pca")
    assert xy.shape == (30, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(pdist(xy), pdist(coords), rtol=1e-4, atol=1e-4)


def test_tsne_separates_clusters_and_is_seeded():
    x, labels = two_clusters()
    xy = project(x, "tsne", seed=3)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(40) * 1e9
    assert (labels[d.argmin(axis=1)] == labels).all()
    np.testing.assert_array_equal(project(x, "tsne", seed=3), xy)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_tiny_inputs_get_a_layout(n):
    xy = project(np.ones((n, 4), np.float32) * np.arange(n)[:, None], "tsne")
    assert xy.shape == (n, 2) and np.isfinite(xy).all()


def test_unknown_method_names_the_choices():
    with pytest.raises(ConfigError, match="unknown projection method 'mds'; choose one of pca, tsne"):
        project(np.zeros((3, 2)), "mds")
    assert methods()[:2] == ["pca", "tsne"]


def write_run(tmp_path) -> RunDir:
    x, labels = two_clusters(n=6, dim=8)
    q, g = slice(0, 12, 2), slice(1, 12, 2)
    names = np.array([f"/img/{i}.jpg" for i in range(12)])
    arrays = Embeddings(
        query_features=x[q], query_labels=labels[q], query_paths=names[q], query_identities=labels[q].astype(str),
        query_aspects=np.array(["dorsal_r"] * 6), gallery_features=x[g], gallery_labels=labels[g],
        gallery_paths=names[g], gallery_identities=labels[g].astype(str), gallery_aspects=np.array(["palmar_l"] * 6),
    )
    run = RunDir(tmp_path)
    run.write_embeddings(arrays)
    return run


def test_cached_projection_computes_once_per_embeddings_file(tmp_path, monkeypatch):
    run = write_run(tmp_path)
    calls = []
    real = projections.project
    monkeypatch.setattr(projections, "project", lambda f, m, s=0: calls.append(m) or real(f, m, s))

    assert load_projection(run, "pca") is None
    first = cached_projection(run, "pca")
    assert list(first.columns) == ["x", "y", "split", "index", "label", "identity", "aspect", "path"]
    assert first["split"].tolist() == ["query"] * 6 + ["gallery"] * 6
    assert first["path"].tolist()[:2] == ["/img/0.jpg", "/img/2.jpg"]
    assert [p.name.split("-")[0] for p in (tmp_path / "projections").iterdir()] == ["pca"]

    second = cached_projection(run, "pca")
    assert calls == ["pca"]
    np.testing.assert_array_equal(second[["x", "y"]], first[["x", "y"]])
    assert load_projection(run, "pca") is not None

    stat = run.embeddings_path.stat()  # a re-evaluation rewrites the file: a fresh projection
    os.utime(run.embeddings_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_projection(run, "pca") is None
    cached_projection(run, "pca")
    assert calls == ["pca", "pca"]


def test_concurrent_callers_share_one_cache_file(tmp_path):
    run = write_run(tmp_path)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_projection(run, "pca"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert len(list((tmp_path / "projections").iterdir())) == 1  # no temporary files left behind


def test_missing_embeddings_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no embeddings file"):
        cached_projection(RunDir(tmp_path), "pca")
