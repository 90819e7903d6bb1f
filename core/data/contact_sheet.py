"""Draw a contact sheet of a dataset: one row of thumbnails per identity, its id at the start.

A quick look at what a dataset holds (and whether a reader understood it) before training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont, ImageOps

from core.data.layouts import dataset_names, read_table
from core.data.table import identity_order
from core.errors import ConfigError, DataError

LABEL_WIDTH = 110
GAP = 4
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _thumbnail(path: str, thumb: int) -> Image.Image:
    """The image at `path` fitted into a thumb x thumb square (aspect kept, white padding)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (thumb, thumb))
            return ImageOps.pad(image.convert("RGB"), (thumb, thumb), color=BACKGROUND)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc


def pick_rows(table: pd.DataFrame, identities: int, per_identity: int) -> list[tuple[str, pd.DataFrame]]:
    """The first `identities` identities (protocol order), each with up to `per_identity`
    images spread evenly over its rows sorted by aspect, so every aspect tends to show."""
    picked = []
    for identity in identity_order(table["identity"])[:identities]:
        rows = table[table["identity"] == identity].sort_values(["aspect", "path"], kind="stable")
        keep = np.unique(np.linspace(0, len(rows) - 1, min(per_identity, len(rows))).round().astype(int))
        picked.append((identity, rows.iloc[keep]))
    return picked


def contact_sheet(table: pd.DataFrame, identities: int = 8, per_identity: int = 6, thumb: int = 96) -> Image.Image:
    """The sheet for a reader table (columns path, identity, aspect)."""
    picked = pick_rows(table, identities, per_identity)
    columns = max(len(rows) for _, rows in picked)
    font = ImageFont.load_default(size=max(10, thumb // 7))
    small = ImageFont.load_default(size=max(8, thumb // 9))
    cell = thumb + GAP
    sheet = Image.new("RGB", (LABEL_WIDTH + columns * cell + GAP, len(picked) * cell + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for r, (identity, rows) in enumerate(picked):
        top = GAP + r * cell
        draw.text((GAP, top + thumb // 2), identity, fill=INK, font=font, anchor="lm")
        for c, (path, aspect) in enumerate(zip(rows["path"], rows["aspect"])):
            left = LABEL_WIDTH + c * cell
            sheet.paste(_thumbnail(path, thumb), (left, top))
            if aspect:
                draw.text((left + 2, top + thumb - 2), aspect, fill=INK, font=small, anchor="ld")
    return sheet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, required=True, help="dataset root folder (or CSV manifest)")
    parser.add_argument("--dataset", choices=dataset_names(), default="synthetic", help="layout of ROOT (default: synthetic)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--identities", type=int, default=8, help="rows (identities in protocol order)")
    parser.add_argument("--per-identity", type=int, default=6, help="thumbnails per row")
    parser.add_argument("--thumb", type=int, default=96, help="thumbnail width and height in pixels")


def run(args: argparse.Namespace) -> int:
    if min(args.identities, args.per_identity, args.thumb) < 1:
        raise ConfigError("--identities, --per-identity and --thumb must be at least 1")
    sheet = contact_sheet(read_table(args.dataset, args.root), args.identities, args.per_identity, args.thumb)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0
