"""New run page: on-the-spot dataset checks, weights checks, and what Start training / Start sweep queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.losses import registry
from core.runs import list_run_dirs as list_runs


def key(name: str) -> str:
    return f"new_run:demo.yaml:{name}"


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def no_scheduler(monkeypatch: pytest.MonkeyPatch) -> list:
    """Submissions are queued for real, but no scheduler starts (calls are recorded)."""
    started = []
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: started.append(root) or True)
    return started


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict:
    """jobs.api.submit / submit_chain replaced by recorders (for runs that must not be queued)."""
    calls: dict = {}

    def submit(config, overrides, **kwargs):
        calls["submit"] = (config, overrides, kwargs)
        return "r1"

    def submit_chain(stages, **kwargs):
        calls["chain"] = (stages, kwargs)
        return ["s1", "s2"]

    monkeypatch.setattr("jobs.api.submit", submit)
    monkeypatch.setattr("jobs.api.submit_chain", submit_chain)
    return calls


def test_a_bad_root_shows_the_readers_one_line_error(empty_checkpoints, open_page):
    at = open_page("new_run")
    at.selectbox(key=key("data.dataset")).set_value("folder").run()
    at.text_input(key=key("data.root:folder")).set_value("/nonexistent/hands").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["dataset root not found: /nonexistent/hands"]


def test_a_good_root_shows_the_protocols_split_sizes(trained_root, synth_root, empty_checkpoints, open_page):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root)).run()
    assert not at.exception and not at.error
    counts = at.dataframe[0].value
    # 6 identities: 3 train (one image each to val), 3 test; the gallery holds one image per
    # test identity of each of the 4 aspects (the other aspects' are distractors).
    assert counts["identities"].to_dict() == {"train": 3, "val": 3, "query": 3, "gallery": 12}
    assert counts.loc["gallery", "images"] == 12 and counts.loc["val", "images"] == 3
    protocols = at.selectbox(key=key("data.protocol:synthetic")).options
    assert protocols == ["dorsal_r", "dorsal_l", "palmar_r", "palmar_l", "default"]


def test_missing_offline_weights_and_files_are_named(empty_checkpoints, open_page):
    at = open_page("new_run")
    at.radio(key=key("weights")).set_value("Local file").run()
    at.text_input(key=key("model.pretrained")).set_value("/nowhere/weights.safetensors").run()
    assert not at.exception
    assert any("weights file not found: /nowhere/weights.safetensors" in e.value for e in at.error)


def test_start_training_queues_the_form_as_a_run(synth_root, empty_checkpoints, no_scheduler, open_page):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root))
    at.number_input(key=key("train.epochs")).set_value(3)
    at.checkbox(key=key("loss.triplet.weight:on")).uncheck()
    at.text_input(key=key("name")).set_value("my run").run()
    button(at, "Start training").click().run()
    assert not at.exception and not at.error
    runs = list_runs(empty_checkpoints)
    assert len(runs) == 1 and no_scheduler == [empty_checkpoints]
    config = runs[0].read_config()
    assert config.data.root == str(synth_root)
    assert config.train.epochs == 3
    assert config.loss.triplet.weight == 0.0 and config.loss.ce.weight == 1.0
    assert runs[0].read_status().state == "queued"
    assert runs[0].read_status().name == "my run"
    assert runs[0].run_id in at.success[0].value
    links = [link.proto for link in at.get("page_link")]
    assert any(link.page == "run" and runs[0].run_id in link.label for link in links)


def test_a_config_error_is_one_line_and_queues_nothing(empty_checkpoints, no_scheduler, open_page):
    at = open_page("new_run")
    for loss in registry.entries():
        at.checkbox(key=key(f"loss.{loss}.weight:on")).uncheck()
    at.run()
    assert not at.exception and button(at, "Start training").disabled
    assert [e.value for e in at.error] == [
        "loss: every loss weight is 0; give at least one of loss.ce/i2t/triplet/center/arcface a weight"]
    assert list_runs(empty_checkpoints) == []


def test_start_sweep_queues_one_run_per_grid_value(empty_checkpoints, no_scheduler, open_page):
    at = open_page("new_run")
    at.text_area(key=key("grid")).set_value("optim.lr=1e-3,1e-4\n").run()
    button(at, "Start sweep").click().run()
    assert not at.exception and not at.error
    runs = list_runs(empty_checkpoints)
    assert sorted(r.read_config().optim.lr for r in runs) == [1e-4, 1e-3]
    assert len({r.read_status().sweep_id for r in runs}) == 1


def test_a_bad_sweep_key_is_reported(empty_checkpoints, no_scheduler, open_page):
    at = open_page("new_run")
    at.text_area(key=key("grid")).set_value("optim.nope=1,2").run()
    assert not at.exception and button(at, "Start sweep").disabled
    assert at.error[0].value.startswith("unknown config key 'optim.nope'")
    assert list_runs(empty_checkpoints) == []


def test_continue_from_a_finished_run_sets_init_from_and_its_backbone(checkpoints, captured, open_page):
    at = open_page("new_run")
    at.radio(key=key("weights")).set_value("Continue from a finished run").run()
    at.selectbox(key=key("model.init_from")).set_value(str(checkpoints / "done_ce")).run()
    button(at, "Start training").click().run()
    assert not at.exception and not at.error
    config, overrides, _ = captured["submit"]
    assert Path(config).name == "demo.yaml"
    assert overrides["model.init_from"] == str(checkpoints / "done_ce")
    assert "model.backbone" not in overrides  # done_ce's backbone is the preset's, HandID-Tiny
    assert sorted(at.selectbox(key=key("model.init_from")).options) == ["demo · done", "demo · done_ce"]  # succeeded


def test_a_chain_queues_stage2_with_the_forms_data(synth_root, empty_checkpoints, captured, open_page):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root)).run()
    at.checkbox(key=key("chain")).check().run()
    button(at, "Start training").click().run()
    assert not at.exception
    (stage1, stage2), _ = captured["chain"]
    assert Path(stage1[0]).name == "demo.yaml" and stage1[1]["data.root"] == str(synth_root)
    assert Path(stage2[0]).name == "stage2_ce_triplet.yaml"
    assert stage2[1]["data.root"] == str(synth_root) and stage2[1]["model.backbone"] == "HandID-Tiny"
