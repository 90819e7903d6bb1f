"""What a checkpoint gets wrong: per-query retrieval outcomes from a run's saved embeddings.

Works on `embeddings.npz` (written by the final evaluation, run 0): query and gallery
features (L2-normalised), labels, image paths, identities and aspects. Rankings use
`core.metrics.ranked_gallery`, so ties break exactly as in the reported metrics.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError
from core.metrics import ranked_gallery

SPLITS = ("query", "gallery")
FIELDS = ("features", "labels", "paths", "identities", "aspects")


def no_embeddings(path: str | Path) -> DataError:
    """The error for a run without embeddings.npz: it is written by the final evaluation."""
    return DataError(f"{path}: no embeddings file yet (the run writes it after its final evaluation)")


@dataclass(frozen=True)
class Embeddings:
    """Query and gallery features of one evaluation, with each image's label, path, identity and aspect."""

    query_features: np.ndarray
    query_labels: np.ndarray
    query_paths: np.ndarray
    query_identities: np.ndarray
    query_aspects: np.ndarray
    gallery_features: np.ndarray
    gallery_labels: np.ndarray
    gallery_paths: np.ndarray
    gallery_identities: np.ndarray
    gallery_aspects: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> "Embeddings":
        """Read an embeddings.npz (no pickles); a missing, unreadable or incomplete file raises DataError."""
        path = Path(path)
        names = [f"{split}_{field}" for split in SPLITS for field in FIELDS]
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [n for n in names if n not in data.files]
                if missing:
                    raise DataError(f"{path}: embeddings file lacks {', '.join(missing)}")
                arrays = {n: data[n] for n in names}
        except FileNotFoundError:
            raise no_embeddings(path) from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: unreadable embeddings file ({exc})") from None
        emb = cls(**arrays)
        emb.check(path)
        return emb

    def check(self, path: str | Path) -> None:
        """DataError naming `path` unless features are 2-D, per-image arrays match them in length, and the
        gallery is not empty."""
        for split in SPLITS:
            features = getattr(self, f"{split}_features")
            if features.ndim != 2:
                raise DataError(f"{path}: {split}_features must be 2-D, got shape {features.shape}")
            for field in FIELDS[1:]:
                if len(getattr(self, f"{split}_{field}")) != len(features):
                    raise DataError(f"{path}: {split}_{field} has {len(getattr(self, f'{split}_{field}'))} entries "
                                    f"for {len(features)} {split} features")
        if len(self.gallery_features) == 0:
            raise DataError(f"{path}: the gallery is empty")

    def arrays(self) -> dict[str, np.ndarray]:
        """The embeddings.npz arrays by name (what `RunDir.write_embeddings` takes)."""
        return {f"{split}_{field}": np.asarray(getattr(self, f"{split}_{field}"))
                for split in SPLITS for field in FIELDS}

    @property
    def features(self) -> np.ndarray:
        """Query then gallery features, one row per point of `points()`."""
        return np.concatenate([self.query_features, self.gallery_features]).astype(np.float32, copy=False)

    def points(self) -> pd.DataFrame:
        """One row per image, query rows first: split, index (within its split), label, identity, aspect, path."""
        parts = []
        for split in SPLITS:
            labels = getattr(self, f"{split}_labels")
            parts.append(pd.DataFrame({
                "split": split,
                "index": np.arange(len(labels)),
                "label": labels,
                "identity": getattr(self, f"{split}_identities").astype(str),
                "aspect": getattr(self, f"{split}_aspects").astype(str),
                "path": getattr(self, f"{split}_paths").astype(str),
            }))
        return pd.concat(parts, ignore_index=True)


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
