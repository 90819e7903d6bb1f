"""11k Hands (Afifi): `ROOT/HandInfo.csv` lists every image of `ROOT/Hands/`.

Only the images the CSV lists are read (other files on disk are ignored); a listed image
missing on disk is an error, so a partial download never silently changes the protocol.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core.data.table import finish_table, require_dir
from core.errors import DataError

HEADER = ["id", "age", "gender", "skinColor", "accessories", "nailPolish", "aspectOfHand", "imageName", "irregularities"]
ASPECTS = {"dorsal right": "dorsal_r", "dorsal left": "dorsal_l", "palmar right": "palmar_r", "palmar left": "palmar_l"}
INT_COLUMNS = ["age", "accessories", "nailPolish", "irregularities"]
CSV_NAME = "HandInfo.csv"


def read_handinfo(csv_path: Path) -> pd.DataFrame:
    """HandInfo.csv as strings, stripped, with its exact header checked."""
    expected = ",".join(HEADER)
    if not csv_path.is_file():
        raise DataError(f"missing {csv_path} (11k Hands needs it, header: {expected})")
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {csv_path} ({exc}); expected header: {expected}") from exc
    if [c.strip() for c in frame.columns] != HEADER:
        raise DataError(f"{csv_path} has header {','.join(frame.columns)}; expected header: {expected}")
    frame.columns = HEADER
    return frame.apply(lambda column: column.str.strip())


def first_line(bad: pd.Series) -> int:
    """CSV line number (header is line 1) of the first row flagged in `bad`."""
    return int(bad.to_numpy().nonzero()[0][0]) + 2


def to_table(info: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """Map HandInfo rows to the shared table columns, checking ids, aspects and integers."""
    bad = ~info["id"].str.fullmatch(r"\d{1,7}")
    if bad.any():
        raise DataError(f"{csv_path} line {first_line(bad)}: id is not a number of up to 7 digits")
    bad = ~info["aspectOfHand"].isin(list(ASPECTS))
    if bad.any():
        raise DataError(f"{csv_path} line {first_line(bad)}: aspectOfHand is not one of {', '.join(ASPECTS)}")
    table = pd.DataFrame({"imageName": info["imageName"], "identity": info["id"].str.zfill(7)})
    table["subject"] = table["identity"]
    table["aspect"] = info["aspectOfHand"].map(ASPECTS)
    for column in INT_COLUMNS:
        values = pd.to_numeric(info[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            raise DataError(f"{csv_path} line {first_line(bad)}: {column} must be an integer")
        table[column] = values.astype(int)
    for column in ["gender", "skinColor"]:
        table[column] = info[column]
    return table


def read_11k(root: Path) -> pd.DataFrame:
    """The table of the 11k Hands images listed by ROOT/HandInfo.csv."""
    csv_path = root / CSV_NAME
    table = to_table(read_handinfo(csv_path), csv_path)
    hands = require_dir(root / "Hands", "11k Hands image folder")
    on_disk = set(os.listdir(hands))
    missing = sorted(set(table["imageName"]) - on_disk)
    if missing:
        raise DataError(f"{hands / missing[0]} is listed in {csv_path} but missing on disk ({len(missing)} missing)")
    table.insert(0, "path", [str((hands / name).resolve()) for name in table.pop("imageName")])
    return finish_table(table, csv_path)
