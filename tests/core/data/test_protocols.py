"""Protocols: the published Baisa et al. split sizes, run draws, labels and determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.layouts import protocol_names, read_table
from core.data.protocols import Protocol, build_protocol
from core.errors import DataError

SUBSETS = ("dorsal_r", "dorsal_l", "palmar_r", "palmar_l")


def elevenk_table(identities: dict[str, int], images: int = 4) -> pd.DataFrame:
    """An 11k-shaped table: per subset, that many identities with `images` images each, plus
    one accessories image per identity (dropped by the protocol). Ids are spaced, not contiguous."""
    rows = [
        {"path": f"/d/{aspect}/{subject:07d}_{k}.jpg", "identity": f"{subject:07d}", "subject": f"{subject:07d}",
         "aspect": aspect, "accessories": int(k == images)}
        for aspect, count in identities.items()
        for subject in range(3, 3 + 7 * count, 7)
        for k in range(images + 1)
    ]
    return tagged(pd.DataFrame(rows).sort_values("path").reset_index(drop=True), "11k")


def tagged(table: pd.DataFrame, layout: str) -> pd.DataFrame:
    """A table built by hand, tagged with its layout as the readers tag theirs."""
    table.attrs["layout"] = layout
    return table


def hd_table(target_images: list[int], extra_images: list[int]) -> pd.DataFrame:
    """An HD-shaped table: subject i of 1-501 has target_images[i] images, 502-712 likewise (the
    reader's identities: the file number, plus 1000 in 502-712)."""
    rows = [
        {"path": f"/hd/{group}/{number}_{k}.jpg", "identity": str(number + offset), "subject": str(number + offset),
         "aspect": "dorsal", "group": group}
        for group, offset, counts in (("1-501", 0, target_images), ("502-712", 1000, extra_images))
        for number, count in enumerate(counts, start=1)
        for k in range(count)
    ]
    return tagged(pd.DataFrame(rows).sort_values("path").reset_index(drop=True), "hd")


def split_counts(protocol: Protocol) -> tuple[int, int]:
    """Train and test (target) identity counts."""
    targets = protocol.test[protocol.test["role"] == "target"]
    return protocol.train["identity"].nunique(), targets["identity"].nunique()


def test_11k_real_identity_counts_give_published_splits_and_290_gallery() -> None:
    table = elevenk_table(dict(zip(SUBSETS, (143, 146, 143, 151))))
    expected = {"dorsal_r": (72, 71), "dorsal_l": (73, 73), "palmar_r": (72, 71), "palmar_l": (76, 75)}
    for subset, (train_ids, test_ids) in expected.items():
        protocol = build_protocol(table, subset)
        assert split_counts(protocol) == (train_ids, test_ids)
        assert protocol.describe() == {
            "train": {"images": train_ids * 3, "identities": train_ids},  # 4 images, 1 to val
            "val": {"images": train_ids, "identities": train_ids},
            "query": {"images": test_ids * 3, "identities": test_ids},
            "gallery": {"images": 290, "identities": 290},  # 71 + 73 + 71 + 75
        }
        assert protocol.num_classes == train_ids and len(protocol.runs) == 10
        assert (protocol.train["accessories"] == 0).all() and (protocol.test["accessories"] == 0).all()


def test_11k_split_is_by_numeric_id_first_half_train() -> None:
    table = elevenk_table(dict.fromkeys(SUBSETS, 5), images=2)
    protocol = build_protocol(table, "dorsal_l")
    assert protocol.class_names == ["0000003", "0000010", "0000017"]  # ceil(5/2) = 3 train
    targets = protocol.test[protocol.test["role"] == "target"]
    assert sorted(targets["identity"].unique()) == ["0000024", "0000031"]
    assert protocol.train.groupby("identity")["label"].first().to_dict() == {"0000003": 0, "0000010": 1, "0000017": 2}
    assert protocol.val["identity"].tolist() == protocol.class_names  # one val image per train identity
    assert set(protocol.val["path"]).isdisjoint(protocol.train["path"])
    assert protocol.describe(3) == {
        "train": {"images": 3, "identities": 3}, "val": {"images": 3, "identities": 3},
        "query": {"images": 2, "identities": 2}, "gallery": {"images": 8, "identities": 8}}


def test_11k_gallery_of_a_run_is_the_same_whichever_subset_is_the_target() -> None:
    table = elevenk_table(dict.fromkeys(SUBSETS, 9), images=5)
    protocols = [build_protocol(table, subset, seed=4, runs=3) for subset in SUBSETS]
    for run in range(3):
        galleries = [set(p.test["path"].iloc[p.runs[run][1]]) for p in protocols]
        assert all(g == galleries[0] for g in galleries) and len(galleries[0]) == 4 * 4
    assert len({frozenset(protocols[0].test["path"].iloc[r[1]]) for r in protocols[0].runs}) > 1  # runs differ


def test_runs_labels_and_test_rows_are_consistent() -> None:
    protocol = build_protocol(elevenk_table(dict.fromkeys(SUBSETS, 7), images=3), "palmar_r", runs=4)
    test = protocol.test
    used = np.unique(np.concatenate([np.concatenate(run) for run in protocol.runs]))
    assert used.tolist() == list(range(len(test)))  # test holds exactly the images some run uses
    assert test.groupby("label")["identity"].nunique().max() == 1
    assert test.groupby("identity")["label"].nunique().max() == 1
    distractors = test[test["role"] == "distractor"]
    assert distractors["identity"].str.match(r"(dorsal_r|dorsal_l|palmar_l)/\d{7}$").all()
    assert set(distractors["label"]).isdisjoint(test.loc[test["role"] == "target", "label"])
    for query, gallery in protocol.runs:
        assert set(query).isdisjoint(gallery)
        assert (test["role"].iloc[query] == "target").all()
        assert set(test["label"].iloc[query]) <= set(test["label"].iloc[gallery])
        target_gallery = test.iloc[gallery].query("role == 'target'")
        assert target_gallery["label"].value_counts().eq(1).all() and len(target_gallery) == 3
    assert set(protocol.train["identity"]).isdisjoint(test.loc[test["role"] == "target", "identity"])


def test_hd_real_counts_give_published_gallery_and_queries() -> None:
    # 251 test subjects with 2,243 images in all (235 x 9 + 16 x 8); 1,342 distractor images
    # over 213 subjects (64 x 7 + 149 x 6): the published 1,992 queries and 1,593-image gallery.
    table = hd_table([5] * 251 + [9] * 235 + [8] * 16, [7] * 64 + [6] * 149)
    protocol = build_protocol(table, "hd")
    assert protocol.describe(9) == {
        "train": {"images": 251 * 4, "identities": 251}, "val": {"images": 251, "identities": 251},
        "query": {"images": 1992, "identities": 251}, "gallery": {"images": 1593, "identities": 464}}
    distractors = protocol.test[protocol.test["role"] == "distractor"]
    assert len(distractors) == 1342 and distractors["identity"].str.startswith("hd-extra/").all()


def test_default_protocol_splits_own_identities_only() -> None:
    rows = [{"path": f"/f/{p}_{k}.jpg", "identity": p, "subject": p, "aspect": ""} for p in "edcba" for k in range(3)]
    protocol = build_protocol(tagged(pd.DataFrame(rows), "folder"), "default", runs=2)
    assert protocol.class_names == ["a", "b", "c"]
    assert (protocol.test["role"] == "target").all() and sorted(protocol.test["identity"].unique()) == ["d", "e"]
    assert protocol.describe(1) == {
        "train": {"images": 6, "identities": 3}, "val": {"images": 3, "identities": 3},
        "query": {"images": 4, "identities": 2}, "gallery": {"images": 2, "identities": 2}}


def test_single_image_train_identity_stays_in_train() -> None:
    rows = [{"path": f"/f/{p}_{k}.jpg", "identity": p, "subject": p, "aspect": ""}
            for p, n in zip("abcd", (1, 2, 2, 2)) for k in range(n)]
    protocol = build_protocol(tagged(pd.DataFrame(rows), "folder"), "default")
    assert protocol.train["identity"].tolist() == ["a", "b"] and protocol.val["identity"].tolist() == ["b"]


def test_same_seed_same_runs_other_seed_other_draws() -> None:
    table = elevenk_table(dict.fromkeys(SUBSETS, 9), images=6)
    a, b, c = (build_protocol(table, "dorsal_r", seed=s) for s in (1, 1, 2))
    assert a.test.equals(b.test) and a.val.equals(b.val)
    assert all(np.array_equal(x, y) for run_a, run_b in zip(a.runs, b.runs) for x, y in zip(run_a, run_b))
    assert not a.val["path"].equals(c.val["path"])
    assert any(not np.array_equal(run_a[1], run_c[1]) for run_a, run_c in zip(a.runs, c.runs))


def test_protocol_names_and_errors(elevenk_root, hd_root) -> None:
    assert protocol_names(read_table("11k", elevenk_root)) == [*SUBSETS, "default"]
    assert protocol_names(read_table("hd", hd_root)) == ["hd", "default"]
    assert protocol_names("synthetic") == [*SUBSETS, "default", "hd"]
    assert protocol_names("folder") == ["default"]
    with pytest.raises(DataError, match="valid: dorsal_r, dorsal_l, palmar_r, palmar_l, default"):
        build_protocol(read_table("11k", elevenk_root), "dorsal")
    three = pd.DataFrame([{"path": f"/f/{p}.jpg", "identity": p, "subject": p, "aspect": ""} for p in "abc"])
    with pytest.raises(DataError, match="2 train / 1 test"):
        build_protocol(tagged(three, "folder"), "default")
    with pytest.raises(DataError, match="no layout recorded"):
        build_protocol(three.copy().pipe(lambda t: setattr(t, "attrs", {}) or t), "default")


def test_a_protocol_without_any_possible_query_is_refused() -> None:
    once = pd.DataFrame([{"path": f"/f/{p}_{k}.jpg", "identity": p, "subject": p, "aspect": ""}
                         for p, n in zip("abcd", (2, 2, 1, 1)) for k in range(n)])
    with pytest.raises(DataError, match="every test identity has one image, so no query"):
        build_protocol(tagged(once, "folder"), "default")


def test_hd_numbers_shared_by_both_groups_are_two_people() -> None:
    table = hd_table([3] * 4, [3] * 4)  # 502-712 numbered 1..4 too, as on the real data
    default = build_protocol(table, "default")
    assert default.num_classes + default.test["identity"].nunique() == 8  # not 4 merged people
    assert {"1", "1001"} <= set(table["identity"])
