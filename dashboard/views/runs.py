"""Runs page: the runs table researchers know from W&B and MLflow.

Filter by state, sweep, study, backbone, losses, tag and name; group by sweep, study, state or
backbone; add config keys as columns; select rows to compare, cancel, resume, tag or annotate.
Evaluation jobs are listed under the run they evaluate, never among the training runs' results.
The table refreshes itself every few seconds while a run is queued or running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
TABLE = "runs_table"  # the table's selection
MAX_COMPARED = 4
DEFAULT_CONFIG_COLUMNS = 6
COLUMNS = {
    "run_id": st.column_config.TextColumn("Run"),
    "name": st.column_config.TextColumn("Name"),
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
    "tags": st.column_config.TextColumn("Tags"),
    "note": st.column_config.TextColumn("Note"),
    "evaluations": st.column_config.TextColumn("Evaluations", help="evaluation jobs of this run's checkpoint"),
    "sweep": st.column_config.TextColumn("Sweep"),
    "study": st.column_config.TextColumn("Study"),
    "arm": st.column_config.TextColumn("Arm"),
    "seed": st.column_config.NumberColumn("Seed", format="%d"),
    "after": st.column_config.TextColumn("After"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm:ss"),
    "error": st.column_config.TextColumn("Error"),
}
EVAL_COLUMNS = {
    "of_run": st.column_config.TextColumn("Of run"),
    "run_id": st.column_config.TextColumn("Job"),
    "name": st.column_config.TextColumn("Evaluation"),
    "state": st.column_config.TextColumn("State"),
    "rank1": st.column_config.NumberColumn("rank-1 %", format="%.2f"),
    "mAP": st.column_config.NumberColumn("mAP %", format="%.2f"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm:ss"),
    "error": st.column_config.TextColumn("Error"),
}
NONE = "(none)"
GROUPS: dict[str, Callable[[jobs.RunInfo], str]] = {
    "sweep": lambda i: i.sweep_id or NONE,
    "study": lambda i: i.study_id or NONE,
    "state": lambda i: i.state,
    "backbone": lambda i: i.backbone or NONE,
}


# the table

def _created(info: jobs.RunInfo) -> Any:
    return datetime.fromtimestamp(info.created) if info.created else pd.NaT


def evaluations_text(evaluations: list[jobs.RunInfo]) -> str:
    """`2: 1 succeeded, 1 running` for a run's evaluation jobs; empty without any."""
    if not evaluations:
        return ""
    states = pd.Series([e.state for e in evaluations]).value_counts()
    return f"{len(evaluations)}: " + ", ".join(f"{n} {state}" for state, n in states.items())


def _row(info: jobs.RunInfo, evaluations: list[jobs.RunInfo]) -> dict[str, Any]:
    return {
        "run_id": info.run_id, "name": info.name, "state": info.state, "progress": info.progress,
        "epochs": f"{round(info.epoch or 0, 1):g}/{info.epochs}" if info.epochs else "",
        "eta": duration(info.eta_seconds) if is_active(info.state) else "",
        "rank1": percent(info.final.get("rank1")), "mAP": percent(info.final.get("mAP")),
        "selected_mAP": percent(info.selected.get("mAP")), "selected_epoch": info.selected_epoch,
        "backbone": info.backbone, "losses": info.losses, "tags": ", ".join(info.tags), "note": info.note,
        "evaluations": evaluations_text(evaluations), "sweep": info.sweep_id or "", "study": info.study_id or "",
        "arm": info.arm or "", "seed": info.seed, "after": info.after or "", "created": _created(info),
        "error": info.error or "",
    }


def runs_table(infos: list[jobs.RunInfo], evaluations: dict[str, list[jobs.RunInfo]] | None = None,
               config_keys: list[str] = ()) -> pd.DataFrame:
    """One row per training run (evaluation jobs only counted, in `evaluations`), the columns of COLUMNS
    then the chosen config keys (dotted, values as text)."""
    evaluations = evaluations or {}
    table = pd.DataFrame([_row(i, evaluations.get(i.run_id, [])) for i in infos], columns=list(COLUMNS))
    for key in config_keys:
        table[key] = [_text(jobs.run_settings(i).get(key)) for i in infos]
    return table


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def evaluations_of(infos: list[jobs.RunInfo]) -> dict[str, list[jobs.RunInfo]]:
    """{run id: its evaluation jobs}."""
    out: dict[str, list[jobs.RunInfo]] = {}
    for info in infos:
        if info.kind == "evaluate" and info.target:
            out.setdefault(info.target, []).append(info)
    return out


