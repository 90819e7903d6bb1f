"""Shared command-line behaviour: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from typing import Callable

from core.errors import HandIDError


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run `main`, turning a HandIDError (or a missing file) into `error: ...` and exit 2."""
    try:
        code = main(argv)
        sys.stdout.flush()  # inside the handlers: a reader that went away surfaces here, not at exit
    except HandIDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        # The reader went away (`... | head -1`): not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
