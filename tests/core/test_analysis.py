"""Per-query outcomes, misidentified queries and run disagreements on hand-built embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import disagreements, misidentified, query_outcomes
from core.runs import Embeddings
from core.errors import DataError
from core.runs import RunDir

# Gallery: A at (1, 0), B at (0, 1), C at (0.6, 0.8).
GALLERY = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)
GALLERY_LABELS = np.array([0, 1, 2])


def make(query: list[list[float]], labels: list[int], names: list[str]) -> Embeddings:
    n = len(query)
    return Embeddings(
        query_features=np.array(query, np.float32), query_labels=np.array(labels),
        query_paths=np.array([f"/q/{x}.jpg" for x in names]), query_identities=np.array([f"id{l}" for l in labels]),
        query_aspects=np.array(["dorsal_r"] * n),
        gallery_features=GALLERY, gallery_labels=GALLERY_LABELS,
        gallery_paths=np.array(["/g/a.jpg", "/g/b.jpg", "/g/c.jpg"]),
        gallery_identities=np.array(["id0", "id1", "id2"]),
        gallery_aspects=np.array(["dorsal_r"] * 3),
    )


# q0 (A) (1, 0) -> A 1, B 0, C .6: right.
# q1 (B) (0.8, 0.6) -> A .8, B .6, C .96: wrong, true match at rank 3 (sim .6).
# q2 (C) (0.96, 0.28) -> A .96, B .28, C .8: wrong, true match at rank 2 (sim .8).
# q3 (label 3) has no gallery match: wrong but skipped, as the metrics skip it.
RUN_A = make([[1, 0], [0.8, 0.6], [0.96, 0.28], [0, 1]], [0, 1, 2, 3], ["q0", "q1", "q2", "q3"])


def test_query_outcomes_ranks_every_query():
    out = query_outcomes(RUN_A, k=2)
    assert out["correct"].tolist() == [True, False, False, False]
    assert out["true_rank"].tolist() == [1, 3, 2, 0]
    assert out["true_index"].tolist() == [0, 1, 2, -1]
    assert out["true_similarity"].tolist()[:3] == pytest.approx([1.0, 0.6, 0.8], abs=1e-6)
    assert np.isnan(out["true_similarity"][3])
    assert out["top1_similarity"].tolist() == pytest.approx([1.0, 0.96, 0.96, 1.0], abs=1e-6)
    assert [list(t) for t in out["top_indices"]] == [[0, 2], [2, 0], [0, 2], [1, 2]]
    assert [list(t) for t in out["top_correct"]] == [[True, False], [False, False], [False, True], [False, False]]


def test_misidentified_lists_wrong_queries_hardest_first():
    out = misidentified(RUN_A, k=3)
    assert out["path"].tolist() == ["/q/q1.jpg", "/q/q2.jpg"]  # rank 3 before rank 2; q3 has no match
    assert out["true_rank"].tolist() == [3, 2]
    assert out["true_similarity"].tolist() == pytest.approx([0.6, 0.8], abs=1e-6)
    assert [list(t) for t in out["top_correct"]] == [[False, False, True], [False, True, False]]


def test_misidentified_breaks_rank_ties_by_lower_true_similarity():
    # Both identity A, both with A at rank 3; q_far's true match is less similar (.28 < .6), so it is harder.
    emb = make([[0.6, 0.8], [0.28, 0.96]], [0, 0], ["q_near", "q_far"])
    # q_near: C 1.0, B .8, A .6; q_far: B .96, C .936, A .28.
    out = misidentified(emb)
    assert out["true_rank"].tolist() == [3, 3]
    assert out["path"].tolist() == ["/q/q_far.jpg", "/q/q_near.jpg"]


def test_disagreements_match_queries_by_path():
    # Run B lists the queries in another order, gets q1 right and q0 wrong; both get q2 and q3 wrong.
    run_b = make([[0, 1], [0.6, 0.8], [0.96, 0.28], [0, 1]], [1, 0, 2, 3], ["q1", "q0", "q2", "q3"])
    out = disagreements(RUN_A, run_b)
    assert out["path"].tolist() == ["/q/q0.jpg", "/q/q1.jpg"]
    assert out["a_correct"].tolist() == [True, False]
    assert out["b_correct"].tolist() == [False, True]
    assert out["b_query"].tolist() == [1, 0]
    assert out["a_top1"].tolist() == ["/g/a.jpg", "/g/c.jpg"]
    assert out["b_top1"].tolist() == ["/g/c.jpg", "/g/b.jpg"]
    assert out["identity"].tolist() == ["id0", "id1"]


def test_save_and_load_round_trip(tmp_path):
    run = RunDir(tmp_path)
    run.write_embeddings(RUN_A)
    back = Embeddings.load(run.embeddings_path)
    assert back.query_paths.tolist() == RUN_A.query_paths.tolist()
    np.testing.assert_array_equal(back.gallery_features, GALLERY)
    points = back.points()
    assert points["split"].tolist() == ["query"] * 4 + ["gallery"] * 3
    assert points["index"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert back.features.shape == (7, 2)


def test_load_rejects_missing_and_incomplete_files(tmp_path):
    with pytest.raises(DataError, match="no embeddings file"):
        Embeddings.load(tmp_path / "embeddings.npz")
    np.savez(tmp_path / "partial.npz", query_features=np.zeros((1, 2)))
    with pytest.raises(DataError, match="partial.npz: embeddings file lacks"):
        Embeddings.load(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="junk.npz: unreadable"):
        Embeddings.load(tmp_path / "junk.npz")


def test_load_rejects_mismatched_lengths(tmp_path):
    bad = Embeddings(**{**RUN_A.__dict__, "query_paths": RUN_A.query_paths[:2]})
    RunDir(tmp_path).write_embeddings(bad)
    with pytest.raises(DataError, match="embeddings.npz: query_paths has 2 entries for 4 query features"):
        Embeddings.load(tmp_path / "embeddings.npz")
