"""`python -m core.evaluate --run-dir DIR [--checkpoint best|last|PATH] [--dataset D --root R
--protocol P] [--runs N] [--no-flip] [--json]`.

Evaluates a run's checkpoint on any protocol (its own, another aspect, another dataset),
prints the metrics, and records them in the run's eval.json under "cross", keyed
"<dataset>/<protocol>", so the dashboard can draw a cross-evaluation matrix.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from core.cli import run_cli
from core.config import Config, flatten, from_flat
from core.errors import ConfigError
from core.runs import RunDir
from core.training.targets import EvalTarget, eval_target
from core.training.evaluation import evaluate, load_eval_set
from core.training.model import load_checkpoint_model
from core.training.trainer import resolve_device

SHOWN = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def run_config(run: RunDir) -> Config:
    saved = run.read_config()
    if not saved:
        raise ConfigError(f"{run.config_path} not found: is {run.path} a run folder?")
    return from_flat(flatten(saved))


def evaluate_checkpoint(run_dir: str | Path, checkpoint: str = "best", dataset: str = "", root: str = "",
                        protocol: str = "", runs: int | None = None, flip: bool | None = None,
                        device: str = "auto", record: bool = True) -> dict:
    """Metrics (mean/std over runs and feature statistics) of a run's checkpoint on a protocol.

    Unset dataset/root/protocol default to what the run evaluated on; runs and flip default to
    the run's eval settings. With `record`, the result is stored in eval.json["cross"][key].
    """
    run = RunDir.at(run_dir)
    cfg = run_config(run)
    own = eval_target(cfg)
    dataset = dataset or own.dataset
    if dataset != own.dataset and not root:
        raise ConfigError(f"--dataset {dataset} differs from the run's {own.dataset}; give --root too")
    target = EvalTarget(dataset, root or own.root, protocol or own.protocol)
    runs = cfg.eval.runs if runs is None else runs
    flip = cfg.eval.flip if flip is None else flip
    path = run.checkpoint(checkpoint)
    model, meta = load_checkpoint_model(path)
    torch_device = resolve_device(device)
    model.to(torch_device)
    data = replace(cfg.data, image_size=tuple(meta["image_size"]))
    eval_set = load_eval_set(data, target, cfg.eval.seed, runs, torch_device)
    evaluation = evaluate(model, eval_set, meta.get("feature", cfg.model.feature), cfg.eval.batch_size, flip,
                          cfg.train.amp)
    result = dict(evaluation.metrics, dataset=target.dataset, root=str(target.root), protocol=target.protocol,
                  runs=runs, flip=flip, checkpoint=str(checkpoint), epoch=meta.get("epoch"))
    if record:
        cross = run.read_eval().get("cross", {})
        cross[target.key] = result
        run.update_eval(cross=cross)
    return result


def format_result(result: dict) -> str:
    lines = [f"{result['dataset']}/{result['protocol']} ({result['runs']} runs, flip {'on' if result['flip'] else 'off'},"
             f" checkpoint {result['checkpoint']} epoch {result['epoch']})"]
    lines += [f"  {key:<7} {result[key]:.4f} ± {result[key + '_std']:.4f}" for key in SHOWN]
    lines += [f"  {key:<7} {result[key]:.4f}" if result[key] is not None else f"  {key:<7} n/a"
              for key in ("intra", "inter", "ratio", "silhouette")]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="run folder holding the checkpoint and config.yaml")
    parser.add_argument("--checkpoint", default="best", help="best, last or a .safetensors path (default best)")
    parser.add_argument("--dataset", default="", help="dataset kind (default: the run's evaluation dataset)")
    parser.add_argument("--root", default="", help="dataset folder (needed when --dataset differs)")
    parser.add_argument("--protocol", default="", help="protocol name (default: the run's)")
    parser.add_argument("--runs", type=int, help="query/gallery runs (default: the run's eval.runs)")
    parser.add_argument("--no-flip", action="store_true", help="no flip test-time augmentation")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs is not None and args.runs < 1:
        raise ConfigError(f"--runs {args.runs} is not valid; it must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = evaluate_checkpoint(args.run_dir, args.checkpoint, args.dataset, args.root, args.protocol, args.runs,
                                 False if args.no_flip else None, args.device)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
