"""`python -m core.data {describe,synth,contact-sheet,prepare-demo}`.

Each subcommand lives in its own module, which exposes `add_arguments(parser)` and
`run(args) -> int`.
"""

from __future__ import annotations

import argparse

from core.cli import run_cli
from core.data import contact_sheet, describe, prepare, synth

COMMANDS = {"describe": describe, "synth": synth, "contact-sheet": contact_sheet, "prepare-demo": prepare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    run_cli(main)
