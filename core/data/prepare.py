"""Generate a config's synthetic dataset if it is missing (the demo's data, `make run`).

Shared by `python -m core.data prepare-demo --config configs/demo.yaml` and the trainer, so
the demo and the tests run the same readers as real data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.config import DataConfig, load_config


def ensure_dataset(data: DataConfig) -> Path:
    """Root of the config's dataset, written by core.data.synth first when synthetic and absent."""
    root = Path(data.root)
    if data.dataset == "synthetic" and not root.exists():
        from core.data.synth import write_dataset

        height, width = data.synth_size
        write_dataset(data.synth_layout, root, data.synth_identities, data.synth_seed, size=(width, height), workers=None)
    return root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="preset whose data section names the dataset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run(args: argparse.Namespace) -> int:
    root = ensure_dataset(load_config(args.config, args.set).data)
    print(root)
    return 0
