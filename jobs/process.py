"""Detached processes: start them in their own session, recognise them by pid, signal their group.

A run's process must outlive the dashboard, the shell and the scheduler that started it, so it
gets its own session (and process group, whose id is its pid). Readers that did not start it
tell it is alive from /proc: the pid exists, is not a zombie, and its command line is the
run's command (so a pid reused after a reboot is not mistaken for the run).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from jobs.queue import JobError

ENV_CPU_SLOTS = "HANDID_CPU_SLOTS"
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus the project on PYTHONPATH, so `-m core.train` works from any cwd."""
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def spawn(argv: list[str], cwd: str | Path, log_path: Path, env: dict[str, str] | None = None,
          stdout_path: Path | None = None, die_with_parent: bool = False) -> subprocess.Popen:
    """Start `python ARGV` detached (own session); stderr, and stdout unless stdout_path, appended to
    log_path. `die_with_parent`: killed when the starting process dies (a Ray worker's trainer)."""
    with open(log_path, "ab") as log, open(stdout_path or os.devnull, "wb") as out:
        return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out if stdout_path else log, stderr=log, start_new_session=True,
                                env=child_env(env), preexec_fn=_kill_with_parent if die_with_parent else None)


def _kill_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the thread that started it ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def cmdline(pid: int) -> list[str] | None:
    """The process's arguments; [] for a zombie; None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.decode(errors="replace").split("\0")[:-1]


def is_running(pid: int | None, argv: list[str]) -> bool:
    """Whether pid is a live process running `argv` (a contiguous part of its command line)."""
    if not pid:
        return False
    if not Path("/proc").is_dir():  # no /proc: trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    args = cmdline(pid)
    if not args:
        return False
    n = len(argv)
    return any(args[i:i + n] == argv for i in range(len(args) - n + 1))


def signal_group(pid: int, sig: signal.Signals) -> bool:
    """Send sig to the process group led by pid (the run and any workers it forked)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def slots() -> list[str]:
    """Where runs may run at once: one slot per visible GPU, else $HANDID_CPU_SLOTS (default 1) CPU slots."""
    gpus = _visible_gpus()
    if gpus:
        return gpus
    raw = os.environ.get(ENV_CPU_SLOTS, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise JobError(f"{ENV_CPU_SLOTS}={raw!r} is not valid; give a whole number of at least 1")
    return [f"cpu{i}" for i in range(int(raw))]


def slot_env(slot: str) -> dict[str, str]:
    """Environment that pins a run to its slot: the GPU for a GPU slot, nothing for a CPU slot."""
    return {} if slot.startswith("cpu") else {"CUDA_VISIBLE_DEVICES": slot}


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]
