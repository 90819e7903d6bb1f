"""Compare page: two to four runs side by side (config diff, metrics with deltas, overlaid curves,
PCA embeddings, the queries one gets right and the other wrong), and a sweep's leaderboard."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.analysis import disagreements
from core.config import flatten, to_dict
from core.losses import registry as losses
from core.metrics import RETRIEVAL
from core.runs import RunDir
from dashboard import analysis, published
from dashboard.common import (
    DAMAGED,
    checkpoints_root,
    eval_record,
    labels_of,
    list_runs,
    metrics_frame,
    percent,
    plain,
    readable_runs,
    run_config,
    show_error,
    training_runs,
)
from dashboard.figures import FIXED_COLOURS, curves_figure, projection_figure
from dashboard.verification_figures import compare_verification
from dashboard.views import PageSpec
from dashboard.widgets import image_grid, metric_cards
from jobs import api as jobs


PAGE = PageSpec("Compare", "compare", ":material/compare:", order=50)

METRICS = {k: RETRIEVAL[k] for k in ("rank1", "rank5", "rank10", "mAP", "mAP_trapezoid", "mINP")}
STATISTICS = {"ratio": "intra/inter", "silhouette": "silhouette"}
MAX_RUNS = 4
DISAGREEMENTS_SHOWN = 12


def render() -> None:
    st.title("Compare")
    try:
        chosen = pick_runs()
        if len(chosen) < 2:
            st.info("Pick two to four runs to compare.")
        else:
            runs = [RunDir(checkpoints_root() / r) for r in chosen]
            sections = st.tabs(["Metrics", "Config", "Curves", "Verification", "Embeddings", "Right vs wrong"])
            for section, show in zip(sections, (show_metrics, show_config, show_curves, compare_verification,
                                                show_embeddings, show_disagreements)):
                with section:
                    try:  # a damaged file of one run (its embeddings, say) leaves the other tabs standing
                        show(runs)
                    except Exception as exc:
                        show_error(exc)
        st.divider()
        leaderboard()
    except Exception as exc:
        show_error(exc)


def pick_runs() -> list[str]:
    """Two to four run ids (picked by name), following and updating the `?runs=a,b` query parameter."""
    names = labels_of(readable_runs())
    wanted = [r for r in st.query_params.get("runs", "").split(",") if r in names][:MAX_RUNS]
    chosen = st.multiselect("Runs", list(names), default=wanted, max_selections=MAX_RUNS, key="cmp_runs",
                            format_func=names.get)
    if chosen:
        st.query_params["runs"] = ",".join(chosen)
    else:
        st.query_params.pop("runs", None)
    return chosen


def final_metrics(run: RunDir) -> dict[str, Any]:
    """The final evaluation's test metrics (rank/mAP/mINP as percentages), {} before it exists."""
    final = eval_record(run).final
    if final is None:
        return {}
    out: dict[str, Any] = {label: percent(final.test.get(key)) for key, label in METRICS.items()}
    out.update({label: final.test.get(key) for key, label in STATISTICS.items()})
    return out



