"""Studies page: which strategy is better, and by how much. Pick a study: its arms with the mean and
95% CI of each metric over training seeds, a forest plot of the paired differences against the
reference arm with each seed's difference, one plain sentence per comparison, the curves of the arms'
runs with a mean band, exports (CSV, Markdown, PNG), and a form that launches a study from a preset.

`study_from_grid` is the New run page's hook: the sweep grid's combinations as arms, over N seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.metrics import RETRIEVAL
from core.runs import RunDir
from core.stats import sentence
from dashboard.common import CONFIGS, REFRESH_SECONDS, checkpoints_root, is_active, list_runs, metrics_frame, \
    show_error
from dashboard.study_figures import arm_curves_figure, forest_figure, to_png
from dashboard.views import PageSpec
from jobs import api as jobs
from jobs import study_runs
from jobs.studies import KEYS, METRICS, SELECTED, Study, arms_frame, load_study_preset, new_study, to_csv, \
    to_markdown
from jobs.sweeps import expand, label, parse_grid

PAGE = PageSpec("Studies", "studies", ":material/science:", order=55)

MESSAGE = "studies_message"
SECTIONS = {"final": "final epoch", "selected": "epoch selected on validation"}


def key_label(key: str) -> str:
    """`selected_mAP` -> `mAP (selected)`, `rank1` -> `rank-1`."""
    metric = key.removeprefix(SELECTED)
    return RETRIEVAL.get(metric, metric) + (" (selected)" if key.startswith(SELECTED) else "")


CI_PARTS = {"mean": "mean", "ci95_lo": "CI low", "ci95_hi": "CI high"}  # arms_frame column -> shown as


def arms_table(summary: dict[str, Any], keys: tuple[str, ...]) -> pd.DataFrame:
    """One row per arm: n, failed, pending, then each key's mean and 95% CI bounds (numbers: sortable)."""
    wide = arms_frame(summary).pivot(index="arm", columns="metric", values=list(CI_PARTS))
    columns = [(part, key) for key in keys for part in CI_PARTS]
    table = wide[columns].set_axis([f"{key_label(key)} {CI_PARTS[part]}" for part, key in columns], axis=1)
    counts = pd.DataFrame.from_dict({label: {"n": a["n"], "failed": len(a["failed"]), "pending": len(a["pending"])}
                                     for label, a in summary["arms"].items()}, orient="index")
    return counts.join(table).rename_axis("arm").reset_index()


def left_out(summary: dict[str, Any], infos: dict[str, jobs.RunInfo]) -> pd.DataFrame:
    """The runs not in the statistics (failed, cancelled, stopped, missing, queued, running) and why."""
    rows = [{"arm": label, "run": run_id, "state": infos[run_id].state if run_id in infos else "missing",
             "error": (infos[run_id].error or "") if run_id in infos else "its folder is gone"}
            for label, arm in summary["arms"].items() for run_id in arm["failed"] + arm["pending"] + arm.get("stopped", [])]
    return pd.DataFrame(rows, columns=["arm", "run", "state", "error"])


def sentences(summary: dict[str, Any], key: str) -> list[str]:
    return [sentence(c["arm"], c["reference"], key_label(key), c) + "." for c in summary["comparisons"]
            if c["metric"] == key]


def pick_study(studies: list[Study]) -> Study:
    """A study selector following and updating `?study=`."""
    ids = [s.id for s in studies]
    names = {s.id: f"{s.name} · {s.id}" for s in studies}
    wanted = st.query_params.get("study")
    chosen = st.selectbox("Study", ids, index=ids.index(wanted) if wanted in ids else 0, key="studies_pick",
                          format_func=names.get)
    st.query_params["study"] = chosen
    return studies[ids.index(chosen)]


def show_arms(summary: dict[str, Any], infos: dict[str, jobs.RunInfo], section: str) -> None:
    keys = tuple(k for k in KEYS if k.startswith(SELECTED) == (section == "selected"))
    st.caption(f"Test figures of the {SECTIONS[section]}: mean and 95% t-interval over training seeds "
               "(click a column header to sort).")
    st.dataframe(arms_table(summary, keys), hide_index=True, key="studies_arms", placeholder="–")
    out = left_out(summary, infos)
    if not out.empty:
        st.warning(f"{len(out)} runs are left out of the statistics (not succeeded):")
        st.dataframe(out, hide_index=True, key="studies_left_out")


