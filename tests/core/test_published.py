"""The published comparison: the table as DESIGN.md quotes it, and a run set beside it."""

from __future__ import annotations

import pytest

from core.published import MAP, PUBLISHED, RANK1, comparison, published_for


def test_the_published_table_holds_every_subset_and_the_cross_dataset_result():
    assert len(PUBLISHED) == 3 * 5 + 1
    by = {(p.method, p.train, p.test): (p.rank1, p.mAP) for p in PUBLISHED}
    assert by["ABD-Net", "11k/dorsal_r", "11k/dorsal_r"] == (95.89, 96.76)
    assert by["GPA-Net", "11k/palmar_l", "11k/palmar_l"] == (95.72, 96.20)
    assert by["MBA-Net", "hd/hd", "hd/hd"] == (95.12, 95.54)
    assert by["MBA-Net", "11k/dorsal_r", "hd/hd"] == (84.41, 85.98)
    assert all(p.mAP > p.rank1 for p in PUBLISHED)  # trapezoid AP >= rank-1 with one gallery image per identity


def test_a_run_sits_beside_the_published_rows_in_the_papers_convention():
    rows = comparison("11k/dorsal_l", "11k/dorsal_l", {"final": {"rank1": 0.9609, "mAP": 0.9752,
                                                                 "mAP_trapezoid": 0.96805}})
    assert [r["method"] for r in rows] == ["ABD-Net", "GPA-Net", "MBA-Net", "final"]
    assert rows[-1] == {"method": "final", RANK1: 96.09, MAP: pytest.approx(96.8, abs=0.006)}
    assert rows[0] == {"method": "ABD-Net", RANK1: 94.26, MAP: 95.34}


def test_nothing_is_compared_where_nothing_was_published():
    assert comparison("synthetic/dorsal_r", "synthetic/dorsal_r", {"final": {"rank1": 0.5}}) == []
    assert comparison("11k/dorsal_r", "11k/palmar_r", {"final": {"rank1": 0.5}}) == []
    assert [p.method for p in published_for("11k/dorsal_r", "hd/hd")] == ["MBA-Net"]
