"""Run page: live curves, results (final, and selected on validation) per protocol, the resolved
config, the log, and evaluating the checkpoint on another protocol as a background job.

Curves and status refresh every few seconds while the run is queued or running. Everything is
read from the run folder (cached by file versions); nothing here trains or evaluates in-process.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from core.config import to_dict
from core.data.layouts import dataset_names, protocol_names
from core.metrics import CONVENTIONS, RETRIEVAL, VALIDATION
from core.runs import EvalRecord, Metrics, RunDir
from dashboard.common import (
    REFRESH_SECONDS,
    checkpoints_root,
    duration,
    eval_record,
    is_active,
    metrics_frame,
    percent,
    pick_run,
    plain,
    run_config,
    show_error,
)
from dashboard import published, run_curves
from dashboard.verification_figures import run_verification
from dashboard.views import PageSpec
from dashboard.widgets import metric_cards
from jobs import api as jobs

PAGE = PageSpec("Run", "run", ":material/monitoring:", order=20)
HEADLINE = ("rank1", "mAP", "mAP_trapezoid", "mINP")


def status_line(run: RunDir) -> None:
    """The run's state, epoch, duration and error."""
    status = run.read_status()
    if status is None:
        st.warning(plain(f"{run.path} has no status yet."))
        return
    epoch = f"epoch {status.epoch:g}/{status.epochs}" if status.epochs else ""
    took = duration(status.ended - status.started) if status.started and status.ended else ""
    eta = jobs.get_run(run.run_id, checkpoints_root()).eta_seconds if status.state == "running" else None
    left = f"· about {duration(eta)} left" if eta is not None else ""
    st.markdown(f"**{status.state}** {epoch} {'· took ' + took if took else ''} {left}")
    if status.error:
        st.error(plain(status.error))


def curves(run: RunDir) -> None:
    """Training curves (loss parts, lr, images/s), the prompt phase, and per-evaluation curves."""
    run_curves.show(metrics_frame(run), run_config(run))


def mean_std(values: Metrics, key: str) -> str:
    """`91.23 ± 1.05` (percent) for a metric with its std over runs; empty when missing."""
    if values.get(key) is None:
        return ""
    std = values.get(f"{key}_std")
    return f"{percent(values[key]):.2f}" + (f" ± {percent(std):.2f}" if std is not None else "")


def metrics_table(results: dict[str, Metrics]) -> pd.DataFrame:
    """One row per result: each retrieval metric as mean ± std over runs, in percent."""
    rows = [{"result": name, **{label: mean_std(values, key) for key, label in RETRIEVAL.items()}}
            for name, values in results.items() if values]
    return pd.DataFrame(rows, columns=["result", *RETRIEVAL.values()])


def gains_table(record: EvalRecord) -> pd.DataFrame:
    """Epoch 0 (before training) -> final, per metric, in percent."""
    start = record.epoch0.test if record.epoch0 else {}
    final = record.final.test if record.final else {}
    rows = [
        {"metric": label, "epoch 0": percent(start.get(key)), "final": percent(final.get(key)),
         "gain": percent(final[key] - start[key]) if start.get(key) is not None and final.get(key) is not None
         else None}
        for key, label in RETRIEVAL.items() if key in start or key in final
    ]
    return pd.DataFrame(rows, columns=["metric", "epoch 0", "final", "gain"])


def labelled_results(record: EvalRecord) -> dict[str, Metrics]:
    """The run's own results by what they are: the last epoch's test figures and those of the epoch
    selected on validation."""
    out: dict[str, Metrics] = {}
    if record.final:
        out[f"{record.key} · final (epoch {record.final.epoch})"] = record.final.test
    if record.selected:
        out[f"{record.key} · selected on {record.selection} (epoch {record.selected.epoch})"] = record.selected.test
    return out


def results(run: RunDir) -> None:
    """Headline cards, the results table (final and selected on validation) and epoch-0 gains."""
    record = eval_record(run)
    if record.final is None:
        st.info("No final evaluation yet.")
        return
    final, start = record.final.test, record.epoch0.test if record.epoch0 else {}
    metric_cards(
        {RETRIEVAL[k]: percent(final.get(k)) for k in HEADLINE},
        {RETRIEVAL[k]: percent(final[k] - start[k]) for k in HEADLINE
         if start.get(k) is not None and final.get(k) is not None},
        columns=len(HEADLINE),
    )
    st.caption(f"Final epoch's test figures, change since epoch 0. Mean ± std over {record.runs} query/gallery "
               f"runs. {CONVENTIONS}")
    st.dataframe(metrics_table(labelled_results(record)), hide_index=True, placeholder="–")
    if record.selected is not None:
        st.caption(f"Validation at the selected epoch {record.selected.epoch}: " + ", ".join(
            f"{VALIDATION[k]} {percent(v):.2f}%" for k, v in record.selected.val.items() if k in VALIDATION and v is not None))
    st.dataframe(gains_table(record), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("epoch 0", "final", "gain")})


def live(run: RunDir) -> None:
    status_line(run)
    curves(run)
    results(run)


@st.fragment(run_every=REFRESH_SECONDS)
def live_fragment(run: RunDir) -> None:
    """`live` every few seconds; a full rerun once the run has finished drops the timer."""
    live(run)
    status = run.read_status()
    if status is None or not is_active(status.state):
        st.rerun(scope="app")


def evaluate_form(run: RunDir) -> None:
    """Queue an evaluation of this run's checkpoint on another dataset / protocol."""
    dataset = st.selectbox("Dataset", dataset_names(), key="run_eval_dataset")
    with st.form("run_eval"):
        root = st.text_input("Dataset root", key="run_eval_root")
        protocol = st.selectbox("Protocol", protocol_names(dataset), key="run_eval_protocol")
        checkpoint = st.selectbox("Checkpoint", ("best", "last"), key="run_eval_checkpoint",
                                  format_func={"best": "best (selected on validation)", "last": "last epoch"}.get)
        submitted = st.form_submit_button("Evaluate", key="run_eval_submit")
    if submitted:
        try:
            job = jobs.evaluate(run.run_id, dataset, root, protocol, checkpoint, root=checkpoints_root())
            st.success(f"Evaluation {job} queued: its result appears below when it finishes.")
        except Exception as exc:
            show_error(exc)


def cross_results(run: RunDir) -> None:
    """Earlier evaluations of this run on other protocols (eval.json's cross results)."""
    cross = eval_record(run).cross
    if cross:
        labelled = {f"{key} · {result.checkpoint} (epoch {result.epoch})": result.test for key, result in cross.items()}
        st.dataframe(metrics_table(labelled), hide_index=True, placeholder="–")
    else:
        st.caption("No evaluations on other protocols yet.")


def render() -> None:
    st.title("Run")
    run = pick_run()
    if run is None:
        return
    try:
        status = run.read_status()
        if status is not None and is_active(status.state):
            live_fragment(run)
        else:
            live(run)
        published.show([(run, "")])
        run_verification(run)
        st.subheader("Evaluate on another protocol")
        evaluate_form(run)
        cross_results(run)
        config = run_config(run)
        with st.expander("Resolved config"):
            st.code(yaml.safe_dump(to_dict(config), sort_keys=False) if config else "(none)", language="yaml")
        with st.expander("Log tail", expanded=status is not None and status.state == "failed"):
            st.code(run.log_tail(200) or "(empty)", language="text")
    except Exception as exc:  # a half-written or foreign run folder must not take the page down
        show_error(exc)
