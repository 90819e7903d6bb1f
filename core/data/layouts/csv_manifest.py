"""CSV manifest: `path,identity[,aspect,...]`, paths relative to the CSV's folder or absolute.

ROOT is the CSV file itself or a folder holding `manifest.csv`. Extra columns are kept as
metadata; an optional `subject` column (else the identity) and `aspect` column (else "").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.data.layouts import Layout, register
from core.data.protocols import default_protocol
from core.data.table import finish_table
from core.errors import DataError

MANIFEST_NAME = "manifest.csv"
REQUIRED = ["path", "identity"]


def manifest_path(root: Path) -> Path:
    """The CSV file named by ROOT, or ROOT/manifest.csv."""
    path = root / MANIFEST_NAME if root.is_dir() else root
    if not path.is_file():
        raise DataError(f"missing CSV manifest {path} (header: path,identity[,aspect,...])")
    return path


def read_csv_manifest(root: Path) -> pd.DataFrame:
    """The table of the images a CSV manifest lists; every listed image must exist."""
    csv_path = manifest_path(root)
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {csv_path} ({exc}); expected header: path,identity[,aspect,...]") from exc
    frame.columns = [c.strip() for c in frame.columns]
    if any(c not in frame.columns for c in REQUIRED):
        raise DataError(f"{csv_path} has header {','.join(frame.columns)}; expected header: path,identity[,aspect,...]")
    frame = frame.apply(lambda column: column.str.strip())
    empty = (frame["path"] == "") | (frame["identity"] == "")
    if empty.any():
        raise DataError(f"{csv_path} line {int(empty.to_numpy().nonzero()[0][0]) + 2}: empty path or identity")
    paths = [(csv_path.parent / p).resolve() for p in frame["path"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]} is listed in {csv_path} but missing on disk ({len(missing)} missing)")
    frame["path"] = [str(p) for p in paths]
    if "subject" not in frame.columns:
        frame["subject"] = frame["identity"]
    if "aspect" not in frame.columns:
        frame["aspect"] = ""
    return finish_table(frame, csv_path)


LAYOUT = register(Layout(name="csv", label="CSV manifest", read=read_csv_manifest, protocols={"default": default_protocol},
                         root_is_file=True, expects=f"a manifest CSV or a folder holding {MANIFEST_NAME}", order=3))
