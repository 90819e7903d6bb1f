"""Runs beside the published hand-ID results (core.published), in the papers' mAP convention.

Shown on the Run and Compare pages for runs evaluated on a real 11k or HD protocol (their own
evaluation and cross evaluations); nothing for synthetic data, own datasets or other protocols.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from core.config import train_target
from core.published import NOTE, comparison
from core.runs import Metrics, RunDir
from dashboard.common import eval_record, run_config


def run_results(run: RunDir, name: str = "") -> dict[tuple[str, str], dict[str, Metrics]]:
    """{(train side, test side): {label: test metrics}} of a run: its final and selected results and
    its cross evaluations (labels prefixed with `name` when given)."""
    record, cfg = eval_record(run), run_config(run)
    train = train_target(cfg).key if cfg is not None else record.key
    prefix = f"{name} · " if name else ""
    out: dict[tuple[str, str], dict[str, Metrics]] = {}
    own = out.setdefault((train, record.key), {})
    if record.final:
        own[f"{prefix}final (epoch {record.final.epoch})"] = record.final.test
    if record.selected:
        own[f"{prefix}selected on {record.selection} (epoch {record.selected.epoch})"] = record.selected.test
    for key, result in record.cross.items():
        out.setdefault((train, key), {})[f"{prefix}{result.checkpoint} (epoch {result.epoch})"] = result.test
    return out


def show(runs: Iterable[tuple[RunDir, str]]) -> None:
    """One table per train/test pair with published results: those results, then the runs'."""
    merged: dict[tuple[str, str], dict[str, Metrics]] = {}
    for run, name in runs:
        for sides, results in run_results(run, name).items():
            merged.setdefault(sides, {}).update(results)
    tables = {sides: comparison(*sides, results) for sides, results in merged.items()}
    tables = {sides: rows for sides, rows in tables.items() if rows}
    if not tables:
        return
    st.subheader("Beside the published results")
    for (train, test), rows in tables.items():
        st.text(f"train {train}, test {test}" if train != test else test)
        st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder="–")
    st.caption(NOTE)
