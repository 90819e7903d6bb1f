"""Published hand-identification results on the protocols this project reproduces, as data.

Rank-1 and mAP in percent as the MBA-Net paper's tables give them (Baisa et al.; quoted by
later work), on the same protocols: the four 11k subsets (other subsets' galleries as
distractors) and HD (the 502-712 subjects as distractors), mean over 10 query/gallery runs.
Their mAP is the published code's trapezoid-rule AP, our `mAP_trapezoid`: a run is set beside
them only in that convention (with one gallery image per identity it is (rank-1 + mAP) / 2).
`comparison` puts a run's results among the rows published for the same train and test sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.metrics import RETRIEVAL

SOURCE = "MBA-Net (Baisa et al.), tables as quoted by later work"
RANK1, MAP = RETRIEVAL["rank1"], RETRIEVAL["mAP_trapezoid"]  # the columns of a comparison
NOTE = (f"Published figures: {SOURCE}; their mAP is the trapezoid-rule AP of the published code, so this run's "
        f"figures beside them are its {MAP}. With one gallery image per identity (these protocols) that is "
        "(rank-1 + mAP) / 2, and the standard mAP equals mINP.")


@dataclass(frozen=True)
class Published:
    """One published result: the method, the train and test sides (`dataset/protocol`), rank-1 and
    mAP in percent (trapezoid convention)."""

    method: str
    train: str
    test: str
    rank1: float
    mAP: float


_SUBSETS = ("11k/dorsal_r", "11k/dorsal_l", "11k/palmar_r", "11k/palmar_l", "hd/hd")
_TABLE = {  # method: (rank-1, mAP) per subset, in the order of _SUBSETS
    "ABD-Net": ((95.89, 96.76), (94.26, 95.34), (96.21, 96.91), (95.54, 96.01), (94.93, 95.38)),
    "GPA-Net": ((94.80, 95.72), (94.87, 95.93), (95.83, 96.31), (95.72, 96.20), (94.64, 95.08)),
    "MBA-Net": ((97.45, 97.98), (96.71, 97.41), (98.05, 98.42), (97.42, 97.84), (95.12, 95.54)),
}
PUBLISHED: tuple[Published, ...] = (
    *(Published(method, key, key, r1, m) for method, rows in _TABLE.items() for key, (r1, m) in zip(_SUBSETS, rows)),
    Published("MBA-Net", "11k/dorsal_r", "hd/hd", 84.41, 85.98),  # cross-dataset: train 11k D-r, test HD
)


def published_for(train: str, test: str) -> list[Published]:
    """The published results trained on `train` and tested on `test` (both `dataset/protocol`)."""
    return [p for p in PUBLISHED if p.train == train and p.test == test]


def comparison(train: str, test: str, results: Mapping[str, Mapping[str, float | None]]) -> list[dict]:
    """Rows {method, rank-1, mAP (papers' convention)} in percent: the published results for these
    sides, then each of `results` ({label: test metrics as fractions}); [] when nothing was published
    for them (synthetic data, own datasets, other protocols)."""
    published = published_for(train, test)
    if not published:
        return []
    rows = [{"method": p.method, RANK1: p.rank1, MAP: p.mAP} for p in published]
    for label, metrics in results.items():
        rows.append({"method": label, RANK1: _percent(metrics.get("rank1")), MAP: _percent(metrics.get("mAP_trapezoid"))})
    return rows


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)
