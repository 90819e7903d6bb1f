"""Synthetic hands: the real 11k / HD layouts, determinism, and identity that colour alone cannot give."""

from __future__ import annotations

import argparse
import csv
import io

import numpy as np
import pytest
from PIL import Image

from core.data import synth
from core.data.layouts import read_table
from core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def elevenk(tmp_path_factory):
    return synth.write_dataset("11k", tmp_path_factory.mktemp("s") / "11k", identities=3, seed=7, images_per_aspect=2)


def rows(root):
    with open(root / "HandInfo.csv", newline="") as f:
        return list(csv.reader(f))


def test_11k_csv_header_ids_aspects_and_images(elevenk):
    table = rows(elevenk)
    assert table[0] == ["id", "age", "gender", "skinColor", "accessories", "nailPolish", "aspectOfHand", "imageName", "irregularities"]
    body = [dict(zip(table[0], r)) for r in table[1:]]
    # 3 people x 4 aspects x 2 plain photos, plus round(5% of 24) = 1 photo with an accessory
    assert len(body) == 25
    assert sum(r["accessories"] == "1" for r in body) == 1
    ids = list(dict.fromkeys(r["id"] for r in body))
    assert ids[0] == "0000010" and all(len(i) == 7 and i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids) and len(ids) == 3
    for person in ids:
        plain = [r["aspectOfHand"] for r in body if r["id"] == person and r["accessories"] == "0"]
        assert sorted(plain) == sorted(synth.ASPECTS * 2)
    assert [r["imageName"] for r in body] == [f"Hand_{n:07d}.jpg" for n in range(1, 26)]
    assert {r["skinColor"] for r in body} <= {"very fair", "fair", "medium", "dark"}
    assert {r["nailPolish"] for r in body} <= {"0", "1"}
    with Image.open(elevenk / "Hands" / "Hand_0000025.jpg") as image:
        assert image.size == (400, 300) and image.mode == "RGB"


def test_11k_output_is_read_by_the_readers(elevenk):
    table = read_table("synthetic", elevenk)
    assert len(table) == 25
    assert table["identity"].nunique() == 3
    assert set(table["aspect"]) == {"dorsal_r", "dorsal_l", "palmar_r", "palmar_l"}


def test_hd_layout_groups_and_distractors(tmp_path):
    root = synth.write_dataset("hd", tmp_path / "hd", identities=3, seed=1, size=(80, 60), images_per_aspect=2)
    base = root / "Original Images"
    assert sorted(p.name for p in (base / "1-501").iterdir()) == ["1_1.jpg", "1_2.jpg", "2_1.jpg", "2_2.jpg", "3_1.jpg", "3_2.jpg"]
    # round(3 * 213 / 502) = 1 distractor subject, raised to the minimum of 2, numbered from 1 as on the real
    # data: the numbers overlap those of 1-501, and the reader still tells the people apart
    assert sorted(p.name for p in (base / "502-712").iterdir()) == ["1_1.jpg", "1_2.jpg", "2_1.jpg", "2_2.jpg"]
    table = read_table("synthetic", root)
    assert table.groupby("group")["identity"].nunique().to_dict() == {"1-501": 3, "502-712": 2}
    assert sorted(table["identity"].unique()) == ["1", "1001", "1002", "2", "3"]


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    def files(seed, name):
        root = synth.write_dataset("11k", tmp_path / name, identities=2, seed=seed, size=(64, 48), images_per_aspect=2)
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first, again, other = files(3, "a"), files(3, "b"), files(4, "c")
    assert first == again
    assert first.keys() == other.keys() and first != other


def test_refuses_a_non_empty_folder_and_bad_counts(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        synth.write_dataset("11k", tmp_path, identities=2, seed=0)
    with pytest.raises(ConfigError, match="at least 2"):
        synth.write_dataset("hd", tmp_path / "new", identities=1, seed=0)


def test_cli_writes_the_requested_size(tmp_path):
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(["--layout", "hd", "--out", str(tmp_path / "d"), "--identities", "2", "--seed", "5",
                              "--size", "64x48", "--images-per-aspect", "2", "--workers", "1"])
    assert synth.run(args) == 0
    with Image.open(tmp_path / "d" / "Original Images" / "1-501" / "1_1.jpg") as image:
        assert (image.height, image.width) == (64, 48)  # HEIGHTxWIDTH, as every size in the project


def leave_one_out_rank1(features: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose most cosine-similar other image shows the same person."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float((labels[similarity.argmax(axis=1)] == labels).mean())


def silhouette(image: np.ndarray) -> np.ndarray:
    """Skin mask (skin is redder than the grey background) turned upright, cropped from the
    fingertips down by its own size and shrunk to 24x24: a crude hand-shape descriptor."""
    mask = image[..., 0].astype(int) - image[..., 2].astype(int) > 22
    ys, xs = np.nonzero(mask)
    eigenvalues, vectors = np.linalg.eigh(np.cov(np.stack([xs, ys])))
    angle = np.degrees(np.arctan2(vectors[0, 1], vectors[1, 1]))
    upright = Image.fromarray(mask.astype(np.uint8) * 255).rotate(-angle, center=(xs.mean(), ys.mean()))
    mask = np.asarray(upright) > 127
    ys, _ = np.nonzero(mask)
    extent, cx = np.sqrt(mask.sum()), int(xs.mean())
    crop = mask[ys.min(): int(ys.min() + 1.6 * extent), max(0, int(cx - 0.8 * extent)): int(cx + 0.8 * extent)]
    return np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize((24, 24), Image.BILINEAR), float).ravel()


def test_colour_alone_does_not_identify_but_shape_does():
    people, shots = 20, 5
    images, labels = [], []
    for index in range(people):
        person = synth.make_person(11, index)
        for shot in range(shots):
            buffer = io.BytesIO()
            synth.render_hand(person, "dorsal right", np.random.default_rng([11, index, shot]), (200, 150)).save(buffer, "JPEG", quality=85)
            images.append(np.asarray(Image.open(buffer).convert("RGB")))
            labels.append(index)
    labels = np.array(labels)
    histograms = np.stack([np.histogramdd(im.reshape(-1, 3), bins=(8, 8, 8), range=[(0, 256)] * 3)[0].ravel() for im in images])
    shapes = np.stack([silhouette(im) for im in images])
    colour_rank1 = leave_one_out_rank1(histograms, labels)
    shape_rank1 = leave_one_out_rank1(shapes - shapes.mean(axis=0), labels)
    chance = (shots - 1) / (people * shots - 1)
    print(f"colour-histogram rank-1 {colour_rank1:.2f}, silhouette rank-1 {shape_rank1:.2f}, chance {chance:.2f}")
    assert colour_rank1 < 0.4
    assert shape_rank1 > 4 * chance