def cancel_button(study: Study, summary: dict[str, Any]) -> None:
    """Cancel the study's queued and running runs at once (those ended are kept)."""
    pending = sum(len(arm["pending"]) for arm in summary["arms"].values())
    if pending and st.button(f"Cancel the study's {pending} queued or running runs", key="studies_cancel"):
        try:
            left = study_runs.cancel(study, checkpoints_root())
        except Exception as exc:
            show_error(exc)
            return
        st.session_state[MESSAGE] = f"Cancelled {len(left)} runs of {study.id} (running ones stop at once)."
        st.rerun(scope="app")


def show_comparisons(study: Study, summary: dict[str, Any], key: str) -> None:
    if len(study.arms) < 2:
        st.info("One arm: nothing to compare. A study compares arms against its reference.")
        return
    figure = forest_figure(summary, key)
    figure.update_layout(xaxis_title=f"paired difference in {key_label(key)} (arm − reference)")
    st.plotly_chart(figure, key="studies_forest")
    for text in sentences(summary, key):
        st.text(text)
    export_png(figure, f"{study.name}-{key}-forest.png", "studies_forest_png")


def export_png(figure, name: str, key: str) -> None:
    """A figure as PNG on request (kaleido drives the local chromium: seconds, so not on every rerun);
    where no browser starts, the reason is shown instead."""
    if st.button("Render as PNG", key=f"{key}_render"):
        st.session_state[f"{key}_png"] = (name, *to_png(figure))
    done = st.session_state.get(f"{key}_png")
    if done and done[0] == name:
        if done[1] is None:
            st.info(done[2])
        else:
            st.download_button("Download PNG", done[1], name, "image/png", key=f"{key}_download")


def show_exports(study: Study, summary: dict[str, Any]) -> None:
    columns = st.columns(4)
    for column, (table, kind) in zip(columns, [(t, k) for t in ("arms", "comparisons") for k in ("csv", "md")]):
        data = to_csv(summary, table) if kind == "csv" else to_markdown(summary, table)
        column.download_button(f"{table.capitalize()} as {'CSV' if kind == 'csv' else 'Markdown'}", data,
                               f"{study.name}-{table}.{kind}", "text/csv" if kind == "csv" else "text/markdown",
                               key=f"studies_{table}_{kind}")


def curve_frames(run_ids: list[str], curve: str) -> list[pd.DataFrame]:
    """Each run's curve as (x, y): a test metric per evaluation (x = epoch, in %), or the loss per step."""
    frames = []
    for run_id in run_ids:
        metrics = metrics_frame(RunDir(checkpoints_root() / run_id))
        if "kind" not in metrics.columns:
            continue
        if curve == "loss":
            part = metrics[metrics["kind"] == "train"]
            x, y, scale = "step", "loss", 1.0
        else:
            part = metrics[metrics["kind"] == "eval"]
            part = part[part["split"] == "test"] if "split" in part.columns else part
            x, y, scale = "epoch", curve, 100.0
        if {x, y} <= set(part.columns):
            frames.append(pd.DataFrame({"x": part[x], "y": part[y] * scale}))
    return frames


def show_curves(study: Study) -> None:
    arms = st.multiselect("Arms", list(study.arms), default=list(study.arms), key="studies_curve_arms")
    options = [*METRICS, "loss"]
    curve = st.selectbox("Curve", options, index=options.index("mAP"), key="studies_curve",
                         format_func=lambda c: "training loss (per step)" if c == "loss" else f"test {key_label(c)} %")
    curves = {arm: curve_frames([r["run_id"] for r in study.runs if r["arm"] == arm], curve) for arm in arms}
    if not any(curves.values()):
        st.info("No curves logged yet.")
        return
    x = "step" if curve == "loss" else "epoch"
    st.plotly_chart(arm_curves_figure(curves, y_title="loss" if curve == "loss" else f"{key_label(curve)} %")
                    .update_layout(xaxis_title=x), key="studies_curves")


def study_presets() -> list[Path]:
    return sorted((CONFIGS / "studies").glob("*.yaml"))


