"""Sweeps page: pick a sweep; its swept settings against a chosen metric as parallel coordinates and
one scatter per setting, the runs in a table, runs whose results are bit-identical to another's
flagged (a swept setting that changed nothing), and early-stopped trials (state `stopped`) marked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.runs import RunDir
from core.config import to_dict
from dashboard.common import checkpoints_root, list_runs, metrics_frame, run_config, show_error
from dashboard.study_figures import parallel_figure, parameter_scatter
from dashboard.views import PageSpec
from dashboard.views.compare import config_diff
from dashboard.views.studies import export_png, key_label
from jobs import api as jobs
from jobs.studies import METRICS, SELECTED, identical_results

PAGE = PageSpec("Sweeps", "sweeps", ":material/tune:", order=56)


def swept(infos: list[jobs.RunInfo]) -> pd.DataFrame:
    """Rows: runs; columns: the config keys whose values differ between them (the swept keys), as text."""
    configs = {i.run_id: run_config(RunDir(checkpoints_root() / i.run_id)) for i in infos}
    diff = config_diff({run_id: to_dict(c) if c else {} for run_id, c in configs.items()})
    return diff.T.reindex([i.run_id for i in infos])


def loss_curve(run_id: str) -> list[float]:
    frame = metrics_frame(RunDir(checkpoints_root() / run_id))
    return [] if "loss" not in frame.columns else frame["loss"].dropna().tolist()


def identical_to(infos: list[jobs.RunInfo]) -> dict[str, list[str]]:
    """{run id: the other runs of the sweep with bit-identical results (final, selected and loss curve)}."""
    records = [{"run_id": i.run_id, "final": i.final or None, "selected": i.selected or None,
                "loss": loss_curve(i.run_id)} for i in infos]
    out: dict[str, list[str]] = {}
    for group in identical_results(records, with_loss=True):
        for run_id in group:
            out[run_id] = [other for other in group if other != run_id]
    return out


def sweep_table(infos: list[jobs.RunInfo], keys: pd.DataFrame) -> pd.DataFrame:
    """One row per run: id, name, state, identical-to flag, the swept keys, each metric (final and selected)."""
    same = identical_to(infos)
    about = pd.DataFrame([{"name": i.name, "state": "stopped early" if i.state == "stopped" else i.state,
                           "identical to": ", ".join(same.get(i.run_id, []))} for i in infos],
                         index=[i.run_id for i in infos])
    results = pd.DataFrame([{**{m: i.final.get(m) for m in METRICS},
                             **{SELECTED + m: i.selected.get(m) for m in METRICS}} for i in infos], index=about.index)
    return about.join(keys).join(results).rename_axis("run_id").reset_index()


def pick_sweep(infos: list[jobs.RunInfo]) -> str:
    sweeps = list(dict.fromkeys(i.sweep_id for i in infos))
    wanted = st.query_params.get("sweep")
    chosen = st.selectbox("Sweep", sweeps, index=sweeps.index(wanted) if wanted in sweeps else 0, key="sweeps_pick")
    st.query_params["sweep"] = chosen
    return chosen


def show_sweep(members: list[jobs.RunInfo]) -> None:
    keys = swept(members)
    table = sweep_table(members, keys)
    same = table[table["identical to"] != ""]
    if not same.empty:
        st.warning(f"{len(same)} runs have bit-identical results (metrics and loss curve) to another run of this "
                   "sweep: the setting that differs between them changed nothing. See the `identical to` column.")
    stopped = int((table["state"] == "stopped early").sum())
    if stopped:
        st.info(f"{stopped} trials were stopped early (state `stopped`): crosses in the scatter plots; their "
                "figures are those of the last epoch they reached.")
    left, right = st.columns(2)
    section = left.radio("Results", ["final", "selected"], horizontal=True, key="sweeps_section",
                         format_func=lambda s: "final epoch" if s == "final" else "epoch selected on validation")
    metric = right.selectbox("Metric", METRICS, index=METRICS.index("mAP"), key="sweeps_metric", format_func=key_label)
    column = metric if section == "final" else SELECTED + metric
    st.dataframe(table, hide_index=True, key="sweeps_table", placeholder="–")
    plotted = table.dropna(subset=[column]).assign(state=lambda t: t["state"].replace("stopped early", "stopped"))
    if keys.empty or plotted.empty:
        st.info("Nothing to plot yet: no swept settings differ, or no run has this metric yet.")
        return
    names = list(keys.columns)
    parallel = parallel_figure(plotted, names, column)
    st.plotly_chart(parallel, key="sweeps_parallel")
    export_png(parallel, f"{members[0].sweep_id}-{column}-parallel.png", "sweeps_parallel_png")
    st.plotly_chart(parameter_scatter(plotted, names, column), key="sweeps_scatter")


def render() -> None:
    st.title("Sweeps")
    try:
        infos = [i for i in list_runs() if i.sweep_id and i.kind == "train"]
        if not infos:
            st.info("No sweeps yet: start one from the New run page or `python -m jobs sweep ...`.")
            return
        sweep = pick_sweep(infos)
        show_sweep([i for i in infos if i.sweep_id == sweep])
    except Exception as exc:
        show_error(exc)