def evaluation_table(runs: list[jobs.RunInfo], evaluations: dict[str, list[jobs.RunInfo]]) -> pd.DataFrame:
    """The evaluation jobs of these runs, each under its run (by name), in the runs' order."""
    names = labels_of(runs)
    rows = [{"of_run": names[run.run_id], "run_id": e.run_id, "name": e.name, "state": e.state,
             "rank1": percent(e.final.get("rank1")), "mAP": percent(e.final.get("mAP")), "created": _created(e),
             "error": e.error or ""}
            for run in runs for e in evaluations.get(run.run_id, [])]
    return pd.DataFrame(rows, columns=list(EVAL_COLUMNS))


def differing_keys(infos: list[jobs.RunInfo]) -> list[str]:
    """The config keys whose values differ between these training runs, sorted."""
    settings = [jobs.run_settings(i) for i in infos]
    keys = sorted({k for s in settings for k in s})
    return [k for k in keys if len({repr(s.get(k)) for s in settings}) > 1]


def group_summary(infos: list[jobs.RunInfo], by: str) -> pd.DataFrame:
    """Per group: runs, how many succeeded, mean final mAP and best selected mAP (%)."""
    rows = {}
    for info in infos:
        rows.setdefault(GROUPS[by](info), []).append(info)
    return pd.DataFrame([
        {by: group, "runs": len(members), "succeeded": sum(m.state == "succeeded" for m in members),
         "mean final mAP %": _mean([percent(m.final.get("mAP")) for m in members]),
         "best selected mAP %": _max([percent(m.selected.get("mAP")) for m in members])}
        for group, members in rows.items()
    ])


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


# filters

@dataclass
class RunFilter:
    """What the table shows: every chosen value of a field must match (an empty choice matches all)."""

    states: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    backbones: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    text: str = ""  # in the name or the id, any case

    def keeps(self, info: jobs.RunInfo) -> bool:
        chosen = ((self.states, info.state), (self.sweeps, info.sweep_id), (self.studies, info.study_id),
                  (self.backbones, info.backbone), (self.losses, info.losses))
        if any(values and value not in values for values, value in chosen):
            return False
        if self.tags and not set(self.tags) & set(info.tags):
            return False
        text = self.text.strip().lower()
        return not text or text in info.name.lower() or text in info.run_id.lower()

    def apply(self, infos: list[jobs.RunInfo]) -> list[jobs.RunInfo]:
        return [i for i in infos if self.keeps(i)]


def _options(values) -> list[str]:
    return sorted({v for v in values if v})


def filter_widgets(runs: list[jobs.RunInfo]) -> RunFilter:
    """Filters of the training runs, each offering the values present."""
    choices = {
        "states": ("State", [i.state for i in runs]), "sweeps": ("Sweep", [i.sweep_id for i in runs]),
        "studies": ("Study", [i.study_id for i in runs]), "backbones": ("Backbone", [i.backbone for i in runs]),
        "losses": ("Losses", [i.losses for i in runs]), "tags": ("Tag", [t for i in runs for t in i.tags]),
    }
    columns = st.columns(len(choices) + 1)
    text = columns[0].text_input("Name contains", key="runs_f_text")
    picked = {name: column.multiselect(label, _options(values), key=f"runs_f_{name}")
              for column, (name, (label, values)) in zip(columns[1:], choices.items())}
    return RunFilter(text=text, **picked)


# showing

def show_table(runs: list[jobs.RunInfo], evaluations: dict[str, list[jobs.RunInfo]],
               config_keys: list[str], group: str | None) -> list[str]:
    """The table (grouped: sorted by group, a group column first, a summary above); the ids selected."""
    if group:
        runs = sorted(runs, key=GROUPS[group])  # stable: newest first within a group
        st.dataframe(group_summary(runs, group), hide_index=True, key="runs_groups", placeholder="–",
                     column_config={c: st.column_config.NumberColumn(format="%.2f")
                                    for c in ("mean final mAP %", "best selected mAP %")})
    table = runs_table(runs, evaluations, config_keys)
    column_config: dict[str, Any] = dict(COLUMNS)
    if group:
        table.insert(0, "group", [GROUPS[group](i) for i in runs])
        column_config["group"] = st.column_config.TextColumn(group.capitalize())
    event = st.dataframe(table, column_config=column_config, hide_index=True, placeholder="", key=TABLE,
                         on_select="rerun", selection_mode="multi-row")
    return [table["run_id"].iloc[r] for r in event.selection.rows if r < len(table)]


def show_evaluations(runs: list[jobs.RunInfo], evaluations: dict[str, list[jobs.RunInfo]]) -> None:
    table = evaluation_table(runs, evaluations)
    if not table.empty:
        with st.expander(f"Evaluation jobs of these runs ({len(table)})"):
            st.dataframe(table, column_config=EVAL_COLUMNS, hide_index=True, placeholder="", key="runs_evals")


