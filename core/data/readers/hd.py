"""HD (PolyU hand dorsal, Kumar): `ROOT/Original Images/{1-501,502-712}/<id>_<n>.<ext>`.

Group `1-501` holds the protocol's subjects, `502-712` the extra subjects used as gallery
distractors. The folder may also be spelled `Original_Images`; extension case varies.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from core.data.table import finish_table, is_image, require_dir
from core.errors import DataError

IMAGE_FOLDERS = ("Original Images", "Original_Images")
GROUPS = ("1-501", "502-712")
FILE_NAME = re.compile(r"(\d+)_(\d+)")


def images_folder(root: Path) -> Path:
    """`ROOT/Original Images`, or its underscore spelling."""
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"HD folder not found: {root / IMAGE_FOLDERS[0]} (or {IMAGE_FOLDERS[1]})")


def read_hd(root: Path) -> pd.DataFrame:
    """The table of every HD image of both groups; identity and subject are the file's id."""
    base = images_folder(root)
    rows = []
    for group in GROUPS:
        for path in sorted(require_dir(base / group, "HD group folder").iterdir()):
            if not is_image(path):
                continue
            match = FILE_NAME.fullmatch(path.stem)
            if match is None:
                raise DataError(f"HD image name is not <id>_<n>: {path}")
            subject = match.group(1)
            rows.append({"path": str(path.resolve()), "identity": subject, "subject": subject,
                         "aspect": "dorsal", "group": group})
    return finish_table(pd.DataFrame(rows, columns=["path", "identity", "subject", "aspect", "group"]), base)
