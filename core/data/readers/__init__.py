"""`read_table(dataset, root)`: one reader per on-disk layout, all returning the shared table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.data.readers.csv_manifest import read_csv_manifest
from core.data.readers.elevenk import CSV_NAME, read_11k
from core.data.readers.folder import read_folder
from core.data.readers.hd import IMAGE_FOLDERS, read_hd
from core.errors import DataError

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "11k": read_11k,
    "hd": read_hd,
    "folder": read_folder,
    "csv": read_csv_manifest,
}
DATASETS = [*READERS, "synthetic"]


def detect_layout(root: Path) -> str:
    """`11k` when ROOT holds HandInfo.csv, `hd` when it holds Original Images; used for synthetic data."""
    if (root / CSV_NAME).is_file():
        return "11k"
    if any((root / name).is_dir() for name in IMAGE_FOLDERS):
        return "hd"
    raise DataError(f"{root} holds neither {CSV_NAME} (11k layout) nor '{IMAGE_FOLDERS[0]}' (HD layout)")


def read_table(dataset: str, root: str | Path) -> pd.DataFrame:
    """Read the dataset at ROOT into the shared table (see core.data.table)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset root not found: {root}")
    if dataset != "csv" and not root.is_dir():
        raise DataError(f"dataset root is not a folder: {root}")
    layout = detect_layout(root) if dataset == "synthetic" else dataset
    return READERS[layout](root)
