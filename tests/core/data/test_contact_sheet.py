"""Contact sheet: which images it picks, the grid it draws, and the CLI on a synthetic dataset."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import contact_sheet, synth
from core.errors import DataError


def table(identities: list[str], aspects: list[str], per_aspect: int = 2) -> pd.DataFrame:
    rows = [{"path": f"/d/{i}_{a}_{n}.jpg", "identity": i, "aspect": a}
            for i in identities for a in aspects for n in range(per_aspect)]
    return pd.DataFrame(rows)


def test_rows_follow_numeric_identity_order_and_spread_over_aspects():
    frame = table(["10", "9", "100"], ["palmar_r", "dorsal_l", "palmar_l", "dorsal_r"])
    picked = contact_sheet.pick_rows(frame, identities=2, per_identity=4)
    assert [identity for identity, _ in picked] == ["9", "10"]
    # 8 rows sorted by aspect; positions round(linspace(0, 7, 4)) = 0, 2, 5, 7
    assert list(picked[0][1]["aspect"]) == ["dorsal_l", "dorsal_r", "palmar_l", "palmar_r"]
    assert len(contact_sheet.pick_rows(frame, 5, 20)[0][1]) == 8  # never more than there are


def test_cli_draws_one_labelled_row_per_identity(tmp_path):
    root = synth.write_dataset("11k", tmp_path / "ds", identities=3, seed=2, size=(64, 48), images_per_aspect=2)
    parser = argparse.ArgumentParser()
    contact_sheet.add_arguments(parser)
    out = tmp_path / "sheets" / "sheet.png"
    args = parser.parse_args(["--root", str(root), "--out", str(out), "--identities", "2", "--per-identity", "3", "--thumb", "40"])
    assert contact_sheet.run(args) == 0
    sheet = np.asarray(Image.open(out).convert("L")).astype(int)
    cell = 40 + contact_sheet.GAP
    assert sheet.shape == (2 * cell + contact_sheet.GAP, contact_sheet.LABEL_WIDTH + 3 * cell + contact_sheet.GAP)
    for row in range(2):
        top = contact_sheet.GAP + row * cell
        assert sheet[top: top + 40, : contact_sheet.LABEL_WIDTH].min() < 100  # the id is written
        for column in range(3):
            left = contact_sheet.LABEL_WIDTH + column * cell
            assert sheet[top + 15: top + 25, left: left + 40].std() > 3  # a photo, not blank paper


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "7.jpg"
    bad.write_bytes(b"nope")
    frame = pd.DataFrame({"path": [str(bad), str(bad)], "identity": ["7", "8"], "aspect": ["", ""]})
    with pytest.raises(DataError, match="7.jpg"):
        contact_sheet.contact_sheet(frame, thumb=20)
