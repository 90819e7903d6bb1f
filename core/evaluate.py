"""`python -m core.evaluate --run-dir DIR [--checkpoint best|last|PATH] [--dataset D --root R
--protocol P] [--runs N] [--no-flip] [--json]`.

Evaluates a run's checkpoint on any protocol (its own, another aspect, another dataset),
prints the metrics, and records them in the run's eval.json under "cross", keyed
"<dataset>/<protocol>", so the dashboard can draw a cross-evaluation matrix. `best` is the
checkpoint selected on the validation split (or the last one when none was selected).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.cli import run_cli
from core.config import eval_target
from core.data.protocols import Target
from core.device import resolve_device
from core.errors import ConfigError
from core.evaluation import Extraction, evaluate, load_eval_set
from core.metrics import RETRIEVAL, STATISTICS
from core.model.checkpoint import load_checkpoint_model
from core.runs import CrossResult, RunDir


def evaluate_checkpoint(run_dir: str | Path, checkpoint: str = "best", dataset: str = "", root: str = "",
                        protocol: str = "", runs: int | None = None, flip: bool | None = None,
                        device: str = "auto", record: bool = True) -> CrossResult:
    """Metrics (mean/std over runs and feature statistics) of a run's checkpoint on a protocol.

    Unset dataset/root/protocol default to what the run evaluated on; runs and flip default to
    the run's eval settings. With `record`, the result is stored in eval.json["cross"][key].
    """
    run = RunDir.at(run_dir)
    cfg = run.read_config()
    if cfg is None:
        raise ConfigError(f"{run.config_path} not found: is {run.path} a run folder?")
    own = eval_target(cfg)
    dataset = dataset or own.dataset
    if dataset != own.dataset and not root:
        raise ConfigError(f"--dataset {dataset} differs from the run's {own.dataset}; give --root too")
    target = Target(dataset, root or own.root, protocol or own.protocol)
    runs = cfg.eval.runs if runs is None else runs
    flip = cfg.eval.flip if flip is None else flip
    model, meta = load_checkpoint_model(run.checkpoint(checkpoint))
    torch_device = resolve_device(device)
    model.to(torch_device)
    eval_set = load_eval_set(target, meta.image_size, cfg.data.cache_dir, cfg.eval.seed, runs, torch_device,
                             model.preprocess.interpolation)
    how = Extraction(meta.feature, cfg.eval.batch_size, flip, cfg.train.amp)
    evaluation = evaluate(model, eval_set, how)
    result = CrossResult(epoch=meta.epoch, test=evaluation.test, dataset=target.dataset, root=str(target.root),
                         protocol=eval_set.protocol.name, runs=runs, flip=flip, checkpoint=str(checkpoint))
    if record:
        run.update_eval(lambda r: r.cross.__setitem__(result.key, result))
    return result


def format_result(result: CrossResult) -> str:
    lines = [f"{result.key} ({result.runs} runs, flip {'on' if result.flip else 'off'},"
             f" checkpoint {result.checkpoint} epoch {result.epoch})"]
    test = result.test
    for key, label in RETRIEVAL.items():
        if test.get(key) is not None:
            std = test.get(f"{key}_std")
            lines.append(f"  {label:<25} {test[key]:.4f}" + (f" ± {std:.4f}" if std is not None else ""))
    lines += [f"  {label:<25} {test[key]:.4f}" if test.get(key) is not None else f"  {label:<25} n/a"
              for key, label in STATISTICS.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="run folder holding the checkpoint and config.yaml")
    parser.add_argument("--checkpoint", default="best", help="best (selected on val), last or a .safetensors path")
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
    if args.runs is not None and not 1 <= args.runs <= 1000:
        raise ConfigError(f"--runs {args.runs} is not valid; it must be between 1 and 1000")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = evaluate_checkpoint(args.run_dir, args.checkpoint, args.dataset, args.root, args.protocol, args.runs,
                                 False if args.no_flip else None, args.device)
    print(json.dumps(result.to_json(), indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
