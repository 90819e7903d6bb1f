"""Evaluation protocols: identity-disjoint train/val/test splits and seeded query/gallery runs.

Reproduces Baisa et al. (GPA-Net, MBA-Net, CLIP-HandID):
- 11k (`dorsal_r`, `dorsal_l`, `palmar_r`, `palmar_l`): rows with accessories dropped; the
  subset's identities sorted by id, the first ceil(n/2) train, the rest test. Each run draws one
  gallery image per test identity in every subset; the gallery is the union over the four
  subsets, other subsets' images being distractors with labels of their own.
- `hd`: the same split over group 1-501; every gallery also holds all images of 502-712.
- `default` (any table): the same split over all identities, gallery from the test identities only.
Val holds one random image per train identity (that has 2 or more). Every draw is seeded by
(seed, what, subset, run), so a subset's gallery for run k is the same whichever subset is the
target, and the same seed always gives the same protocol.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.readers import read_table
from core.data.table import identity_order
from core.errors import DataError

SUBSETS_11K = ("dorsal_r", "dorsal_l", "palmar_r", "palmar_l")
HD = "hd"
DEFAULT = "default"
HD_TARGET_GROUP, HD_EXTRA_GROUP = "1-501", "502-712"
NAMES_BY_LAYOUT = {"11k": [*SUBSETS_11K, DEFAULT], "hd": [HD, DEFAULT], "generic": [DEFAULT]}
LAYOUT_OF_DATASET = {"11k": "11k", "hd": "hd", "folder": "generic", "csv": "generic"}


@dataclass(frozen=True, eq=False)
class Protocol:
    """Splits of one table. `runs[k]` = (query positions, gallery positions) into `test`."""

    name: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    runs: list[tuple[np.ndarray, np.ndarray]]
    num_classes: int
    class_names: list[str]

    def describe(self, run: int = 0) -> dict[str, dict[str, int]]:
        """Image and identity (distinct label) counts of train, val and run `run`'s query and gallery."""
        if not 0 <= run < len(self.runs):
            raise DataError(f"run {run} out of range: protocol {self.name} has runs 0..{len(self.runs) - 1}")
        query, gallery = self.runs[run]
        parts = {"train": self.train, "val": self.val,
                 "query": self.test.iloc[query], "gallery": self.test.iloc[gallery]}
        return {k: {"images": len(v), "identities": int(v["label"].nunique())} for k, v in parts.items()}


def table_layout(table: pd.DataFrame) -> str:
    """`11k`, `hd` or `generic`, from the columns and values the readers write."""
    if "accessories" in table.columns and table["aspect"].isin(SUBSETS_11K).all():
        return "11k"
    if "group" in table.columns and table["group"].isin([HD_TARGET_GROUP, HD_EXTRA_GROUP]).all():
        return "hd"
    return "generic"


def protocol_names(dataset: str | pd.DataFrame, table: pd.DataFrame | None = None) -> list[str]:
    """Valid protocol names for a table (preferred) or a dataset kind."""
    source = table if table is not None else dataset
    if isinstance(source, pd.DataFrame):
        return list(NAMES_BY_LAYOUT[table_layout(source)])
    if source == "synthetic":
        return list(dict.fromkeys(NAMES_BY_LAYOUT["11k"] + NAMES_BY_LAYOUT["hd"]))
    if source not in LAYOUT_OF_DATASET:
        raise DataError(f"unknown dataset {source!r}; valid: {', '.join([*LAYOUT_OF_DATASET, 'synthetic'])}")
    return list(NAMES_BY_LAYOUT[LAYOUT_OF_DATASET[source]])


