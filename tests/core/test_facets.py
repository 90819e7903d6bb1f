"""Facets of mistakes, on a hand-built case: three queries wrong at rank 1, one per kind of match."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis import misidentified
from core.facets import ANOTHER_PERSON, DISTRACTOR, SAME_PERSON, error_facets, hard_cases
from core.runs import Embeddings


def unit(angle_deg: float) -> list[float]:
    a = np.deg2rad(angle_deg)
    return [np.cos(a), np.sin(a)]


# Gallery: g0 = a's true image, g1 = b's, g2 = c's, g3 = a distractor of subject a (their other hand),
# g4 = a distractor of subject z. Query qa sits on g3 (same person), qb on g4 (distractor), qc on g0.
GALLERY = {"g0": ("a", 0, "target", "a", 0), "g1": ("b", 1, "target", "b", 40), "g2": ("c", 2, "target", "c", 80),
           "g3": ("dorsal_l/a", 3, "distractor", "a", 120), "g4": ("dorsal_l/z", 4, "distractor", "z", 160)}
QUERIES = {"qa": ("a", 0, 121), "qb": ("b", 1, 161), "qc": ("c", 2, 1)}


def embeddings() -> Embeddings:
    g, q = list(GALLERY.values()), list(QUERIES.values())
    return Embeddings(
        np.array([unit(v[2]) for v in q], np.float32), np.array([v[1] for v in q]), np.array(list(QUERIES)),
        np.array([v[0] for v in q]), np.array(["dorsal_r"] * 3),
        np.array([unit(v[4]) for v in g], np.float32), np.array([v[1] for v in g]), np.array(list(GALLERY)),
        np.array([v[0] for v in g]), np.array(["dorsal_r"] * 3 + ["dorsal_l"] * 2))


def rows() -> pd.DataFrame:
    table = [(p, v[0], v[3], v[2]) for p, v in GALLERY.items()] + [(p, v[0], v[0], "target") for p, v in QUERIES.items()]
    frame = pd.DataFrame(table, columns=["path", "identity", "subject", "role"])
    frame["gender"] = ["f", "m", "f", "f", "m", "f", "m", "f"]
    frame["age"] = [20, 30, 40, 20, 50, 21, 31, 41]
    return frame


def test_each_wrong_match_is_classified_and_the_query_metadata_joined():
    emb = embeddings()
    facets = error_facets(misidentified(emb, k=2), emb, rows())
    by_query = facets.set_index("path")
    assert by_query["rank1_path"].to_dict() == {"qa": "g3", "qb": "g4", "qc": "g0"}
    assert by_query["rank1_kind"].to_dict() == {"qa": SAME_PERSON, "qb": DISTRACTOR, "qc": ANOTHER_PERSON}
    assert by_query["true_path"].to_dict() == {"qa": "g0", "qb": "g1", "qc": "g2"}
    assert by_query["age"].to_dict() == {"qa": 21, "qb": 31, "qc": 41}
    assert by_query["gender"].to_dict() == {"qa": "f", "qb": "m", "qc": "f"}
    exported = hard_cases(facets)
    assert list(exported.columns)[-2:] == ["age", "gender"]  # METADATA's order
    assert "top_indices" not in exported.columns


def test_without_a_table_every_mistake_counts_as_another_person():
    emb = embeddings()
    facets = error_facets(misidentified(emb, k=2), emb, None)
    assert set(facets["rank1_kind"]) == {ANOTHER_PERSON}
    assert "age" not in facets.columns