def launch_form() -> None:
    """Launch a study from a preset: name, seeds and extra overrides (one KEY=VALUE per line)."""
    presets = study_presets()
    if not presets:
        st.info(f"No study presets in {CONFIGS / 'studies'}.")
        return
    with st.form("studies_launch"):
        preset = st.selectbox("Preset", presets, format_func=lambda p: p.name, key="studies_preset")
        name = st.text_input("Name (optional: the preset's)", key="studies_name")
        seeds = st.number_input("Training seeds", min_value=1, max_value=50, value=3, step=1, key="studies_seeds")
        sets = st.text_area("Overrides for every arm: one KEY=VALUE per line", key="studies_sets", height=80)
        if not st.form_submit_button("Launch study", type="primary"):
            return
    try:
        base = load_study_preset(preset)
        definition = new_study(name.strip() or base.name, base.config, list(base.arms.items()), int(seeds),
                               base.reference, {**base.overrides, **lines_to_overrides(sets)})
        launched(study_runs.create(definition, checkpoints_root()))
    except Exception as exc:  # ConfigError one-liners name the arm and the key
        show_error(exc)


def lines_to_overrides(text: str) -> dict[str, Any]:
    return jobs.as_dict([line.strip() for line in text.splitlines() if line.strip()])


def launched(study: Study) -> None:
    st.session_state[MESSAGE] = f"Queued study {study.id}: {len(study.runs)} runs ({len(study.arms)} arms x " \
                                f"{len(study.seeds)} seeds)."
    st.query_params["study"] = study.id
    st.rerun()


def study_from_grid(config: str | Path, overrides: dict[str, Any], name: str, grid_text: str) -> None:
    """The New run page's hook: the sweep grid's combinations as arms (the first is the reference), each
    trained over N seeds, with the form's settings as the base."""
    left, right = st.columns([1, 5])
    seeds = left.number_input("Seeds", min_value=2, max_value=50, value=3, step=1, key="new_run_study_seeds")
    if not right.button("Start as a study (grid values as arms x seeds)", key="new_run_study",
                        disabled=not grid_text.strip()):
        return
    try:
        grid = parse_grid([line.strip() for line in grid_text.splitlines() if line.strip()])
        arms = [(label(combo), combo) for combo in expand(grid)]
        study = new_study(name or Path(config).stem, str(config), arms, int(seeds), overrides=overrides)
        study = study_runs.create(study, checkpoints_root())
        st.success(f"Queued study {study.id}: {len(study.runs)} runs. Open it on the Studies page.")
    except Exception as exc:
        show_error(exc)


def show_study(study: Study, infos: list[jobs.RunInfo]) -> None:
    summary = study_runs.summary(study, infos)
    by_id = {i.run_id: i for i in infos}
    st.text(f"{len(study.arms)} arms x {len(study.seeds)} training seeds {study.seeds}; reference arm: "
            f"{study.reference}; base config: {study.config or '(defaults)'}")
    st.caption("Runs are paired by seed: the evaluation draws are the same in every arm.")
    section = st.radio("Results", list(SECTIONS), horizontal=True, key="studies_section", format_func=SECTIONS.get)
    show_arms(summary, by_id, section)
    cancel_button(study, summary)
    metric = st.selectbox("Metric", METRICS, index=METRICS.index("mAP"), key="studies_metric", format_func=key_label)
    key = metric if section == "final" else SELECTED + metric
    st.subheader("Against the reference")
    show_comparisons(study, summary, key)
    st.subheader("Export")
    show_exports(study, summary)
    st.subheader("Curves")
    show_curves(study)


@st.fragment(run_every=REFRESH_SECONDS)
def live_study(study: Study) -> None:
    """The study re-read every few seconds while its runs train; a full rerun once all have ended."""
    infos = list_runs()
    show_study(study, infos)
    if not any(is_active(i.state) for i in infos if i.study_id == study.id):
        st.rerun(scope="app")


def render() -> None:
    st.title("Studies")
    if MESSAGE in st.session_state:
        st.success(st.session_state.pop(MESSAGE))
    try:
        studies = study_runs.list_studies(checkpoints_root(), on_damaged=show_error)
        if not studies:
            st.info("No studies yet: launch one below, or `python -m jobs study create ...`.")
        else:
            study = pick_study(studies)
            infos = list_runs()
            if any(is_active(i.state) for i in infos if i.study_id == study.id):
                live_study(study)
            else:
                show_study(study, infos)
    except Exception as exc:
        show_error(exc)
    st.divider()
    st.subheader("Launch a study")
    launch_form()