def seeded(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator determined by the seed and the keys (strings hashed stably with crc32)."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def split_identities(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Identities in protocol order: the first ceil(n/2) train, the rest test."""
    order = identity_order(rows["identity"])
    cut = math.ceil(len(order) / 2)
    return order[:cut], order[cut:]


def pick_one(rows: pd.DataFrame, rng: np.random.Generator, min_images: int = 1) -> pd.Index:
    """Index labels of one random row per identity (identities with >= min_images rows)."""
    groups = rows.groupby("identity").indices
    picks = [positions[rng.integers(len(positions))]
             for positions in (groups[i] for i in identity_order(groups)) if len(positions) >= min_images]
    return rows.index[np.sort(np.asarray(picks, dtype=int))]


def assemble(
    name: str,
    target: pd.DataFrame,
    seed: int,
    runs: int,
    drawn: dict[str, pd.DataFrame],
    fixed: pd.DataFrame,
    distractor_key: Callable[[pd.DataFrame], pd.Series],
) -> Protocol:
    """Split `target`; each run's gallery = one image per test identity of `target` and of every
    `drawn` pool (drawn pools' images are distractors) plus all of `fixed` (distractors)."""
    train_ids, test_ids = split_identities(target)
    if len(train_ids) < 2 or len(test_ids) < 2:
        raise DataError(
            f"protocol {name} on {target.attrs.get('source', 'the table')}: {len(train_ids)} train / "
            f"{len(test_ids)} test identities; each side needs at least 2"
        )
    labels = {identity: label for label, identity in enumerate(train_ids)}
    train_pool = target[target["identity"].isin(train_ids)]
    val_index = pick_one(train_pool, seeded(seed, "val", name), min_images=2)
    target_test = target[target["identity"].isin(test_ids)]
    draws = [
        {pool: pick_one(rows, seeded(seed, "gallery", pool, run)) for pool, rows in {name: target_test, **drawn}.items()}
        for run in range(runs)
    ]
    drawn_index = pd.Index(sorted({i for draw in draws for pool in drawn for i in draw[pool]}), dtype=int)
    distractors = pd.concat([rows[rows.index.isin(drawn_index)] for rows in drawn.values()] + [fixed])
    distractors = distractors.assign(identity=distractor_key(distractors), role="distractor")
    test = pd.concat([target_test.assign(role="target"), distractors])
    test_labels = {i: label for label, i in enumerate([*test_ids, *sorted(set(distractors["identity"]))])}
    position = pd.Series(np.arange(len(test)), index=test.index)
    fixed_positions = position.iloc[len(test) - len(fixed):].to_numpy()
    run_positions = []
    for draw in draws:
        gallery_index = draw[name].append([draw[pool] for pool in drawn])
        query = position[target_test.index.difference(draw[name])].to_numpy()
        gallery = np.concatenate([position[gallery_index].to_numpy(), fixed_positions])
        run_positions.append((np.sort(query), np.sort(gallery)))
    return Protocol(
        name=name,
        train=with_labels(train_pool.drop(val_index), labels),
        val=with_labels(train_pool.loc[val_index], labels),
        test=with_labels(test, test_labels),
        runs=run_positions,
        num_classes=len(train_ids),
        class_names=list(train_ids),
    )


def with_labels(rows: pd.DataFrame, labels: dict[str, int]) -> pd.DataFrame:
    """Rows with an int `label` column from their identity, positions reset to 0..n-1."""
    return rows.assign(label=rows["identity"].map(labels).astype(int)).reset_index(drop=True)


def build_protocol(table: pd.DataFrame, name: str, seed: int = 0, runs: int = 10) -> Protocol:
    """The named protocol over a reader's table (see the module docstring)."""
    names = protocol_names(table)
    if name not in names:
        raise DataError(
            f"unknown protocol {name!r} for {table.attrs.get('source', 'this table')}; valid: {', '.join(names)}"
        )
    if runs < 1 or seed < 0:
        raise DataError(f"protocol {name}: runs must be >= 1 and seed >= 0 (got runs={runs}, seed={seed})")
    table = table.reset_index(drop=True)
    no_rows = table.iloc[:0]
    if name in SUBSETS_11K:
        kept = table[table["accessories"] != 1]
        subsets = {s: kept[kept["aspect"] == s] for s in SUBSETS_11K}
        others = {s: rows[rows["identity"].isin(split_identities(rows)[1])] for s, rows in subsets.items() if s != name}
        return assemble(name, subsets[name], seed, runs, others, no_rows, lambda d: d["aspect"] + "/" + d["subject"])
    if name == HD:
        extra = table[table["group"] == HD_EXTRA_GROUP]
        return assemble(name, table[table["group"] == HD_TARGET_GROUP], seed, runs, {}, extra,
                        lambda d: "hd-extra/" + d["subject"])
    return assemble(name, table, seed, runs, {}, no_rows, lambda d: d["identity"])


def load_protocol(dataset: str, root: str | Path, name: str = "", seed: int = 0, runs: int = 10) -> Protocol:
    """Read a dataset and build a protocol over it (empty name: the dataset's first protocol).

    A cross protocol is two calls: train on one protocol's train/val, test on another's test.
    """
    table = read_table(dataset, root)
    return build_protocol(table, name or protocol_names(table)[0], seed=seed, runs=runs)
