"""Studies page on constructed studies (no training): arms table, forest plot, sentences, runs left out,
exports, curves; launching from a preset and from the New run grid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.stats import sentence
from jobs import study_runs
from tests.study_folders import constructed_study, seeded_values


@pytest.fixture(scope="module")
def studies_root(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One root with a study whose arms truly differ (5 seeds, one run failed, one queued) and one whose
    arms are identical (3 seeds)."""
    root = tmp_path_factory.mktemp("studies") / "checkpoints"
    values = seeded_values(effect=0.03, seeds=5)
    del values["TRI"][4]  # stays queued
    differ = constructed_study(root, values, seeds=5, name="differ", left={("CE", 3): "failed"})
    same = seeded_values(effect=0.0, seeds=3)["CE"]
    identical = constructed_study(root, {"CE": same, "TRI": dict(same)}, seeds=3, name="same")
    return {"root": root, "differ": differ, "same": identical}


@pytest.fixture
def studies(studies_root: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(studies_root["root"]))
    return studies_root


def texts(at) -> list[str]:
    """The page's plain-text lines after the study's description line."""
    return [t.value for t in at.text][1:]


def test_a_study_shows_its_arms_forest_plot_and_sentences(studies, open_page):
    study = studies["differ"]
    at = open_page("studies", study=study.id)
    assert not at.exception and not at.error
    assert at.text[0].value.startswith("2 arms x 5 training seeds [0, 1, 2, 3, 4]; reference arm: CE; base config: ")
    summary = study_runs.summary(study, root=studies["root"])
    arms = at.dataframe[0].value.set_index("arm")
    for arm in ("CE", "TRI"):
        m = summary["arms"][arm]["metrics"]["mAP"]
        assert arms.loc[arm, "mAP mean"] == pytest.approx(m["mean"])
        assert [arms.loc[arm, "mAP CI low"], arms.loc[arm, "mAP CI high"]] == pytest.approx(m["ci95"])
    assert list(arms["n"]) == [4, 4] and list(arms["failed"]) == [1, 0] and list(arms["pending"]) == [0, 1]
    left_out = at.dataframe[1].value
    assert sorted(left_out["state"]) == ["failed", "queued"] and len(at.warning) == 1
    comparison = next(c for c in summary["comparisons"] if c["metric"] == "mAP")
    assert texts(at) == [sentence("TRI", "CE", "mAP", comparison) + "."] and texts(at)[0].startswith("TRI beats CE")
    forest = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and "forest" in c.proto.id).proto.spec)
    assert forest["data"][0]["x"] == pytest.approx(comparison["diffs"])
    assert forest["data"][-1]["x"] == pytest.approx([comparison["diff"]])
    assert [b.proto.label for b in at.get("download_button")] == [
        "Arms as CSV", "Arms as Markdown", "Comparisons as CSV", "Comparisons as Markdown"]


def test_identical_arms_read_no_detectable_difference_and_selected_figures_switch(studies, open_page):
    at = open_page("studies", study=studies["same"].id)
    assert not at.exception and not at.error and not at.warning
    assert texts(at)[0].startswith("No detectable difference between TRI and CE in mAP (+0.000")
    at.radio(key="studies_section").set_value("selected").run()
    assert texts(at)[0].startswith("No detectable difference between TRI and CE in mAP (selected)")
    assert "mAP (selected) mean" in at.dataframe[0].value.columns


def test_arm_curves_have_a_mean_band_per_arm(studies, open_page):
    at = open_page("studies", study=studies["same"].id)
    curves = json.loads(next(c for c in at.get("plotly_chart") if "curves" in c.proto.id).proto.spec)
    means = [t for t in curves["data"] if t.get("name", "").endswith("runs)")]
    assert [t["name"] for t in means] == ["CE (mean ± std of 3 runs)", "TRI (mean ± std of 3 runs)"]
    assert curves["layout"]["xaxis"]["title"]["text"] == "epoch"


def test_launching_a_study_from_a_preset(empty_checkpoints: Path, open_page):
    at = open_page("studies")
    assert "No studies yet" in at.info[0].value
    at.selectbox(key="studies_preset").set_value(next(p for p in at.selectbox(key="studies_preset").options
                                                      if p.endswith("demo.yaml")))
    at.number_input(key="studies_seeds").set_value(2)
    at.text_area(key="studies_sets").set_value("train.epochs=1\ntrain.device=cpu")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    study, = study_runs.list_studies(empty_checkpoints)
    assert (study.name, study.seeds, len(study.runs)) == ("demo_study", [0, 1], 4)
    assert study.overrides == {"loss.center.weight": 0.0, "train.epochs": 1, "train.device": "cpu"}
    assert at.success[0].value.startswith(f"Queued study {study.id}: 4 runs")


def test_a_bad_override_in_the_launch_form_is_a_message(empty_checkpoints: Path, open_page):
    at = open_page("studies")
    at.text_area(key="studies_sets").set_value("optim.lr=-1")
    at.button[0].click().run()
    assert not at.exception and "optim.lr=-1" in at.error[0].value
    assert study_runs.list_studies(empty_checkpoints) == []


def test_new_run_starts_the_grid_as_a_study(empty_checkpoints: Path, open_page):
    at = open_page("new_run")
    at.text_area(key="new_run:demo.yaml:grid").set_value("loss.triplet.weight=0,1").run()
    at.number_input(key="new_run_study_seeds").set_value(2)
    next(b for b in at.button if b.label.startswith("Start as a study")).click().run()
    assert not at.exception and not at.error
    study, = study_runs.list_studies(empty_checkpoints)
    assert study.arms == {"weight=0": {"loss.triplet.weight": 0}, "weight=1": {"loss.triplet.weight": 1}}
    assert (study.name, study.seeds, len(study.runs)) == ("demo", [0, 1], 4)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")
def test_the_forest_plot_renders_as_png(studies, open_page):
    at = open_page("studies", study=studies["same"].id)
    next(b for b in at.button if b.label == "Render as PNG").click().run()
    assert not at.exception and not at.info
    assert "Download PNG" in [b.proto.label for b in at.get("download_button")]
    name, png, reason = at.session_state["studies_forest_png_png"]
    assert name == "same-mAP-forest.png" and reason is None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_damaged_study_file_is_a_message(empty_checkpoints: Path, open_page):
    (empty_checkpoints / "studies").mkdir()
    (empty_checkpoints / "studies" / "study-broken.json").write_text("{")
    at = open_page("studies")
    assert not at.exception and [e.value for e in at.error] == [
        f"{empty_checkpoints / 'studies' / 'study-broken.json'}: not valid JSON (damaged or half-written)"]
    assert "No studies yet" in at.info[0].value


def test_cancelling_a_study_from_its_page(empty_checkpoints: Path, open_page):
    study = constructed_study(empty_checkpoints, {"CE": {0: 0.4}, "TRI": {0: 0.5}}, seeds=2)
    at = open_page("studies", study=study.id)
    next(b for b in at.button if b.label == "Cancel the study's 2 queued or running runs").click().run()
    assert not at.exception and at.success[0].value.startswith(f"Cancelled 2 runs of {study.id}")
    summary = study_runs.summary(study, root=empty_checkpoints)
    assert [summary["arms"][a]["pending"] for a in ("CE", "TRI")] == [[], []]
    assert [len(summary["arms"][a]["failed"]) for a in ("CE", "TRI")] == [1, 1]
    assert not any(b.label.startswith("Cancel the study") for b in at.button)
