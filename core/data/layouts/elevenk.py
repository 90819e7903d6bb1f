"""11k Hands (Afifi): `ROOT/HandInfo.csv` lists every image of `ROOT/Hands/`.

Only the images the CSV lists are read (other files on disk are ignored); a listed image
missing on disk is an error, so a partial download never silently changes the protocol.

Protocols (Baisa et al.): rows with accessories dropped; one protocol per aspect subset
(`dorsal_r`, `dorsal_l`, `palmar_r`, `palmar_l`), each run's gallery the union of one image per
test identity of all four subsets, the other subsets' images being distractors with labels of
their own; and `default` over the whole table. The synthetic writer draws people in this layout.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from core.data import synth
from core.data.layouts import Layout, register
from core.data.protocols import Protocol, assemble, default_protocol, split_identities
from core.data.table import finish_table, require_dir
from core.errors import DataError

HEADER = ["id", "age", "gender", "skinColor", "accessories", "nailPolish", "aspectOfHand", "imageName", "irregularities"]
ASPECTS = {"dorsal right": "dorsal_r", "dorsal left": "dorsal_l", "palmar right": "palmar_r", "palmar left": "palmar_l"}
SUBSETS = tuple(ASPECTS.values())
INT_COLUMNS = ["age", "accessories", "nailPolish", "irregularities"]
CSV_NAME = "HandInfo.csv"
IMAGES = "Hands"
ACCESSORY_FRACTION = 0.05  # of the synthetic photos, showing a ring or a bracelet


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
    hands = require_dir(root / IMAGES, "11k Hands image folder")
    on_disk = set(os.listdir(hands))
    missing = sorted(set(table["imageName"]) - on_disk)
    if missing:
        raise DataError(f"{hands / missing[0]} is listed in {csv_path} but missing on disk ({len(missing)} missing)")
    table.insert(0, "path", [str((hands / name).resolve()) for name in table.pop("imageName")])
    return finish_table(table, csv_path)


def subset_protocol(name: str):
    """The builder of the protocol of aspect subset `name` (the module docstring)."""
    def build(table: pd.DataFrame, seed: int, runs: int) -> Protocol:
        kept = table[table["accessories"] != 1]
        subsets = {s: kept[kept["aspect"] == s] for s in SUBSETS}
        others = {s: rows[rows["identity"].isin(split_identities(rows)[1])] for s, rows in subsets.items() if s != name}
        return assemble(name, subsets[name], seed, runs, others, None, lambda d: d["aspect"] + "/" + d["subject"])
    return build


def _plan(seed: int, identities: int, per_aspect: int) -> list[tuple[int, str, int]]:
    """(person index, aspect, accessory) of every synthetic image, in file order.

    Each person has `per_aspect` plain photos per aspect; a few extra photos (about 5% of
    all) show a ring or a bracelet, so dropping accessory rows keeps every subset whole.
    """
    rng = np.random.default_rng([seed, 1 << 20])
    plain = [(i, aspect) for i in range(identities) for aspect in synth.ASPECTS]
    extra_count = max(1, round(ACCESSORY_FRACTION * len(plain) * per_aspect))
    extra = {}
    for k in rng.choice(len(plain), size=min(extra_count, len(plain)), replace=False):
        extra[plain[k]] = int(rng.integers(1, 3))
    plan = []
    for i in range(identities):
        shots = [(i, a, 0) for a in synth.ASPECTS for _ in range(per_aspect)]
        shots += [(i, a, acc) for (j, a), acc in extra.items() if j == i]
        plan += [shots[k] for k in rng.permutation(len(shots))]
    return plan


def write_synthetic(out: Path, identities: int, seed: int, size: tuple[int, int], per_aspect: int,
                    workers: int | None) -> None:
    """HandInfo.csv and Hands/: all four aspects of `identities` people, spaced 7-digit ids."""
    (out / IMAGES).mkdir(parents=True)
    gaps = np.random.default_rng([seed, 1 << 21]).integers(1, 4, identities)
    ids = [f"{10 + int(v):07d}" for v in np.concatenate([[0], np.cumsum(gaps[1:])])]
    people = [synth.make_person(seed, i) for i in range(identities)]
    rows, jobs = [], []
    for number, (i, aspect, accessory) in enumerate(_plan(seed, identities, per_aspect), start=1):
        name = f"Hand_{number:07d}.jpg"
        p = people[i]
        rows.append([ids[i], p.age, p.gender, synth.tone_name(p), int(accessory > 0), int(p.polish >= 0), aspect,
                     name, 0])
        jobs.append(synth.Shot(seed, i, number, aspect, accessory, size, out / IMAGES / name))
    with open(out / CSV_NAME, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    synth.render_all(jobs, workers)


LAYOUT = register(Layout(
    name="11k", label="11k Hands", read=read_11k,
    protocols={**{s: subset_protocol(s) for s in SUBSETS}, "default": default_protocol},
    detect=lambda root: (root / CSV_NAME).is_file(), write_synthetic=write_synthetic,
    expects=f"{CSV_NAME} and {IMAGES}/", order=0,
))
