"""`python -m core.evaluate --run-dir DIR [--checkpoint best|last|PATH] [--dataset D --root R
--protocol P] [--runs N] [--no-flip] [--rerank [--k1 K1 --k2 K2 --lambda L]] [--json]`.

Evaluates a run's checkpoint on any protocol (its own, another aspect, another dataset),
prints the metrics, and records them in the run's eval.json under "cross", keyed
"<dataset>/<protocol>", so the dashboard can draw a cross-evaluation matrix. `best` is the
checkpoint selected on the validation split (or the last one when none was selected). The
result carries the verification figures (EER, TAR@FAR) with their curves and thresholds and,
with re-ranking on (`--rerank` or the run's eval.rerank), the k-reciprocal re-ranked metrics
beside the plain ones, which stay as they are.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.cli import run_cli
from core.config import eval_target, flatten, from_flat, to_dict
from core.data.protocols import Target
from core.device import resolve_device
from core.errors import ConfigError
from core.evaluation import Extraction, evaluate, load_eval_set, rerank_of
from core.metrics import RETRIEVAL, STATISTICS, VERIFICATION
from core.model.checkpoint import load_checkpoint_model
from core.runs import CrossResult, RunDir


def run_config(run: RunDir, overrides: dict | None = None):
    """The run's saved config with `overrides` ({dotted.key: value}) applied and checked."""
    cfg = run.read_config()
    if cfg is None:
        raise ConfigError(f"{run.config_path} not found: is {run.path} a run folder?")
    return from_flat({**flatten(to_dict(cfg)), **(overrides or {})}) if overrides else cfg


def evaluate_checkpoint(run_dir: str | Path, checkpoint: str = "best", dataset: str = "", root: str = "",
                        protocol: str = "", runs: int | None = None, flip: bool | None = None,
                        device: str = "auto", record: bool = True, overrides: dict | None = None) -> CrossResult:
    """Metrics (mean/std over runs, feature statistics, verification) of a run's checkpoint on a protocol.

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
    target = Target(dataset, root or own.root, protocol or own.protocol)
    runs = cfg.eval.runs if runs is None else runs
    flip = cfg.eval.flip if flip is None else flip
    model, meta = load_checkpoint_model(run.checkpoint(checkpoint))
    torch_device = resolve_device(device)
    model.to(torch_device)
    eval_set = load_eval_set(target, meta.image_size, cfg.data.cache_dir, cfg.eval.seed, runs, torch_device,
                             model.preprocess.interpolation)
    how = Extraction(meta.feature, cfg.eval.batch_size, flip, cfg.train.amp)
    evaluation = evaluate(model, eval_set, how, rerank=rerank_of(cfg))
    result = CrossResult(epoch=meta.epoch, test=evaluation.test, rerank=evaluation.rerank, curves=evaluation.curves,
                         dataset=target.dataset, root=str(target.root), protocol=eval_set.protocol.name, runs=runs,
                         flip=flip, checkpoint=str(checkpoint))
    if record:
        run.update_eval(lambda r: r.cross.__setitem__(result.key, result))
    return result


def checkpoint_thresholds(run_dir: str | Path, checkpoint: str = "best", flip: bool | None = None,
                          device: str = "auto") -> list[dict]:
    """The verification thresholds ([{far_target, threshold, far, tar}], run 0) of a run's checkpoint on the
    run's own protocol: from eval.json when the training recorded them for that checkpoint, else evaluated."""
    record = RunDir.at(run_dir).read_eval()
    recorded = {"best": record.selected or record.final, "last": record.final}.get(checkpoint)
    if flip is None and recorded is not None and recorded.curves.get("thresholds"):
        return _points(recorded.curves["thresholds"])
    result = evaluate_checkpoint(run_dir, checkpoint, runs=1, flip=flip, device=device, record=False,
                                 overrides={"eval.rerank": False})
    return _points(result.curves["thresholds"])


def _points(columns: dict[str, list[float]]) -> list[dict]:
    keys = list(columns)
    return [dict(zip(keys, values)) for values in zip(*(columns[k] for k in keys))]


def _line(values: dict, key: str, label: str) -> str:
    value, std = values.get(key), values.get(f"{key}_std")
    text = "n/a" if value is None else f"{value:.4f}" + ("" if std is None else f" ± {std:.4f}")
    return f"  {label:<25} {text}"


def format_result(result: CrossResult) -> str:
    lines = [f"{result.key} ({result.runs} runs, flip {'on' if result.flip else 'off'},"
             f" checkpoint {result.checkpoint} epoch {result.epoch})"]
    lines += [_line(result.test, key, label) for key, label in {**RETRIEVAL, **STATISTICS}.items()]
    lines += ["verification"] + [_line(result.test, key, label) for key, label in VERIFICATION.items()]
    if result.rerank:
        lines += ["re-ranked (k-reciprocal)"] + [_line(result.rerank, key, label) for key, label in RETRIEVAL.items()
                                                 if key in result.rerank]
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
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranked metrics")
    parser.add_argument("--k1", type=int, help="re-ranking k1 (default: the run's eval.rerank_k1, 20); implies --rerank")
    parser.add_argument("--k2", type=int, help="re-ranking k2 (default 6); implies --rerank")
    parser.add_argument("--lambda", dest="lambda_", type=float,
                        help="re-ranking weight of the original distance (default 0.3); implies --rerank")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
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
    if args.runs is not None and not 1 <= args.runs <= 1000:
        raise ConfigError(f"--runs {args.runs} is not valid; it must be between 1 and 1000")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = evaluate_checkpoint(args.run_dir, args.checkpoint, args.dataset, args.root, args.protocol, args.runs,
                                 False if args.no_flip else None, args.device, overrides=rerank_overrides(args))
    print(json.dumps(result.to_json(), indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    run_cli(main)
