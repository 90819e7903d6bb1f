"""Where a split comes from: a dataset kind, its root folder and a protocol name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    dataset: str
    root: str
    protocol: str

    @property
    def key(self) -> str:
        """`<dataset>/<protocol>`: how results on this target are keyed and shown."""
        return f"{self.dataset}/{self.protocol}"
