"""Evaluation protocols: identity-disjoint train/val/test splits and seeded query/gallery runs.

The engine shared by every layout (core.data.layouts), reproducing Baisa et al. (GPA-Net,
MBA-Net, CLIP-HandID): a target set's identities in protocol order, the first ceil(n/2) train,
the rest test; val holds one random image per train identity (that has 2 or more); each run
draws one gallery image per test identity, the other images being queries. A layout's
protocols add distractors: pools drawn like the target (the other 11k subsets) and fixed sets
(HD's 502-712). `default` applies the plain split to any table. Every draw is seeded by
(seed, what, subset, run), so a subset's gallery for run k is the same whichever subset is the
target, and the same seed always gives the same protocol.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.table import identity_order
from core.data.target import Target
from core.errors import DataError

DEFAULT = "default"


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
    drawn: dict[str, pd.DataFrame] | None = None,
    fixed: pd.DataFrame | None = None,
    distractor_key: Callable[[pd.DataFrame], pd.Series] = lambda d: d["identity"],
) -> Protocol:
    """Split `target`; each run's gallery = one image per test identity of `target` and of every
    `drawn` pool (drawn pools' images are distractors) plus all of `fixed` (distractors)."""
    drawn = drawn or {}
    fixed = target.iloc[:0] if fixed is None else fixed
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
    _require_queries(name, target_test)
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


def _require_queries(name: str, target_test: pd.DataFrame) -> None:
    """Every run keeps one image per test identity for the gallery; with one image each there is no query."""
    if (target_test.groupby("identity").size() < 2).all():
        raise DataError(f"protocol {name} on {target_test.attrs.get('source', 'the table')}: every test identity "
                        "has one image, so no query is left once the gallery takes it; each needs 2 or more")


def with_labels(rows: pd.DataFrame, labels: dict[str, int]) -> pd.DataFrame:
    """Rows with an int `label` column from their identity, positions reset to 0..n-1."""
    return rows.assign(label=rows["identity"].map(labels).astype(int)).reset_index(drop=True)


def default_protocol(table: pd.DataFrame, seed: int, runs: int) -> Protocol:
    """The plain split over every identity of the table, gallery from the test identities only."""
    return assemble(DEFAULT, table, seed, runs)


def build_protocol(table: pd.DataFrame, name: str, seed: int = 0, runs: int = 10) -> Protocol:
    """The named protocol of the table's layout (see core.data.layouts)."""
    from core.data.layouts import get

    layout = table.attrs.get("layout")
    if layout is None:
        raise DataError(f"{table.attrs.get('source', 'this table')}: no layout recorded; read it with read_table")
    builders = get(layout).protocols
    if name not in builders:
        raise DataError(
            f"unknown protocol {name!r} for {table.attrs.get('source', 'this table')}; valid: {', '.join(builders)}"
        )
    if runs < 1 or seed < 0:
        raise DataError(f"protocol {name}: runs must be >= 1 and seed >= 0 (got runs={runs}, seed={seed})")
    attrs = dict(table.attrs)
    table = table.reset_index(drop=True)
    table.attrs.update(attrs)
    return builders[name](table, seed, runs)


def load_protocol(target: Target, seed: int = 0, runs: int = 10) -> Protocol:
    """Read a target's dataset and build its protocol (empty protocol name: the layout's first)."""
    from core.data.layouts import protocol_names, read_table

    table = read_table(target.dataset, target.root)
    return build_protocol(table, target.protocol or protocol_names(table)[0], seed=seed, runs=runs)