def metrics_table(runs: list[RunDir], names: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows: runs (by name); columns: each final metric and its change against the first run (Δ)."""
    names = names or {}
    rows = {names.get(run.run_id, run.run_id): final_metrics(run) for run in runs}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*METRICS.values(), *STATISTICS.values()])
    table = table.astype(float)
    base = table.iloc[0]
    for column in list(table.columns):
        table.insert(table.columns.get_loc(column) + 1, f"Δ {column}", table[column] - base[column])
    return table


def show_metrics(runs: list[RunDir]) -> None:
    names = labels_of(training_runs())
    st.caption(f"Final epoch, test side; Δ against {plain(names.get(runs[0].run_id, runs[0].run_id))}. rank-k, mAP and "
               "mINP in %. One training run each: a difference here may be noise; a study over training seeds "
               "says whether it is.")
    baseline = final_metrics(runs[0])
    for run in runs:
        values = final_metrics(run)
        st.markdown(f"**{plain(names.get(run.run_id, run.run_id))}**")
        if not values:
            st.info("No final evaluation yet.")
            continue
        shown = {k: values[k] for k in (RETRIEVAL["rank1"], RETRIEVAL["mAP"], RETRIEVAL["mAP_trapezoid"])}
        deltas = None if run == runs[0] else {k: _delta(values[k], baseline.get(k)) for k in shown}
        metric_cards(shown, deltas, columns=3)
    st.dataframe(metrics_table(runs, names).round(4), key="cmp_metrics", placeholder="–")
    published.show((run, names.get(run.run_id, run.run_id)) for run in runs)


def _delta(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def config_diff(configs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows: dotted config keys whose values differ between runs (missing keys count); columns: runs."""
    flat = {run_id: flatten(config) for run_id, config in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1]
    return pd.DataFrame({run_id: [_text(f.get(k)) for k in differing] for run_id, f in flat.items()},
                        index=pd.Index(differing, name="key"))


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def show_config(runs: list[RunDir]) -> None:
    names = labels_of(training_runs())
    diff = config_diff({names.get(run.run_id, run.run_id): _config_dict(run) for run in runs})
    if diff.empty:
        st.info("The configs are identical.")
    else:
        st.caption(f"{len(diff)} keys differ.")
        st.dataframe(diff, key="cmp_config", placeholder="–")


def _config_dict(run: RunDir) -> dict[str, Any]:
    config = run_config(run)
    return to_dict(config) if config else {}


def _test_lines(frame: pd.DataFrame) -> pd.DataFrame:
    """The test-side evaluation lines (older runs wrote no `split`: all test)."""
    evals = frame[frame["kind"] == "eval"]
    return evals[evals["split"] == "test"] if "split" in evals.columns else evals


def show_curves(runs: list[RunDir]) -> None:
    names = labels_of(training_runs())
    frames = {names.get(run.run_id, run.run_id): metrics_frame(run) for run in runs}
    kinds = {"eval": {r: _test_lines(f) for r, f in frames.items() if "kind" in f.columns},
             "train": {r: f[f["kind"] == "train"] for r, f in frames.items() if "kind" in f.columns}}
    options = [("eval", key) for key in METRICS if any(key in f.columns for f in kinds["eval"].values())]
    options += [("train", key) for key in ("loss", *losses.entries(), "lr")
                if any(key in f.columns for f in kinds["train"].values())]
    if not options:
        st.info("No metrics logged yet.")
        return
    kind, key = st.selectbox("Curve", options, key="cmp_curve",
                             format_func=lambda o: f"{METRICS.get(o[1]) or losses.label(o[1])} ({o[0]})")
    x = "epoch" if kind == "eval" else "step"
    series = {r: f.dropna(subset=[key]) for r, f in kinds[kind].items() if key in f.columns and x in f.columns}
    if kind == "eval":
        series = {r: f.assign(**{key: 100 * f[key]}) for r, f in series.items()}
    st.plotly_chart(curves_figure(series, x, key, METRICS.get(key, key)), key="cmp_curves")


def show_embeddings(runs: list[RunDir]) -> None:
    st.caption("PCA of each run's query and gallery embeddings, coloured by identity.")
    names = labels_of(training_runs())
    for column, run in zip(st.columns(len(runs)), runs):
        with column:
            st.markdown(f"**{plain(names.get(run.run_id, run.run_id))}**")
            if not run.embeddings_path.exists():
                st.info(analysis.NO_EMBEDDINGS)
                continue
            frame = analysis.projection(run, "pca")
            st.plotly_chart(projection_figure(frame, "identity", height=360), key=f"cmp_pca_{run.run_id}")


def show_disagreements(runs: list[RunDir]) -> None:
    usable = [run for run in runs if run.embeddings_path.exists()]
    if len(usable) < 2:
        st.info("Two runs with embeddings are needed: " + analysis.NO_EMBEDDINGS)
        return
    ids = [run.run_id for run in usable]
    names = labels_of(training_runs())
    left, right = st.columns(2)
    a = left.selectbox("Run A", ids, index=0, key="cmp_a", format_func=lambda r: names.get(r, r))
    b = right.selectbox("Run B", ids, index=1, key="cmp_b", format_func=lambda r: names.get(r, r))
    if a == b:
        st.info("Pick two different runs.")
        return
    run_a, run_b = (RunDir(checkpoints_root() / r) for r in (a, b))
    diff = disagreements(analysis.embeddings(run_a), analysis.embeddings(run_b))
    a, b = names.get(a, a), names.get(b, b)  # shown by the user's run names from here on
    a_only = int(diff["a_correct"].sum())
    st.caption(f"Queries present in both runs' evaluations: {plain(a)} alone gets {a_only} right at rank 1, "
               f"{plain(b)} alone gets {len(diff) - a_only} right.")
    if diff.empty:
        st.success("Both runs get the same queries right at rank 1.")
        return
    columns = {"identity": "identity", "aspect": "aspect", "a_correct": f"{a} right", "b_correct": f"{b} right",
               "a_true_rank": f"{a} true-match rank", "b_true_rank": f"{b} true-match rank"}
    st.dataframe(diff[list(columns)].rename(columns=columns), hide_index=True, height=220, key="cmp_disagreements")
    for row in diff.head(DISAGREEMENTS_SHOWN).itertuples():
        image_grid(
            [row.path, row.a_top1, row.b_top1],
            captions=[f"query · {row.identity}", f"{a} rank-1 · {row.a_top1_similarity:.3f}",
                      f"{b} rank-1 · {row.b_top1_similarity:.3f}"],
            borders=[FIXED_COLOURS["query"], *(FIXED_COLOURS["right" if c else "wrong"]
                                               for c in (row.a_correct, row.b_correct))],
            columns=3, width=130, key=f"cmp_grid_{row.Index}",
        )


def leaderboard() -> None:
    """A sweep's runs with their results and differing settings; click a column header to sort."""
    st.subheader("Sweep leaderboard")
    infos = [i for i in list_runs() if i.sweep_id and i.state != DAMAGED]
    sweeps = list(dict.fromkeys(i.sweep_id for i in infos))
    if not sweeps:
        st.info("No sweeps yet: launch one from the New run page.")
        return
    sweep = st.selectbox("Sweep", sweeps, key="cmp_sweep")
    members = [i for i in infos if i.sweep_id == sweep]
    table = leaderboard_table(members)
    options = [c for c in table.columns if c != "name"]
    sort_by = st.selectbox("Sort by", options, index=options.index("selected mAP"), key="cmp_sort")
    st.dataframe(table.sort_values(sort_by, ascending=False, na_position="last"), key="cmp_leaderboard",
                 placeholder="–")


def leaderboard_table(infos: list[jobs.RunInfo]) -> pd.DataFrame:
    """Rows: runs; columns: name, state, the test mAP selected on validation, the final metrics, then the
    config keys that differ."""
    rows = {}
    for info in infos:
        run = RunDir(checkpoints_root() / info.run_id)
        rows[info.run_id] = {"name": info.name, "state": info.state, "selected mAP": percent(info.selected.get("mAP")),
                             "selected epoch": info.selected_epoch, **final_metrics(run)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    settings = config_diff({i.run_id: _config_dict(RunDir(checkpoints_root() / i.run_id)) for i in infos})
    return table.join(settings.T) if not settings.empty else table
