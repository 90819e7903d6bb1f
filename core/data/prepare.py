"""Generate a config's synthetic dataset if it is missing (the demo's data, `make run`).

Shared by `python -m core.data prepare-demo --config configs/demo.yaml` and the trainer, so
the demo and the tests run the same readers as real data. The dataset is written into a
temporary sibling folder and renamed into place, so an interrupted generation never leaves a
half dataset that would be taken for a whole one.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from core.config import DataConfig, load_config


def ensure_dataset(data: DataConfig) -> Path:
    """Root of the config's dataset, written by core.data.synth first when synthetic and absent."""
    root = Path(data.root)
    if data.dataset == "synthetic" and not root.exists():
        from core.data.synth import write_dataset

        partial = root.with_name(f".{root.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            write_dataset(data.synth_layout, partial, data.synth_identities, data.synth_seed,
                          size=tuple(data.synth_size), images_per_aspect=data.synth_images_per_aspect, workers=None)
            os.replace(partial, root)
        except OSError:
            if not root.exists():  # another process did not win the race: a real failure
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="preset whose data section names the dataset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run(args: argparse.Namespace) -> int:
    root = ensure_dataset(load_config(args.config, args.set).data)
    print(root)
    return 0
