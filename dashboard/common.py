"""Shared dashboard helpers: where runs live, listing and picking runs, links between pages, cached
record reads and showing errors as messages.

Runs are listed only through `jobs.api` (settled states, the user's run names); records are
read through core.runs (typed, and re-read only when their file changes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import Config
from core.errors import HandIDError
from core.runs import ACTIVE_STATES, EvalRecord, RunDir
from core.runs.cache import file_version
from jobs import api as jobs
from jobs.queue import resolve_root

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
REFRESH_SECONDS = 2

_PAGES: dict[str, st.Page] = {}


def checkpoints_root() -> Path:
    """The runs folder (jobs.queue.resolve_root: $HANDID_CHECKPOINTS or ./checkpoints)."""
    return resolve_root()


def list_runs() -> list[jobs.RunInfo]:
    """Every run of the root, settled (jobs.api.list_runs), newest first."""
    return jobs.list_runs(checkpoints_root())


def training_runs() -> list[jobs.RunInfo]:
    """The training runs (evaluation jobs left out)."""
    return [info for info in list_runs() if info.kind == "train"]


def run_label(info: jobs.RunInfo) -> str:
    """How a run is named on every page: its name, then its id."""
    return f"{info.name} · {info.run_id}" if info.name and info.name != info.run_id else info.run_id


def labels_of(infos: list[jobs.RunInfo]) -> dict[str, str]:
    """{run id: label} of these runs."""
    return {info.run_id: run_label(info) for info in infos}


def pick_run(label: str = "Run", key: str = "run") -> RunDir | None:
    """A run selector (by name) that follows and updates the `?run=` query parameter."""
    names = labels_of(training_runs())
    if not names:
        st.info("No runs yet: start one on the New run page.")
        return None
    ids = list(names)
    wanted = st.query_params.get(key)
    index = ids.index(wanted) if wanted in ids else 0
    chosen = st.selectbox(label, ids, index=index, key=f"pick_{key}", format_func=names.get)
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


@st.cache_data(max_entries=64, show_spinner=False)
def _metrics_frame(run_path: str, version: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame(RunDir(Path(run_path)).read_metrics())


def metrics_frame(run: RunDir) -> pd.DataFrame:
    """metrics.jsonl as a DataFrame (one row per record, `kind` = train | eval | prompt), re-read only when it changes."""
    return _metrics_frame(str(run.path), file_version(run.metrics_path))


@st.cache_data(max_entries=64, show_spinner=False)
def _eval_record(run_path: str, version: tuple[int, int]) -> EvalRecord:
    return RunDir(Path(run_path)).read_eval()


def eval_record(run: RunDir) -> EvalRecord:
    """eval.json as its record, re-read only when it changes."""
    return _eval_record(str(run.path), file_version(run.eval_path))


@st.cache_resource(max_entries=256, show_spinner=False)  # shared, not copied: the loss section's class is built at run time
def _config(run_path: str, version: tuple[int, int]) -> Config | None:
    return RunDir(Path(run_path)).read_config()


def run_config(run: RunDir) -> Config | None:
    """config.yaml as the Config dataclass (None for a folder without one), re-read only when it changes.
    Shared between reruns: read it, never change it."""
    return _config(str(run.path), file_version(run.config_path))


def is_active(state: str) -> bool:
    return state in ACTIVE_STATES


def percent(value: object) -> float | None:
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
