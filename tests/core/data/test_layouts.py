"""Readers: every layout gives the shared table; bad input raises one-line DataErrors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.data.layouts import read_table
from core.errors import DataError

from .conftest import write_image


def test_11k_reads_listed_images_only_with_clean_ids(elevenk_root: Path) -> None:
    table = read_table("11k", elevenk_root)
    assert list(table.columns[:4]) == ["path", "identity", "subject", "aspect"]
    assert {"age", "gender", "skinColor", "accessories", "nailPolish", "irregularities"} <= set(table.columns)
    assert len(table) == 4 * (5 * 3 + 1)  # the unlisted Hand_9999999.jpg is ignored
    assert sorted(table["identity"].unique()) == [f"{i:07d}" for i in range(1, 6)]  # "0000002 " stripped
    assert (table["identity"] == table["subject"]).all()
    assert table["aspect"].value_counts().to_dict() == {a: 16 for a in ("dorsal_r", "dorsal_l", "palmar_r", "palmar_l")}
    assert table["accessories"].sum() == 4
    assert table["path"].is_monotonic_increasing
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["path"])
    first = table.iloc[0]
    assert (Path(first["path"]).name, first["identity"], first["aspect"]) == ("Hand_0000001.jpg", "0000001", "dorsal_r")


def test_11k_image_listed_but_missing_names_the_file(elevenk_root: Path) -> None:
    (elevenk_root / "Hands" / "Hand_0000005.jpg").unlink()
    with pytest.raises(DataError, match="Hand_0000005.jpg"):
        read_table("11k", elevenk_root)


def test_11k_wrong_header_names_csv_and_expected_header(elevenk_root: Path) -> None:
    csv = elevenk_root / "HandInfo.csv"
    csv.write_text(csv.read_text().replace("aspectOfHand", "aspect", 1))
    with pytest.raises(DataError, match=r"HandInfo\.csv.*id,age,gender,skinColor,accessories,nailPolish,aspectOfHand"):
        read_table("11k", elevenk_root)


def test_11k_missing_csv_and_bad_aspect(elevenk_root: Path) -> None:
    csv = elevenk_root / "HandInfo.csv"
    text = csv.read_text()
    csv.write_text(text.replace("palmar left", "palm left", 1))
    with pytest.raises(DataError, match=r"HandInfo\.csv line \d+: aspectOfHand"):
        read_table("11k", elevenk_root)
    csv.unlink()
    with pytest.raises(DataError, match="HandInfo.csv"):
        read_table("11k", elevenk_root)


@pytest.mark.parametrize("folder", ["Original Images", "Original_Images"])
def test_hd_reads_both_groups_and_spellings(hd_root: Path, folder: str) -> None:
    (hd_root / "Original Images").rename(hd_root / folder)
    table = read_table("hd", hd_root)
    assert len(table) == 5 * 2 + 2 * 3  # notes.txt ignored, .JPG read
    assert table.groupby("group")["identity"].nunique().to_dict() == {"1-501": 5, "502-712": 2}
    assert set(table["aspect"]) == {"dorsal"}
    assert table.loc[table["path"].str.endswith("3_2.JPG"), ["identity", "subject"]].values.tolist() == [["3", "3"]]


def test_hd_missing_group_and_bad_name(hd_root: Path) -> None:
    stray = write_image(hd_root / "Original Images" / "1-501" / "scan-7.jpg")
    with pytest.raises(DataError, match="scan-7.jpg"):
        read_table("hd", hd_root)
    stray.unlink()
    shutil.rmtree(hd_root / "Original Images" / "502-712")
    with pytest.raises(DataError, match="502-712"):
        read_table("hd", hd_root)


def test_folder_layout_any_image_extension(tmp_path: Path) -> None:
    for name in ("alice/a.jpg", "alice/b.PNG", "bob/c.jpeg", "bob/readme.md", "loose.jpg"):
        write_image(tmp_path / name) if not name.endswith(".md") else (tmp_path / name).write_text("x")
    table = read_table("folder", tmp_path)
    assert table[["identity", "subject", "aspect"]].values.tolist() == [
        ["alice", "alice", ""], ["alice", "alice", ""], ["bob", "bob", ""]]


def test_folder_with_one_identity_fails(tmp_path: Path) -> None:
    write_image(tmp_path / "alice" / "a.jpg")
    with pytest.raises(DataError, match="1 identities"):
        read_table("folder", tmp_path)


def test_csv_manifest_relative_absolute_and_extra_columns(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "a.jpg")
    absolute = write_image(tmp_path / "elsewhere" / "b.png")
    (tmp_path / "manifest.csv").write_text(f"path,identity,aspect,site\nimg/a.jpg,p1,dorsal,x\n{absolute},p2,palmar,y\n")
    for root in (tmp_path, tmp_path / "manifest.csv"):
        table = read_table("csv", root)
        assert table["path"].tolist() == [str(absolute), str(tmp_path / "img" / "a.jpg")]
        assert table[["identity", "subject", "aspect", "site"]].values.tolist() == [
            ["p2", "p2", "palmar", "y"], ["p1", "p1", "dorsal", "x"]]


def test_csv_manifest_bad_header_and_missing_image(tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("file,person\na.jpg,p1\n")
    with pytest.raises(DataError, match=r"list\.csv.*path,identity"):
        read_table("csv", csv)
    csv.write_text("path,identity\na.jpg,p1\nb.jpg,p2\n")
    with pytest.raises(DataError, match="a.jpg"):
        read_table("csv", csv)


def test_synthetic_detects_layout(elevenk_root: Path, hd_root: Path, tmp_path: Path) -> None:
    assert read_table("synthetic", elevenk_root).equals(read_table("11k", elevenk_root))
    assert read_table("synthetic", hd_root).equals(read_table("hd", hd_root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="HandInfo.csv"):
        read_table("synthetic", tmp_path / "empty")


def test_missing_root_and_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        read_table("11k", tmp_path / "nowhere")
    with pytest.raises(DataError, match="valid: 11k, hd, folder, csv, synthetic"):
        read_table("flickr", tmp_path)