def body(infos: list[jobs.RunInfo]) -> None:
    """Filters, table, evaluation jobs and the actions on the selected runs."""
    runs = [i for i in infos if i.kind == "train"]
    evaluations = evaluations_of(infos)
    chosen = filter_widgets(runs).apply(runs)
    left, right = st.columns([1, 3])
    group = left.selectbox("Group by", [None, *GROUPS], key="runs_group", format_func=lambda g: g or "nothing")
    keys = sorted({k for i in runs for k in jobs.run_settings(i)})
    config_keys = right.multiselect("Config columns", keys, default=differing_keys(runs)[:DEFAULT_CONFIG_COLUMNS],
                                    key="runs_config_columns")
    st.caption(f"{len(chosen)} of {len(runs)} training runs. Select rows to compare, cancel, tag or annotate them.")
    selected = show_table(chosen, evaluations, config_keys, group)
    show_evaluations(chosen, evaluations)
    actions({i.run_id: i for i in runs}, selected)


@st.fragment(run_every=REFRESH_SECONDS)
def live_body() -> None:
    """`body` re-read every few seconds; a full rerun once nothing is active drops the timer."""
    infos = load_runs()
    if infos is None:
        return
    body(infos)
    if not jobs.active(infos):
        st.rerun(scope="app")


def load_runs() -> list[jobs.RunInfo] | None:
    try:
        return list_runs()
    except Exception as exc:  # a broken queue or run folder must not take the page down
        show_error(exc)
        return None


# actions on the selected runs

def actions(by_id: dict[str, jobs.RunInfo], selected: list[str]) -> None:
    st.subheader("Selected runs")
    if not selected:
        st.caption("Select rows of the table (the boxes at their left) to act on those runs.")
        return
    infos = [by_id[r] for r in selected]
    names = labels_of(infos)
    st.text("\n".join(names[r] for r in selected))
    links(selected)
    try:
        control(infos)
        annotate(infos)
    except Exception as exc:
        show_error(exc)


def links(selected: list[str]) -> None:
    """Open one run; compare two to four."""
    left, right = st.columns(2)
    if len(selected) == 1:
        with left:
            page_link("run", "Open run", {"run": selected[0]}, icon=":material/monitoring:")
    with right:
        if 2 <= len(selected) <= MAX_COMPARED:
            page_link("compare", f"Compare {len(selected)} runs", {"runs": ",".join(selected)},
                      icon=":material/compare:")
        elif len(selected) > MAX_COMPARED:
            st.caption(f"Compare takes at most {MAX_COMPARED} runs.")


def control(infos: list[jobs.RunInfo]) -> None:
    """Cancel the active runs of the selection; resume the resumable ones."""
    active = [i.run_id for i in infos if is_active(i.state)]
    resumable = [i.run_id for i in infos if i.state in jobs.RESUMABLE]
    left, right, _ = st.columns([1, 1, 3])
    if left.button(f"Cancel {len(active)}", disabled=not active, key="runs_cancel"):
        left_in = jobs.cancel_many(active, checkpoints_root())
        done(f"Cancelled {', '.join(r for r, s in left_in.items() if s == 'cancelled') or 'none'}"
             + (f"; stopping {', '.join(r for r, s in left_in.items() if s == 'running')}"
                if "running" in left_in.values() else "") + ".")
    if right.button(f"Resume {len(resumable)}", disabled=not resumable, key="runs_resume"):
        for run_id in resumable:
            jobs.resume(run_id, checkpoints_root())
        done(f"Resumed {', '.join(resumable)}: queued again.")


def annotate(infos: list[jobs.RunInfo]) -> None:
    """Add or remove tags of the selected runs; edit the note of one."""
    left, right = st.columns(2)
    with left.form("runs_tags", border=False):
        add = st.text_input("Add tags (comma-separated)", key="runs_tag_add")
        remove = st.multiselect("Remove tags", _options(t for i in infos for t in i.tags), key="runs_tag_remove")
        if st.form_submit_button("Apply to the selected runs", key="runs_tag_apply"):
            tags = [t for t in add.split(",") if t.strip()]
            for info in infos:
                jobs.annotate(info.run_id, tags, remove, root=checkpoints_root())
            done(f"Tags updated on {len(infos)} run(s).")
    if len(infos) == 1:
        info = infos[0]
        with right.form("runs_note", border=False):
            note = st.text_area("Note", info.note, key=f"runs_note_{info.run_id}", height=100)
            if st.form_submit_button("Save note", key="runs_note_save"):
                jobs.annotate(info.run_id, note=note, root=checkpoints_root())
                done(f"Note saved on {info.run_id}.")
    else:
        right.caption("Select one run to edit its note.")


def done(message: str) -> None:
    """Say what was done after the rerun that shows it."""
    st.session_state[MESSAGE] = message
    st.rerun()


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
        live_body()
    else:
        body(infos)
