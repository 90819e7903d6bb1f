"""`python -m jobs`: submit, sweep, chain, study, list, show, logs, cancel, resume, tag, note, ray (and the scheduler loop)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from core.cli import run_cli
from core.errors import ConfigError
from core.runs import FINAL_STATES, RunDir
from jobs import api, backends, scheduler, study_cli, sweeps, tune

# Results are the final epoch's test figures and those of the epoch selected on validation.
COLUMNS = ("id", "name", "state", "progress", "rank1", "mAP", "sel mAP", "sel epoch", "created", "ended", "sweep")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="checkpoints folder (default: $HANDID_CHECKPOINTS or ./checkpoints)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common])


    p = add("submit", "queue one training run; prints its id")
    p.add_argument("--config", required=True, help="preset YAML, e.g. configs/demo.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--name", default="")
    p.add_argument("--after", metavar="RUN_ID", help="start only when this run succeeds, from its best checkpoint")
    backends.add_option(p)

    p = add("sweep", "queue one run per combination of a grid; prints their ids")
    p.add_argument("--config", help="base preset YAML")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="grid axis (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--name", default="")
    p.add_argument("--preset", help="sweep preset YAML (configs/sweeps/NAME.yaml)")
    backends.add_option(p)
    tune.add_arguments(p)

    p = add("chain", "queue stages that run one after another; prints their ids")
    p.add_argument("--preset", required=True, help="chain preset YAML (configs/chains/NAME.yaml)")
    backends.add_option(p)

    study_cli.add_parser(sub, common)

    p = add("list", "every run with state, progress and results (final, and selected on validation)")
    p.add_argument("--json", action="store_true")

    p = add("show", "one run in detail")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")

    p = add("logs", "a run's train.log")
    p.add_argument("run_id")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")

    p = add("cancel", "stop queued or running runs: by id, or a whole sweep at once")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--sweep", help="every run of this sweep id")
    add("resume", "re-queue a failed, cancelled or stopped run").add_argument("run_id")

    p = add("tag", "add or remove a run's tags (kept in its folder, meta.json)")
    p.add_argument("run_id")
    p.add_argument("--add", action="append", default=[], metavar="TAG")
    p.add_argument("--remove", action="append", default=[], metavar="TAG")
    p = add("note", "set a run's free-text note (an empty text clears it)")
    p.add_argument("run_id")
    p.add_argument("text")

    add("scheduler", "(internal) run the scheduler loop in the foreground")
    p = add("ray", "the ray backend: start or stop the local Ray head; (internal) drive a group of runs")
    p.add_argument("action", choices=("start", "stop", "drive"))
    p.add_argument("--group", help="(drive) the group to run")
    p.add_argument("--token", help="(drive) the run root's marker as the submitter read it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.root
    if args.command == "submit":
        print(api.submit(args.config, args.set, name=args.name, after=args.after, root=root, backend=args.backend))
    elif args.command == "sweep":
        print("\n".join(_sweep(args)))
    elif args.command == "chain":
        print("\n".join(api.chain_preset(args.preset, root=root, backend=args.backend)))
    elif args.command == "study":
        study_cli.main(args)
    elif args.command == "list":
        _list(api.list_runs(root), args.json)
    elif args.command == "show":
        info = api.get_run(args.run_id, root)
        print(json.dumps(info.to_dict(), indent=1) if args.json else _show(info))
    elif args.command == "logs":
        _logs(args.run_id, root, args.follow)
    elif args.command == "cancel":
        _cancel(args)
    elif args.command == "resume":
        api.resume(args.run_id, root)
        saved = RunDir.at(api.get_run(args.run_id, root).path).last_path.exists()
        print(f"{args.run_id}: queued again; " + ("it continues after its last checkpoint" if saved else
                                                  "it starts from epoch 1 (no checkpoint was saved)"))
    elif args.command == "tag":
        print(", ".join(api.annotate(args.run_id, args.add, args.remove, root=root).tags) or "(no tags)")
    elif args.command == "note":
        api.annotate(args.run_id, note=args.text, root=root)
        print(f"{args.run_id}: note saved")
    elif args.command == "scheduler":
        return scheduler.main(root)
    elif args.command == "ray":
        from jobs.backends import ray as ray_backend  # imported only here: other commands never import Ray

        return ray_backend.main(args)
    if args.command in ("show", "logs", "cancel", "resume"):  # list, submit and sweep start one already
        api.heal(root)
    return 0


def _sweep(args: argparse.Namespace) -> list[str]:
    options = tune.options_of(args)
    if options is not None and options.search:
        if args.grid or args.preset:
            raise ConfigError("--search samples the values itself; give --space, not --grid or --preset")
        return tune.search(args.config, options, args.set, name=args.name, root=args.root, backend=args.backend)
    if args.preset:
        if args.config or args.grid:
            raise ConfigError("give either --preset or --config with --grid, not both")
        return api.sweep_preset(args.preset, root=args.root, backend=args.backend, tune=options)
    if not args.grid:
        raise ConfigError("a sweep needs --grid KEY=V1,V2,... (or --preset FILE)")
    return api.sweep(args.config, sweeps.parse_grid(args.grid), args.set, name=args.name, root=args.root,
                     backend=args.backend, tune=options)


def _cancel(args: argparse.Namespace) -> None:
    """One run (an error when it already ended), or many at once (those already ended skipped)."""
    ids = list(args.run_ids)
    if args.sweep:
        ids += api.runs_of(api.list_runs(args.root, start_scheduler=False), sweep_id=args.sweep)
    if not ids:
        raise ConfigError("cancel needs run ids or --sweep ID")
    if len(ids) == 1 and not args.sweep:
        left = {ids[0]: api.cancel(ids[0], args.root)}
    else:
        left = api.cancel_many(ids, args.root)
    for run_id, state in left.items():
        print(f"{run_id}: {'stopping (it ends cancelled; resume continues after its last checkpoint)' if state == 'running' else 'cancelled'}")


def _time(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _row(info: api.RunInfo) -> list[str]:
    progress = f"{info.epoch:g}/{info.epochs}" if info.kind == "train" else "-"
    epoch = "-" if info.selected_epoch is None else str(info.selected_epoch)
    return [info.run_id, info.name, info.state, progress, _num(info.final.get("rank1")), _num(info.final.get("mAP")),
            _num(info.selected.get("mAP")), epoch, _time(info.created), _time(info.ended),
            info.sweep_id or info.study_id or "-"]


def _list(infos: list[api.RunInfo], as_json: bool) -> None:
    if as_json:
        print(json.dumps([i.to_dict() for i in infos], indent=1))
        return
    rows = [list(COLUMNS), *(_row(i) for i in infos)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _show(info: api.RunInfo) -> str:
    fields = info.to_dict()
    for key in ("created", "started", "ended"):
        fields[key] = _time(fields[key])
    fields["progress"] = f"{info.progress:.0%} (epoch {info.epoch:g}/{info.epochs})"
    if info.eta_seconds is not None:
        fields["eta_seconds"] = f"{info.eta_seconds:.0f}"
    return "\n".join(f"{k}: {'-' if v is None else v}" for k, v in fields.items())


def _logs(run_id: str, root: str | None, follow: bool) -> None:
    """Print train.log (process.log while there is none), then follow it until the run ends if asked."""
    run = RunDir.at(api.get_run(run_id, root).path)
    path, offset = run.log_path, 0
    while True:
        if offset == 0:
            path = run.log_path if run.log_path.exists() else run.path / "process.log"
        offset = _print_from(path, offset)
        if not follow or api.get_run(run_id, root).state in FINAL_STATES:
            _print_from(path, offset)
            return
        time.sleep(1.0)


def _print_from(path: Path, offset: int) -> int:
    """Print the file from byte offset on; returns the new offset."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset
    sys.stdout.write(data.decode(errors="replace"))
    sys.stdout.flush()
    return offset + len(data)


if __name__ == "__main__":
    run_cli(main)
