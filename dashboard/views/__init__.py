"""The dashboard's pages: each is one module here that declares `PAGE` and a `render()`.

`pages()` finds them by scanning this package (as the loss and layout registries do), in
their declared order, so a new page is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class PageSpec:
    title: str
    url_path: str
    icon: str
    order: int = 100


def pages() -> list[tuple[PageSpec, ModuleType]]:
    """(spec, module) of every page module, in order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "PAGE", None)
        if isinstance(spec, PageSpec):
            found.append((spec, module))
    return sorted(found, key=lambda item: (item[0].order, item[0].url_path))
