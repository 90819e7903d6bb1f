"""Bring-your-own folder: `ROOT/<identity>/*.<image ext>`, one subfolder per person."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.data.layouts import Layout, register
from core.data.protocols import default_protocol
from core.data.table import finish_table, is_image


def read_folder(root: Path) -> pd.DataFrame:
    """The table of every image one level below ROOT; the subfolder name is the identity."""
    rows = [
        {"path": str(path.resolve()), "identity": folder.name, "subject": folder.name, "aspect": ""}
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
        for path in sorted(folder.iterdir())
        if is_image(path)
    ]
    return finish_table(pd.DataFrame(rows, columns=["path", "identity", "subject", "aspect"]), root)


LAYOUT = register(Layout(name="folder", label="Folder per identity", read=read_folder,
                         protocols={"default": default_protocol}, expects="one folder per identity", order=2))
