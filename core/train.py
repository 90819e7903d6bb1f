"""`python -m core.train --config PATH [--set KEY=VALUE ...] --run-dir DIR [--resume]`.

Trains one run into its run folder (layout: core.runs). Exit codes: 0 succeeded or cancelled
(SIGTERM: the current step finishes and the run ends `cancelled`; it resumes from its last
checkpoint, saved every `train.checkpoint_every` epochs); 2 a user error (bad config, data or
model: `error: <one line>`); 1 an unexpected failure (traceback in train.log). `--resume`
continues exactly after the last checkpoint's epoch; without `--config` it reuses the run's
config.yaml. The heartbeat starts with the process, before the model stack is imported (tens
of seconds on a loaded machine), so a slow start is never taken for a hang.
"""

from __future__ import annotations

import argparse
import contextlib
import traceback

from core.cli import run_cli
from core.errors import ConfigError, HandIDError
from core.runs import RunDir, now
from core.training.lifecycle import heartbeat


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="preset YAML (optional with --resume: the run's config.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--run-dir", required=True, help="run folder to write (created if missing)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    return parser


def resolve_config(config: str | None, overrides: list[str], run: RunDir):
    """The preset plus overrides, or (resuming without a preset) the run's own config; checked
    fully here (keys, ranges, backbone and weights) so that a bad value fails before any work."""
    from core.config import flatten, from_flat, load_config, parse_override, to_dict
    from core.validation import check_config

    if config is not None:
        cfg = load_config(config, overrides)
    else:
        saved = run.read_config()
        if saved is None:
            raise ConfigError(f"--resume without --config needs {run.config_path}, which does not exist")
        cfg = from_flat({**flatten(to_dict(saved)), **dict(parse_override(o) for o in overrides)})
    check_config(cfg)
    return cfg


def train(cfg, run_dir: str, resume: bool = False) -> int:
    """Train `cfg` into `run_dir`; returns the exit code (HandIDError is re-raised after recording it)."""
    # torch and the model stack load only here, so a bad config fails fast and before any work.
    from core.config import to_dict
    from core.training.lifecycle import Cancelled, cancel_on_signals, mark_ended, mark_running, run_logging
    from core.training.trainer import Trainer

    run = RunDir.at(run_dir).create()
    previous = run.read_status() if resume else None
    if not resume:
        run.reset_outputs()
    run.write_config(to_dict(cfg))
    with run_logging(run) as log, cancel_on_signals() as cancel, heartbeat(run):
        mark_running(run, cfg.train.epochs, previous.epoch if previous else 0)
        trainer = Trainer(cfg, run, cancel)
        try:
            trainer.setup(resume)
            trainer.fit()
        except Cancelled:
            mark_ended(run, "cancelled")
            log.warning("cancelled during epoch %d; it resumes after epoch %s, its last checkpoint",
                        trainer.epoch_done + 1, trainer.saved_epoch or 0)
            return 0
        except HandIDError as exc:
            log.error("%s", exc)
            mark_ended(run, "failed", str(exc))
            raise
        except Exception as exc:
            log.exception("training failed")
            mark_ended(run, "failed", traceback.format_exception_only(exc)[-1].strip().splitlines()[0])
            return 1
        mark_ended(run, "succeeded")
        log.info("succeeded: %s", run.path)
        return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = RunDir.at(args.run_dir)
    if args.config is None and not args.resume:
        raise ConfigError("--config is required (it may be left out only with --resume)")
    queued = run.path.is_dir()  # a folder the jobs wrote: it beats from the first moment; a new one is made later
    with heartbeat(run) if queued else contextlib.nullcontext():
        try:
            cfg = resolve_config(args.config, args.set, run)
        except HandIDError as exc:
            if queued:
                run.update_status(state="failed", error=str(exc), ended=now(), updated=now())
            raise
        return train(cfg, args.run_dir, args.resume)


if __name__ == "__main__":
    run_cli(main)
