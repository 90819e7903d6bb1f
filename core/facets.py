"""Facets of a checkpoint's mistakes: what its wrong rank-1 match was, and the query's metadata.

A misidentified query's rank-1 gallery image is a *distractor* (an image the protocol adds to
the gallery without queries of its own: the other 11k subsets, HD's 502-712), *the same person
in another aspect* (a distractor or gallery image of the query's own subject, e.g. their other
hand or palm), or *another person* (a test identity other than the query's). Roles, subjects and
the layout's metadata (11k: skin colour, accessories, nail polish, age, gender) come from the
protocol's test table, rebuilt from the run's config and joined on the image paths of
embeddings.npz.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import Config, eval_target
from core.data.protocols import load_protocol
from core.runs.records import Embeddings

ANOTHER_PERSON, SAME_PERSON, DISTRACTOR = "another person", "same person, another aspect", "distractor"
RANK1_KINDS = (ANOTHER_PERSON, SAME_PERSON, DISTRACTOR)
METADATA = {"skinColor": "skin colour", "accessories": "accessories", "nailPolish": "nail polish", "age": "age",
            "gender": "gender"}
HARD_CASE_COLUMNS = ["query", "path", "identity", "aspect", "true_rank", "true_similarity", "true_path",
                     "rank1_path", "rank1_identity", "rank1_kind", "top1_similarity"]


def protocol_rows(cfg: Config) -> pd.DataFrame:
    """The test table (path, identity, subject, aspect, role, metadata) of the protocol a run's
    final evaluation used (its eval target, seed and number of runs)."""
    return load_protocol(eval_target(cfg), cfg.eval.seed, cfg.eval.runs).test


def rank1_kind(query_subject: str, match_subject: str, match_role: str) -> str:
    """What a wrong rank-1 match was (the module docstring): same subject first, then its role."""
    if query_subject == match_subject:
        return SAME_PERSON
    return DISTRACTOR if match_role == "distractor" else ANOTHER_PERSON


def error_facets(wrong: pd.DataFrame, emb: Embeddings, rows: pd.DataFrame | None) -> pd.DataFrame:
    """`wrong` (core.analysis.misidentified) plus rank1_path, rank1_identity, true_path, rank1_kind and
    the query's metadata columns (those of METADATA the table has). Without a table (`rows` None:
    the dataset is not on this machine) every wrong match counts as another person, with no metadata."""
    out = wrong.copy()
    top1 = np.array([int(idx[0]) for idx in out["top_indices"]], dtype=int)
    out["rank1_path"] = emb.gallery_paths[top1].astype(str) if len(out) else []
    out["rank1_identity"] = emb.gallery_identities[top1].astype(str) if len(out) else []
    out["true_path"] = emb.gallery_paths[out["true_index"].to_numpy(dtype=int)].astype(str) if len(out) else []
    if rows is None:
        out["rank1_kind"] = ANOTHER_PERSON
        return out
    by_path = rows.drop_duplicates("path").set_index("path")
    query, match = by_path.reindex(out["path"]), by_path.reindex(out["rank1_path"])
    out["rank1_kind"] = [rank1_kind(q, m, r) for q, m, r in zip(query["subject"], match["subject"],
                                                                 match["role"].fillna("target"))]
    for column in METADATA:
        if column in by_path.columns:
            out[column] = query[column].to_numpy()
    return out


def hard_cases(facets: pd.DataFrame) -> pd.DataFrame:
    """The columns of the hard-case export (CSV): the mistake, its matches, and the query's metadata."""
    return facets[[*HARD_CASE_COLUMNS, *(c for c in METADATA if c in facets.columns)]]
