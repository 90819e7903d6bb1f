"""Shared dashboard helpers: where runs live, picking a run, links between pages, cached run
reads and showing errors as messages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import HandIDError
from core.runs import RunDir, list_runs

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
ACTIVE_STATES = ("queued", "running")
REFRESH_SECONDS = 2

_PAGES: dict[str, st.Page] = {}


def checkpoints_root() -> Path:
    """The runs folder: $HANDID_CHECKPOINTS or ./checkpoints."""
    return Path(os.environ.get("HANDID_CHECKPOINTS", "checkpoints"))


def run_ids() -> list[str]:
    return [r.run_id for r in list_runs(checkpoints_root())]


def pick_run(label: str = "Run", key: str = "run") -> RunDir | None:
    """A run selector that follows and updates the `?run=` query parameter."""
    ids = run_ids()
    if not ids:
        st.info("No runs yet: start one on the New run page.")
        return None
    wanted = st.query_params.get(key)
    index = ids.index(wanted) if wanted in ids else 0
    chosen = st.selectbox(label, ids, index=index, key=f"pick_{key}")
    st.query_params[key] = chosen
    return RunDir(checkpoints_root() / chosen)


def show_error(exc: Exception) -> None:
    """A user error as a one-line message; anything else as a short message, never a traceback."""
    if isinstance(exc, HandIDError):
        st.error(str(exc))
    else:
        st.error(f"{type(exc).__name__}: {exc}")


def register_pages(pages: dict[str, st.Page]) -> None:
    """Remember the app's pages by url path, so pages can link to each other (app.py calls this)."""
    _PAGES.update(pages)


def page_link(url_path: str, label: str, query: dict[str, str] | None = None, icon: str | None = None) -> None:
    """A link to the dashboard page at `url_path` that opens it with the given query parameters."""
    st.page_link(_PAGES[url_path], label=label, icon=icon, query_params=query or {})


def presets() -> list[str]:
    """Names of the YAML presets in configs/, sorted."""
    return sorted(p.name for p in CONFIGS.glob("*.yaml"))


def file_version(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of a file, (0, 0) when missing: the cache key of anything read from it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


@st.cache_data(max_entries=64, show_spinner=False)
def _metrics_frame(run_path: str, version: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame(RunDir(Path(run_path)).read_metrics())


def metrics_frame(run: RunDir) -> pd.DataFrame:
    """metrics.jsonl as a DataFrame (one row per record, `kind` = train | eval), re-read only when it changes."""
    return _metrics_frame(str(run.path), file_version(run.metrics_path))


@st.cache_data(max_entries=64, show_spinner=False)
def _eval_data(run_path: str, version: tuple[int, int]) -> dict[str, Any]:
    return RunDir(Path(run_path)).read_eval()


def eval_data(run: RunDir) -> dict[str, Any]:
    """eval.json, re-read only when it changes."""
    return _eval_data(str(run.path), file_version(run.eval_path))


def percent(value: Any) -> float | None:
    """A metric fraction in [0, 1] as a percentage; None when missing."""
    return None if value is None else 100.0 * float(value)


def duration(seconds: float | None) -> str:
    """Seconds as `1h 02m`, `3m 05s` or `12s`; empty when unknown."""
    if seconds is None or pd.isna(seconds):
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
