"""Tiny on-disk datasets in the real 11k Hands and HD layouts, for reader and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.data.layouts.elevenk import HEADER

ELEVENK_ASPECTS = ("dorsal right", "dorsal left", "palmar right", "palmar left")


def write_image(path: Path) -> Path:
    """An 8x6 image at `path` (format from its extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (200, 150, 120)).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")
    return path


@pytest.fixture
def elevenk_root(tmp_path: Path) -> Path:
    """11k layout: ids 1..5 x 4 aspects x 3 images, plus one accessories image of id 1 per
    aspect, an id with a trailing space, and one image on disk the CSV does not list."""
    root = tmp_path / "11k"
    lines = [",".join(HEADER)]
    number = 0
    for aspect in ELEVENK_ASPECTS:
        for subject in range(1, 6):
            for accessories in (0, 0, 0, 1) if subject == 1 else (0, 0, 0):
                number += 1
                name = f"Hand_{number:07d}.jpg"
                write_image(root / "Hands" / name)
                ident = f"{subject:07d}" + (" " if subject == 2 else "")
                lines.append(f"{ident},25,male,fair,{accessories},0,{aspect},{name},0")
    (root / "HandInfo.csv").write_text("\n".join(lines) + "\n")
    write_image(root / "Hands" / "Hand_9999999.jpg")
    return root


@pytest.fixture
def hd_root(tmp_path: Path) -> Path:
    """HD layout: ids 1..5 in 1-501 with 2 images each (mixed extension case), ids 502, 503
    in 502-712 with 3 images each, and a stray text file."""
    base = tmp_path / "hd" / "Original Images"
    for subject in range(1, 6):
        write_image(base / "1-501" / f"{subject}_1.jpg")
        write_image(base / "1-501" / f"{subject}_2.JPG")
    for subject in (502, 503):
        for n in range(1, 4):
            write_image(base / "502-712" / f"{subject}_{n}.jpg")
    (base / "1-501" / "notes.txt").write_text("not an image")
    return tmp_path / "hd"
