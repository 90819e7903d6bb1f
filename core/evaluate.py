"""`python -m core.evaluate --run-dir DIR [--checkpoint best|last|PATH] [--dataset D --root R
--protocol P] [--runs N] [--no-flip] [--rerank [--k1 K1 --k2 K2 --lambda L]] [--json]`.

Evaluates a run's checkpoint on any protocol (its own, another aspect, another dataset),
prints the metrics, and records them in the run's eval.json under "cross", keyed
"<dataset>/<protocol>", so the dashboard can draw a cross-evaluation matrix. The result also
carries the verification figures (`verification`, core.verification) and, with re-ranking
on (`--rerank` or the run's eval.rerank), the k-reciprocal re-ranked metrics (`rerank`,
core.rerank) beside the plain ones, which stay as they are.
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
from core.rerank import rerank_summary
from core.runs import RunDir
from core.training.targets import EvalTarget, eval_target
from core.training.evaluation import evaluate, load_eval_set
from core.training.model import load_checkpoint_model
from core.training.trainer import resolve_device
from core.verification import verification_summary

SHOWN = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def run_config(run: RunDir, overrides: dict | None = None) -> Config:
    """The run's saved config with `overrides` ({dotted.key: value}) applied and checked."""
    saved = run.read_config()
    if not saved:
        raise ConfigError(f"{run.config_path} not found: is {run.path} a run folder?")
    return from_flat(flatten(saved) | (overrides or {}))


def evaluate_checkpoint(run_dir: str | Path, checkpoint: str = "best", dataset: str = "", root: str = "",
                        protocol: str = "", runs: int | None = None, flip: bool | None = None,
                        device: str = "auto", record: bool = True, overrides: dict | None = None) -> dict:
    """Metrics (mean/std over runs and feature statistics) of a run's checkpoint on a protocol.

    Unset dataset/root/protocol default to what the run evaluated on; runs and flip default to
    the run's eval settings; `overrides` ({dotted.key: value}, e.g. {"eval.rerank": True})
    change the run's config for this evaluation. With `record`, the result is stored in
    eval.json["cross"][key].
    """
    run = RunDir.at(run_dir)
    cfg = run_config(run, overrides)
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
    labels, protocol_runs = eval_set.protocol.test["label"].to_numpy(), eval_set.protocol.runs
    result["verification"] = verification_summary(evaluation.features, labels, protocol_runs)
    if cfg.eval.rerank:
        result["rerank"] = rerank_summary(evaluation.features, labels, protocol_runs, cfg.eval.rerank_k1,
                                          cfg.eval.rerank_k2, cfg.eval.rerank_lambda)
    if record:
        cross = run.read_eval().get("cross", {})
        cross[target.key] = result
        run.update_eval(cross=cross)
    return result


def checkpoint_thresholds(run_dir: str | Path, checkpoint: str = "best", flip: bool | None = None,
                          device: str = "auto") -> list[dict]:
    """The verification thresholds (core.verification's "thresholds": run 0, one per FAR target) of
    a run's checkpoint on the run's own protocol (flip defaults to the run's eval.flip)."""
    result = evaluate_checkpoint(run_dir, checkpoint, runs=1, flip=flip, device=device, record=False,
                                 overrides={"eval.rerank": False})
    return result["verification"]["thresholds"]


def _mean_std(result: dict, key: str, label: str = "") -> str:
    value, std = result.get(key), result.get(key + "_std")
    text = "n/a" if value is None else f"{value:.4f}" + ("" if std is None else f" ± {std:.4f}")
    return f"  {label or key:<13} {text}"


def format_result(result: dict) -> str:
    lines = [f"{result['dataset']}/{result['protocol']} ({result['runs']} runs, flip {'on' if result['flip'] else 'off'},"
             f" checkpoint {result['checkpoint']} epoch {result['epoch']})"]
    lines += [f"  {key:<7} {result[key]:.4f} ± {result[key + '_std']:.4f}" for key in SHOWN]
    lines += [f"  {key:<7} {result[key]:.4f}" if result[key] is not None else f"  {key:<7} n/a"
              for key in ("intra", "inter", "ratio", "silhouette")]
    if "verification" in result:
        lines.append("verification")
        lines += [_mean_std(result["verification"], key) for key in ("eer", "tar@far=1e-2", "tar@far=1e-3")]
    if "rerank" in result:
        rerank = result["rerank"]
        lines.append(f"re-ranked (k1 {rerank['k1']}, k2 {rerank['k2']}, lambda {rerank['lambda']})")
        lines += [_mean_std(rerank, key) for key in SHOWN]
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
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranked metrics")
    parser.add_argument("--k1", type=int, help="re-ranking k1 (default: the run's eval.rerank_k1, 20)")
    parser.add_argument("--k2", type=int, help="re-ranking k2, local query expansion (default: eval.rerank_k2, 6)")
    parser.add_argument("--lambda", dest="lambda_", type=float,
                        help="re-ranking weight of the original distance (default: eval.rerank_lambda, 0.3)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def rerank_overrides(args: argparse.Namespace) -> dict:
    """The eval.rerank* config overrides the re-ranking flags ask for (--k1/--k2/--lambda imply --rerank)."""
    given = {"eval.rerank_k1": args.k1, "eval.rerank_k2": args.k2, "eval.rerank_lambda": args.lambda_}
    overrides = {key: value for key, value in given.items() if value is not None}
    if args.rerank or overrides:
        overrides["eval.rerank"] = True
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs is not None and args.runs < 1:
        raise ConfigError(f"--runs {args.runs} is not valid; it must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = evaluate_checkpoint(args.run_dir, args.checkpoint, args.dataset, args.root, args.protocol, args.runs,
                                 False if args.no_flip else None, args.device, overrides=rerank_overrides(args))
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
