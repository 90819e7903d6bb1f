"""Describe a dataset's protocol split: train, val, query and gallery image and identity counts."""

from __future__ import annotations

import argparse
import json

from core.data.layouts import dataset_names
from core.data.protocols import Target, load_protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--dataset --root [--protocol] [--run] [--runs] [--seed] [--json]`."""
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--root", required=True, help="dataset folder (or the manifest CSV for --dataset csv)")
    parser.add_argument("--protocol", default="", help="protocol name (default: the dataset's first)")
    parser.add_argument("--run", type=int, default=0, help="which evaluation run's query/gallery to count")
    parser.add_argument("--runs", type=int, default=10, help="number of seeded evaluation runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def format_counts(counts: dict, title: str) -> str:
    """A small aligned text table of the counts under a title line."""
    lines = [title, f"{'split':<8} {'images':>8} {'identities':>11}"]
    lines += [f"{split:<8} {c['images']:>8} {c['identities']:>11}" for split, c in counts.items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the counts (JSON or table); bad input raises DataError for run_cli to report."""
    protocol = load_protocol(Target(args.dataset, args.root, args.protocol), seed=args.seed, runs=args.runs)
    counts = protocol.describe(args.run)
    if args.json:
        print(json.dumps(counts))
    else:
        print(format_counts(counts, f"{args.dataset} {args.root}: protocol {protocol.name}, run {args.run}, seed {args.seed}"))
    return 0
