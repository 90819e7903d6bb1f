"""Shared dashboard helpers: where runs live, listing and picking runs, links between pages, cached
record reads, showing errors as messages, and which images a run's pages may show (only those
under its dataset roots: a record naming any other file serves nothing).

Runs are listed only through `jobs.api` (settled states, the user's run names); records are
read through core.runs (typed, and re-read only when their file changes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import Config, eval_target, train_target
from core.errors import DataError, HandIDError
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


DAMAGED = "damaged"  # the state jobs.api gives a run whose folder cannot be read (its error says why)


def readable_runs() -> list[jobs.RunInfo]:
    """The training runs whose folders read; the damaged ones flagged in one warning, each with its problem,
    so that they never take a page's table down."""
    infos = training_runs()
    damaged = [info for info in infos if info.state == DAMAGED]
    if damaged:
        st.warning(plain(f"{len(damaged)} run folder(s) cannot be read and are left out: "
                         + "; ".join(f"{info.run_id} ({info.error})" for info in damaged)))
    return [info for info in infos if info.state != DAMAGED]


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


MARKUP = re.compile(r"([\\`*\[\]<>$~|])|(?<!\w)_|_(?!\w)")  # what Streamlit's markdown would turn into markup


def plain(text: object) -> str:
    """User text (identities, aspects, names, paths, messages that quote them) made literal for the places
    Streamlit renders as markdown (alerts, captions, labels): links, images, HTML, code and emphasis
    escaped. Anything longer goes in st.text or st.dataframe."""
    return MARKUP.sub(lambda m: "\\" + m.group(0), str(text))


def show_error(exc: Exception) -> None:
    """A user error as a one-line message; anything else as a short message, never a traceback."""
    if isinstance(exc, HandIDError):
        st.error(plain(exc))
    else:
        st.error(plain(f"{type(exc).__name__}: {exc}"))


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


def image_roots(run: RunDir) -> list[str]:
    """The folders a run's images may be shown from, resolved: the training and evaluation roots of its
    config and the roots of its cross evaluations (a CSV manifest's folder for a manifest)."""
    config = run_config(run)
    roots = [train_target(config).root, eval_target(config).root] if config is not None else []
    roots += [cross.root for cross in eval_record(run).cross.values()]
    folders = []
    for root in filter(None, roots):
        path = os.path.realpath(Path(root).expanduser())
        folders.append(os.path.dirname(path) if os.path.isfile(path) else path)
    return list(dict.fromkeys(folders))


def outside_roots(paths, roots: list[str]) -> list[str]:
    """The paths that do not lie under any of `roots` once links and `..` are resolved."""
    return [str(p) for p in paths if not any(os.path.commonpath([os.path.realpath(p), root]) == root for root in roots)]


def require_inside_roots(run: RunDir, paths, source: Path) -> None:
    """DataError naming `source` and the first image it names outside the run's dataset roots: its
    pages show no image of such a record."""
    roots = image_roots(run)
    outside = outside_roots(paths, roots)
    if outside:
        raise DataError(f"{source} names {len(outside)} images outside the run's dataset roots "
                        f"({', '.join(roots) or 'none'}), e.g. {outside[0]}; no image of it is shown")
