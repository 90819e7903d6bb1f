"""The one image table every reader returns, and the checks every reader shares.

Columns: `path` (absolute str), `identity` (str: the person a user means), `subject` (str),
`aspect` (str), then layout metadata. Rows are sorted by path so that every seeded draw
over the table is reproducible whatever order the files were listed in.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import DataError

COLUMNS = ["path", "identity", "subject", "aspect"]
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def is_image(path: Path) -> bool:
    """A visible file whose extension (any case) is an image format PIL reads."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def require_dir(path: Path, what: str) -> Path:
    """Return `path` if it is a folder, else raise DataError naming it."""
    if not path.is_dir():
        raise DataError(f"{what} not found: {path}")
    return path


def identity_order(identities) -> list[str]:
    """Distinct identities in protocol order: numeric when all are digits, else by name."""
    unique = sorted({str(i) for i in identities})
    if all(i.isdigit() for i in unique):
        return sorted(unique, key=lambda i: (int(i), i))
    return unique


def finish_table(frame: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Put the shared columns first as strings, sort by path and check each image is listed once
    and there are 2+ identities.

    `attrs["source"]` keeps the file or folder read, so later errors can name it.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"table from {source} lacks columns {missing}")
    frame = frame.copy()
    for column in COLUMNS:
        frame[column] = frame[column].astype(str)
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = frame[COLUMNS + extra].sort_values("path", kind="stable").reset_index(drop=True)
    _refuse_repeats(frame, source)
    count = frame["identity"].nunique()
    if count < 2:
        raise DataError(f"{source} holds {count} identities ({len(frame)} images); at least 2 are needed")
    frame.attrs["source"] = str(source)
    return frame


def _refuse_repeats(frame: pd.DataFrame, source: Path) -> None:
    """An image listed twice would be its own query and gallery match (inflating rank-1); one under
    two identities has no true label: both refused, naming the first such image."""
    repeated = frame[frame["path"].duplicated(keep=False)]
    if repeated.empty:
        return
    path = repeated["path"].iloc[0]
    identities = sorted(set(repeated.loc[repeated["path"] == path, "identity"]))
    if len(identities) > 1:
        raise DataError(f"{source}: image {path} is listed under identities {', '.join(map(repr, identities))}; "
                        "each image must belong to one identity")
    count = int(frame["path"].duplicated().sum())
    raise DataError(f"{source}: image {path} is listed twice ({count} repeated rows); list each image once")
