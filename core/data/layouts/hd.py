"""HD (PolyU hand dorsal, Kumar): `ROOT/Original Images/{1-501,502-712}/<id>_<n>.<ext>`.

Group `1-501` holds the protocol's subjects, `502-712` the extra subjects used as gallery
distractors. The folder may also be spelled `Original_Images`; extension case varies. The file
numbers of the two groups overlap, so a person is the group and the number: as the authors'
preparation script does, the 502-712 numbers are offset by 1000 (`12` and `1012` are two people).

Protocols: `hd` splits the 1-501 subjects (first half train) and puts every 502-712 image in
each gallery as a distractor; `default` splits every subject of both groups.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from core.data import synth
from core.data.layouts import Layout, register
from core.data.protocols import Protocol, assemble, default_protocol
from core.data.table import finish_table, is_image, require_dir
from core.errors import DataError

IMAGE_FOLDERS = ("Original Images", "Original_Images")
TARGET_GROUP, EXTRA_GROUP = GROUPS = ("1-501", "502-712")
GROUP_OFFSET = {TARGET_GROUP: 0, EXTRA_GROUP: 1000}
FILE_NAME = re.compile(r"(\d+)_(\d+)")
EXTRA_SHARE = 213 / 502  # extra subjects per protocol subject on the real data


def images_folder(root: Path) -> Path:
    """`ROOT/Original Images`, or its underscore spelling."""
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"HD folder not found: {root / IMAGE_FOLDERS[0]} (or {IMAGE_FOLDERS[1]})")


def read_hd(root: Path) -> pd.DataFrame:
    """The table of every HD image of both groups; identity and subject are the group's offset
    plus the file's number."""
    base = images_folder(root)
    rows = []
    for group in GROUPS:
        for path in sorted(require_dir(base / group, "HD group folder").iterdir()):
            if not is_image(path):
                continue
            match = FILE_NAME.fullmatch(path.stem)
            if match is None:
                raise DataError(f"HD image name is not <id>_<n>: {path}")
            subject = str(int(match.group(1)) + GROUP_OFFSET[group])
            rows.append({"path": str(path.resolve()), "identity": subject, "subject": subject,
                         "aspect": "dorsal", "group": group})
    return finish_table(pd.DataFrame(rows, columns=["path", "identity", "subject", "aspect", "group"]), base)


def hd_protocol(table: pd.DataFrame, seed: int, runs: int) -> Protocol:
    """The 1-501 subjects split, every 502-712 image a gallery distractor in each run."""
    extra = table[table["group"] == EXTRA_GROUP]
    return assemble("hd", table[table["group"] == TARGET_GROUP], seed, runs, None, extra,
                    lambda d: "hd-extra/" + d["subject"])


def write_synthetic(out: Path, identities: int, seed: int, size: tuple[int, int], per_aspect: int,
                    workers: int | None) -> None:
    """Dorsal right photos of `identities` subjects in 1-501 and about identities*213/502 extra
    subjects in 502-712, both numbered from 1 as on the real data."""
    extra = max(2, round(identities * EXTRA_SHARE))
    jobs = []
    for i in range(identities + extra):
        group = GROUPS[i >= identities]
        folder = out / IMAGE_FOLDERS[0] / group
        folder.mkdir(parents=True, exist_ok=True)
        number = i + 1 - (identities if group == EXTRA_GROUP else 0)
        jobs += [synth.Shot(seed, i, n, "dorsal right", 0, size, folder / f"{number}_{n}.jpg")
                 for n in range(1, per_aspect + 1)]
    synth.render_all(jobs, workers)


LAYOUT = register(Layout(
    name="hd", label="HD (PolyU hand dorsal)", read=read_hd, protocols={"hd": hd_protocol, "default": default_protocol},
    detect=lambda root: any((root / name).is_dir() for name in IMAGE_FOLDERS), write_synthetic=write_synthetic,
    expects=f"'{IMAGE_FOLDERS[0]}/{TARGET_GROUP}'", order=1,
))
