"""A run's evaluation protocol's test table (core.facets.protocol_rows: roles, subjects and the
layout's metadata), rebuilt from its config once per config version, for the Errors page's
facets and the Embeddings page's distractor marks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import HandIDError
from core.facets import protocol_rows
from core.runs import RunDir
from dashboard.common import file_version


@st.cache_data(max_entries=16, show_spinner=False)
def _test_rows(run_path: str, version: tuple[int, int]) -> pd.DataFrame | None:
    cfg = RunDir(Path(run_path)).read_config()
    return None if cfg is None else protocol_rows(cfg)


def test_rows(run: RunDir, without: str) -> pd.DataFrame | None:
    """The table; None, with a caption saying what is missing `without` it, when its dataset cannot
    be read here."""
    try:
        return _test_rows(str(run.path), file_version(run.config_path))
    except HandIDError as exc:
        st.caption(f"Without the dataset table, {without}: {exc}")
        return None
