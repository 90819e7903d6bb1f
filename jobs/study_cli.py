"""`python -m jobs study create | list | show | cancel`: studies from the shell (jobs.study_runs).

`create NAME --base CONFIG --arm LABEL:KEY=VALUE[,...] ... --seeds N [--set KEY=VALUE ...]
[--reference LABEL]`, or `create [NAME] --preset configs/studies/x.yaml` (--seeds, --set and
--reference then change the preset's); the study id is the last line printed. `show ID` prints the
arms, the sentences and the runs left out; `--json` the summary, `--csv` / `--markdown` a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime
from typing import Any

from core.errors import ConfigError
from core.stats import sentence
from jobs import api, backends, study_runs
from jobs.studies import (ARM_FORMAT, METRICS, TABLES, Study, load_study_preset, new_study, parse_arm, seed_list,
                          to_csv, to_markdown)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The `study` command and its subcommands."""
    study = sub.add_parser("study", help="arms x training seeds with confidence intervals and paired comparisons")
    commands = study.add_subparsers(dest="study_command", required=True)
    p = commands.add_parser("create", help="queue arms x seeds runs; prints the study id last", parents=[common])
    p.add_argument("name", nargs="?", help="the study's name (default: the preset's)")
    p.add_argument("--base", help="base preset YAML, e.g. configs/demo.yaml")
    p.add_argument("--arm", action="append", default=[], metavar="LABEL:KEY=VALUE,...", help=ARM_FORMAT)
    p.add_argument("--seeds", type=int, help="training seeds 0..N-1 (train.seed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every arm")
    p.add_argument("--reference", help="the arm the others are compared with (default: the first)")
    p.add_argument("--preset", help="study preset YAML (configs/studies/NAME.yaml)")
    backends.add_option(p)
    commands.add_parser("list", help="every study with its runs' progress", parents=[common])
    p = commands.add_parser("show", help="arms with mean and 95%% CI, paired comparisons", parents=[common])
    p.add_argument("study_id")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="the summary as JSON (schema in ARCHITECTURE.md)")
    shown.add_argument("--csv", choices=TABLES, help="the arms or the comparisons as CSV")
    shown.add_argument("--markdown", choices=TABLES, help="the arms or the comparisons as a Markdown table")
    commands.add_parser("cancel", help="cancel the study's queued and running runs",
                        parents=[common]).add_argument("study_id")


def main(args: argparse.Namespace) -> None:
    root = args.root
    if args.study_command == "create":
        study = study_runs.create(_definition(args), root, backend=args.backend)
        print(f"queued {len(study.runs)} runs: {len(study.arms)} arms x {len(study.seeds)} seeds")
        print(study.id)
    elif args.study_command == "list":
        _list(study_runs.list_studies(root, on_damaged=lambda exc: print(f"damaged: {exc}", file=sys.stderr)),
              api.list_runs(root, start_scheduler=False))
    elif args.study_command == "show":
        summary = study_runs.summary(study_runs.read_study(args.study_id, root), root=root)
        if args.json:
            print(json.dumps(summary, indent=1))
        elif args.csv or args.markdown:
            sys.stdout.write(to_csv(summary, args.csv) if args.csv else to_markdown(summary, args.markdown))
        else:
            print(_show(summary))
    elif args.study_command == "cancel":
        left = study_runs.cancel(study_runs.read_study(args.study_id, root), root)
        for run_id, state in left.items():
            print(f"{run_id}: {'stopping' if state == 'running' else 'cancelled'}")
        print(f"{len(left)} runs cancelled or stopping; runs already ended are kept")


def _definition(args: argparse.Namespace) -> Study:
    overrides = api.as_dict(args.set)
    if args.preset:
        if args.base or args.arm:
            raise ConfigError("give either --preset or --base with --arm, not both")
        preset = load_study_preset(args.preset)
        return replace(preset, name=args.name or preset.name, overrides={**preset.overrides, **overrides},
                       seeds=preset.seeds if args.seeds is None else seed_list(args.seeds),
                       reference=args.reference or preset.reference)
    if not args.name or not args.arm or args.seeds is None:
        raise ConfigError(f"study create needs NAME, --arm {ARM_FORMAT} (one per arm) and --seeds N, "
                          "or --preset FILE")
    return new_study(args.name, args.base, [parse_arm(a) for a in args.arm], args.seeds, args.reference, overrides)


def _list(studies: list[Study], infos: list[api.RunInfo]) -> None:
    states = {i.run_id: i.state for i in infos}
    rows = [["id", "name", "arms", "seeds", "succeeded", "created"]]
    for s in studies:
        done = sum(states.get(r["run_id"]) == "succeeded" for r in s.runs)
        created = datetime.fromtimestamp(s.created).strftime("%Y-%m-%d %H:%M:%S") if s.created else "-"
        rows.append([s.id, s.name, str(len(s.arms)), str(len(s.seeds)), f"{done}/{len(s.runs)}", created])
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _show(summary: dict[str, Any]) -> str:
    """The arms table (final test figures), one sentence per mAP comparison, and the runs left out."""
    lines = [f"{summary['id']}: {summary['name']}, reference {summary['reference']}, seeds {summary['seeds']}", "",
             to_markdown(summary, "arms", metrics=METRICS)]
    lines += [sentence(c["arm"], c["reference"], c["metric"], c) + "."
              for c in summary["comparisons"] if c["metric"] in ("mAP", "selected_mAP")]
    for label, arm in summary["arms"].items():
        for kind, what in (("failed", "failed or cancelled"), ("pending", "queued or running"),
                           ("stopped", "stopped early by ASHA")):
            if arm[kind]:
                lines.append(f"{label}: {len(arm[kind])} {what} (left out): {', '.join(arm[kind])}")
    return "\n".join(lines)
