"""Runs page: every run with its state, progress, ETA and best metrics; cancel, resume, compare.

The table refreshes itself every few seconds while a run is queued or running, and stops
refreshing once everything has finished.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard.common import (
    REFRESH_SECONDS,
    checkpoints_root,
    duration,
    is_active,
    labels_of,
    list_runs,
    page_link,
    percent,
    show_error,
)
from dashboard.views import PageSpec
from jobs import api as jobs


PAGE = PageSpec("Runs", "runs", ":material/list:", order=10)

MESSAGE = "runs_message"  # an action's outcome, shown after the rerun it triggers
COLUMNS = {
    "run_id": st.column_config.TextColumn("Run"),
    "name": st.column_config.TextColumn("Name"),
    "kind": st.column_config.TextColumn("Kind"),
    "state": st.column_config.TextColumn("State"),
    "progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0, format="percent"),
    "epochs": st.column_config.TextColumn("Epoch"),
    "eta": st.column_config.TextColumn("ETA"),
    "rank1": st.column_config.NumberColumn("Final rank-1 %", format="%.2f", help="the last epoch, test side"),
    "mAP": st.column_config.NumberColumn("Final mAP %", format="%.2f", help="the last epoch, test side"),
    "selected_mAP": st.column_config.NumberColumn("Selected mAP %", format="%.2f",
                                                  help="test mAP of the epoch selected on validation mAP"),
    "selected_epoch": st.column_config.NumberColumn("Selected epoch", format="%d"),
    "backbone": st.column_config.TextColumn("Backbone"),
    "losses": st.column_config.TextColumn("Losses"),
    "sweep": st.column_config.TextColumn("Sweep"),
    "after": st.column_config.TextColumn("After"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm:ss"),
    "error": st.column_config.TextColumn("Error"),
}


def runs_table(infos: list[jobs.RunInfo]) -> pd.DataFrame:
    """One display row per run, in the order and with the columns of COLUMNS."""
    rows = [
        {
            "run_id": i.run_id,
            "name": i.name,
            "kind": i.kind,
            "state": i.state,
            "progress": i.progress,
            "epochs": f"{round(i.epoch or 0, 1):g}/{i.epochs}" if i.epochs else "",
            "eta": duration(i.eta_seconds) if is_active(i.state) else "",
            "rank1": percent(i.final.get("rank1")),
            "mAP": percent(i.final.get("mAP")),
            "selected_mAP": percent(i.selected.get("mAP")),
            "selected_epoch": i.selected_epoch,
            "backbone": i.backbone,
            "losses": i.losses,
            "sweep": i.sweep_id or "",
            "after": i.after or "",
            "created": datetime.fromtimestamp(i.created) if i.created else pd.NaT,
            "error": i.error or "",
        }
        for i in infos
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def load_runs() -> list[jobs.RunInfo] | None:
    try:
        return list_runs()
    except Exception as exc:  # a broken queue or run folder must not take the page down
        show_error(exc)
        return None


def show_table(infos: list[jobs.RunInfo]) -> None:
    st.dataframe(runs_table(infos), column_config=COLUMNS, hide_index=True, placeholder="")


@st.fragment(run_every=REFRESH_SECONDS)
def live_table() -> None:
    """The table re-read every few seconds; a full rerun once nothing is active drops the timer."""
    infos = load_runs()
    if infos is None:
        return
    show_table(infos)
    if not jobs.active(infos):
        st.rerun(scope="app")


def actions(infos: list[jobs.RunInfo]) -> None:
    """Cancel or resume one selected run."""
    by_id = {i.run_id: i for i in infos}
    chosen = st.selectbox("Run", list(by_id), key="runs_selected", format_func=labels_of(infos).get)
    info = by_id[chosen]
    left, middle, right = st.columns([1, 1, 4])
    cancel = left.button("Cancel", disabled=not is_active(info.state), key="runs_cancel")
    resume = middle.button("Resume", disabled=info.state not in jobs.RESUMABLE, key="runs_resume")
    if info.kind == "train":
        with right:
            page_link("run", f"Open {chosen}", {"run": chosen}, icon=":material/monitoring:")
    try:
        if cancel:
            jobs.cancel(chosen, checkpoints_root())
            st.session_state[MESSAGE] = f"Cancelled {chosen}."
        if resume:
            jobs.resume(chosen, checkpoints_root())
            st.session_state[MESSAGE] = f"Resumed {chosen}: queued again."
    except Exception as exc:
        show_error(exc)
        return
    if cancel or resume:
        st.rerun()  # so the table shows the new state


def compare_picker(infos: list[jobs.RunInfo]) -> None:
    """Pick runs to compare; the link opens the Compare page with ?runs=a,b."""
    names = labels_of([i for i in infos if i.kind == "train"])
    wanted = [r for r in st.query_params.get("runs", "").split(",") if r in names]
    chosen = st.multiselect("Runs to compare", list(names), default=wanted, key="runs_compare", format_func=names.get)
    if chosen:
        st.query_params["runs"] = ",".join(chosen)
        page_link("compare", f"Compare {len(chosen)} runs", {"runs": ",".join(chosen)}, icon=":material/compare:")
    else:
        st.query_params.pop("runs", None)


def render() -> None:
    st.title("Runs")
    if MESSAGE in st.session_state:
        st.success(st.session_state.pop(MESSAGE))
    infos = load_runs()
    if infos is None:
        return
    if not infos:
        st.info(f"No runs in {checkpoints_root()} yet: start one on the New run page.")
        return
    if jobs.active(infos):
        live_table()
    else:
        show_table(infos)
    st.subheader("Selected run")
    actions(infos)
    st.subheader("Compare")
    compare_picker(infos)
