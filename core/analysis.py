"""What a checkpoint gets wrong: per-query retrieval outcomes from a run's saved embeddings.

Works on `embeddings.npz` (written by the final evaluation, run 0): query and gallery
features (L2-normalised), labels, image paths, identities and aspects. Rankings use
`core.metrics.ranked_gallery`, so ties break exactly as in the reported metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.metrics import ranked_gallery
from core.runs.records import Embeddings


def query_outcomes(emb: Embeddings, k: int = 5) -> pd.DataFrame:
    """Per query, in query order: how its gallery ranking went.

    Columns: query (index), path, identity, aspect, label, correct (rank-1 is the same
    label), true_rank (1-based rank of the first same-label gallery image; 0 when the
    gallery holds none), true_index (its gallery index; -1 when none), true_similarity (its
    cosine similarity; nan when none), top1_similarity,
    top_indices / top_similarities / top_correct (lists over the top k gallery images).
    """
    n_gallery = len(emb.gallery_labels)  # > 0: Embeddings.load checks it
    order, sims = ranked_gallery(emb.query_features, emb.gallery_features, k=n_gallery)
    order, sims = order.numpy(), sims.numpy()
    matches = emb.gallery_labels[order] == emb.query_labels[:, None]
    has_match = matches.any(axis=1)
    first = matches.argmax(axis=1)
    rows = np.arange(len(order))
    k = min(k, n_gallery)
    return pd.DataFrame({
        "query": rows,
        "path": emb.query_paths.astype(str),
        "identity": emb.query_identities.astype(str),
        "aspect": emb.query_aspects.astype(str),
        "label": emb.query_labels,
        "correct": matches[:, 0],
        "true_rank": np.where(has_match, first + 1, 0),
        "true_index": np.where(has_match, order[rows, first], -1),
        "true_similarity": np.where(has_match, sims[rows, first], np.nan),
        "top1_similarity": sims[:, 0],
        "top_indices": list(order[:, :k]),
        "top_similarities": list(sims[:, :k]),
        "top_correct": list(matches[:, :k]),
    })


def misidentified(emb: Embeddings, k: int = 5) -> pd.DataFrame:
    """Queries whose rank-1 gallery image is another identity, hardest first.

    Hardest = the true match ranked lowest, then (same rank) the least similar true match.
    Queries with no true match in the gallery are left out, as the retrieval metrics skip them.
    Columns as `query_outcomes`.
    """
    out = query_outcomes(emb, k)
    wrong = out[~out["correct"] & (out["true_rank"] > 0)]
    return wrong.sort_values(["true_rank", "true_similarity", "query"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def disagreements(emb_a: Embeddings, emb_b: Embeddings) -> pd.DataFrame:
    """Queries (matched by image path) that one run gets right at rank 1 and the other wrong.

    Columns: path, identity, aspect, then for each run x in (a, b): x_query, x_correct,
    x_true_rank, x_top1 (path of its rank-1 gallery image), x_top1_similarity. Rows in run a's
    query order.
    """
    sides = []
    for name, emb in (("a", emb_a), ("b", emb_b)):
        out = query_outcomes(emb, k=1)
        top1 = emb.gallery_paths[[int(idx[0]) for idx in out["top_indices"]]]
        side = pd.DataFrame({
            "path": out["path"],
            f"{name}_query": out["query"],
            f"{name}_correct": out["correct"],
            f"{name}_true_rank": out["true_rank"],
            f"{name}_top1": top1.astype(str),
            f"{name}_top1_similarity": out["top1_similarity"],
        })
        if name == "a":
            side.insert(1, "identity", out["identity"])
            side.insert(2, "aspect", out["aspect"])
        sides.append(side)
    both = sides[0].merge(sides[1], on="path", how="inner", sort=False)
    return both[both["a_correct"] != both["b_correct"]].reset_index(drop=True)
