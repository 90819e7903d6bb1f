"""The dataset-layout registry: each on-disk layout is one module here that registers itself.

A layout module holds everything about its layout: its file and folder names, its reader
(ROOT -> the shared table, core.data.table), its protocols (name -> builder) and, where the
demo and tests need one, its synthetic writer. `read_table(dataset, root)` dispatches on it,
`synthetic` finds the layout of a generated root, and every table carries the name of the
layout it came from (`table.attrs["layout"]`), so protocols are looked up, never guessed.
Modules are found by scanning this package: a new layout is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataError

SYNTHETIC = "synthetic"  # not a layout: generated data, in the layout its root holds


@dataclass(frozen=True)
class Layout:
    """One on-disk layout.

    `protocols` maps protocol names to builders `(table, seed, runs) -> Protocol`, the first
    being the default. `detect(root)` tells a root of this layout (for synthetic data);
    `write_synthetic(out, identities, seed, size, images_per_aspect, workers)` generates one,
    `size` as (height, width). `root_is_file`: ROOT may name a file (a manifest).
    """

    name: str
    label: str
    read: Callable[[Path], pd.DataFrame]
    protocols: Mapping[str, Callable[..., Any]]
    detect: Callable[[Path], bool] | None = None
    write_synthetic: Callable[..., None] | None = None
    root_is_file: bool = False
    expects: str = ""  # what ROOT must hold, for messages
    order: int = field(default=100)


_LAYOUTS: dict[str, Layout] = {}
_SCANNED = False


def register(layout: Layout) -> Layout:
    _LAYOUTS[layout.name] = layout
    return layout


def layouts() -> dict[str, Layout]:
    """Every registered layout by name, in display order (the package scanned on first use)."""
    global _SCANNED
    if not _SCANNED:
        _SCANNED = True
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_LAYOUTS.items(), key=lambda item: (item[1].order, item[0])))


def get(name: str) -> Layout:
    found = layouts().get(name)
    if found is None:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(dataset_names())}")
    return found


def dataset_names() -> list[str]:
    """Valid `data.dataset` values: every layout, then `synthetic`."""
    return [*layouts(), SYNTHETIC]


def synthetic_layouts() -> list[str]:
    """Layouts with a synthetic writer (valid `data.synth_layout` values)."""
    return [name for name, layout in layouts().items() if layout.write_synthetic is not None]


def detect(root: Path) -> Layout:
    """The layout a generated (synthetic) root holds."""
    for name in synthetic_layouts():
        layout = layouts()[name]
        if layout.detect is not None and layout.detect(root):
            return layout
    expected = "; ".join(f"{layouts()[n].expects} ({n} layout)" for n in synthetic_layouts())
    raise DataError(f"{root} holds no synthetic dataset: expected {expected}")


def read_table(dataset: str, root: str | Path) -> pd.DataFrame:
    """Read the dataset at ROOT into the shared table (see core.data.table), tagged with its layout."""
    if dataset != SYNTHETIC:
        get(dataset)
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset root not found: {root}")
    layout = detect(root) if dataset == SYNTHETIC else get(dataset)
    if not layout.root_is_file and not root.is_dir():
        raise DataError(f"dataset root is not a folder: {root}")
    table = layout.read(root)
    table.attrs["layout"] = layout.name
    return table


def protocol_names(dataset: str | pd.DataFrame) -> list[str]:
    """Valid protocol names of a table (from its layout) or of a dataset kind (synthetic: of every
    layout it may hold), the default first."""
    if isinstance(dataset, pd.DataFrame):
        return list(get(dataset.attrs.get("layout", "")).protocols)
    if dataset == SYNTHETIC:
        return list(dict.fromkeys(p for name in synthetic_layouts() for p in layouts()[name].protocols))
    return list(get(dataset).protocols)
