"""Identify page over the shared trained runs: the run's gallery enrolled by its last checkpoint (or
an exported ONNX model), a picked or uploaded probe identified as the run's own ranking says,
accepted at the evaluation's threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.export import export_run
from core.metrics import ranked_gallery
from core.runs import Embeddings, RunDir


def expected(root: Path, query: int) -> tuple[str, float, float]:
    """(rank-1 identity, its cosine, the FAR 1e-2 threshold) of a query by the run's own records."""
    run = RunDir(root / "done")
    emb = Embeddings.load(run.embeddings_path)
    order, sims = ranked_gallery(emb.query_features[query:query + 1], emb.gallery_features, k=1)
    points = run.read_eval().final.curves["thresholds"]
    threshold = dict(zip(points["far_target"], points["threshold"]))[1e-2]
    return str(emb.gallery_identities[int(order[0, 0])]), float(sims[0, 0]), threshold


def matches(at) -> "list[dict]":
    return at.dataframe[0].value.to_dict("records")


def test_a_picked_query_is_identified_as_the_runs_ranking_says(checkpoints, open_page):
    at = open_page("identify", run="done")
    assert not at.exception and not at.error
    assert at.selectbox(key="id_far").options == ["0.01", "0.001"]
    at.selectbox(key="id_far").set_value(1e-2).run()
    identity, score, threshold = expected(checkpoints, 0)
    top = matches(at)
    assert top[0]["identity"] == identity and top[0]["score"] == pytest.approx(score, abs=1e-4)
    assert [m["accepted"] for m in top] == [m["score"] >= threshold for m in top]
    assert len(top) == 5 and top[0]["score"] >= top[-1]["score"]
    alert = (at.success or at.warning)[0].value
    assert alert.startswith("Accepted" if score >= threshold else "Rejected")
    images = [m.value for m in at.markdown if "<img" in m.value]
    assert len(images) == 6 and f"1. {identity} · " in images[1]  # the probe, then each identity's best image


def test_an_uploaded_photo_is_searched(checkpoints, open_page):
    emb = Embeddings.load(checkpoints / "done" / "embeddings.npz")
    at = open_page("identify", run="done")
    at.file_uploader(key="id_upload").set_value(("hand.png", Path(emb.query_paths[3]).read_bytes(), "image/png")).run()
    assert not at.exception
    identity, score, _ = expected(checkpoints, 3)
    assert matches(at)[0]["identity"] == identity
    assert matches(at)[0]["score"] == pytest.approx(score, abs=1e-4)


@pytest.fixture
def exported(own_checkpoints: Path) -> Path:
    export_run(own_checkpoints / "done", own_checkpoints / "done" / "encoder.onnx", "last", thresholds=False)
    return own_checkpoints


def test_an_exported_onnx_model_enrols_and_identifies_alike(exported, open_page):
    at = open_page("identify", run="done")
    at.radio(key="id_source").set_value("onnx").run()
    assert not at.exception and not at.error
    assert at.text_input(key="id_onnx").value == str(exported / "done" / "encoder.onnx")
    identity, score, _ = expected(exported, 0)
    top = matches(at)
    assert top[0]["identity"] == identity and np.isclose(top[0]["score"], score, atol=1e-4)
    assert at.selectbox(key="id_far").options == ["0.01", "0.001"]  # no thresholds in the model: the run's


def test_a_missing_onnx_model_is_a_one_line_error(checkpoints, open_page):
    at = open_page("identify", run="done")
    at.radio(key="id_source").set_value("onnx").run()
    at.text_input(key="id_onnx").input("/nowhere/encoder.onnx").run()
    assert not at.exception
    assert at.error[0].value == "ONNX model not found: /nowhere/encoder.onnx"
