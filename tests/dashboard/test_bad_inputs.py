"""The dashboard's rows of the bad-input table (tests/test_bad_inputs.py holds the tally): damaged run
folders on the pages, images outside the dataset roots, user text that looks like markup, and what
New run lets start."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.runs import Embeddings, RunDir
from core.runs import list_run_dirs as list_runs
from dashboard.common import plain

MARKUP = "![x](http://example.invalid/x.png)"


def key(name: str) -> str:
    return f"new_run:demo.yaml:{name}"


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def copy_run(root: Path, source: str, run_id: str) -> RunDir:
    shutil.copytree(root / source, root / run_id, ignore=shutil.ignore_patterns("projections"))
    return RunDir.at(root / run_id)


@pytest.fixture
def damaged(own_checkpoints: Path) -> Path:
    """The trained runs plus copies of `done` with one damaged file each."""
    (copy_run(own_checkpoints, "done", "status-list").status_path).write_text("[1, 2]")
    (copy_run(own_checkpoints, "done", "eval-final").eval_path).write_text('{"final": "x"}')
    (copy_run(own_checkpoints, "done", "metrics-binary").metrics_path).write_bytes(bytes(range(256)) * 8)
    (copy_run(own_checkpoints, "done", "embeddings-empty").embeddings_path).write_bytes(b"")
    (copy_run(own_checkpoints, "done", "status-empty").status_path).write_text("")
    return own_checkpoints


def test_runs_page_lists_damaged_runs_with_their_problem_and_the_others_as_usual(damaged, open_page):
    at = open_page("runs")
    assert not at.exception
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc["done", "state"] == "succeeded" and table.loc["done", "rank1"] > 0
    for run_id in ("status-list", "eval-final", "status-empty"):
        assert table.loc[run_id, "state"] == "damaged" and str(damaged / run_id) in table.loc[run_id, "error"]
    for run_id in ("metrics-binary", "embeddings-empty"):
        assert table.loc[run_id, "state"] == "succeeded"


@pytest.mark.parametrize(("page", "query"), [("compare", {"runs": "done,done_ce,eval-final"}), ("cross_eval", {})])
def test_compare_and_cross_evaluation_show_their_table_with_damaged_runs_flagged(damaged, open_page, page, query):
    at = open_page(page, **query)
    assert not at.exception and not at.error
    flagged = " ".join(w.value for w in at.warning)
    assert all(run_id in flagged for run_id in ("status-list", "eval-final", "status-empty"))
    assert at.dataframe, "the page's table is shown"


def test_run_page_of_damaged_files_says_what_is_wrong(damaged, open_page):
    at = open_page("run", run="metrics-binary")  # binary metrics lines are skipped; the rest shows
    assert not at.exception and not at.error
    at = open_page("errors", run="embeddings-empty")
    assert not at.exception and "embeddings.npz" in at.error[0].value


def rewrite_embeddings(run: RunDir, **changes) -> None:
    emb = run.read_embeddings()
    arrays = emb.arrays()
    for name, change in changes.items():
        arrays[name] = change(arrays[name])
    run.write_embeddings(Embeddings(**arrays))


def test_images_outside_the_dataset_roots_are_never_shown(own_checkpoints, tmp_path, open_page):
    outside = tmp_path / "elsewhere" / "secret.png"
    outside.parent.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(outside)
    run = copy_run(own_checkpoints, "done", "tampered")
    rewrite_embeddings(run, gallery_paths=lambda p: np.array([str(outside), *p[1:]]))
    for page in ("errors", "embeddings"):
        at = open_page(page, run="tampered")
        assert not at.exception
        assert "outside the run's dataset roots" in at.error[0].value and "secret.png" in at.error[0].value
        assert not [m for m in at.markdown if "<img" in m.value], page


def test_a_link_out_of_the_root_is_outside_too(own_checkpoints, tmp_path, open_page):
    (tmp_path / "elsewhere").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "elsewhere" / "x.png")
    run = copy_run(own_checkpoints, "done", "linked")
    first = Path(run.read_embeddings().gallery_paths[0])
    first.with_name("link.png").symlink_to(tmp_path / "elsewhere" / "x.png")
    try:
        rewrite_embeddings(run, gallery_paths=lambda p: np.array([str(first.with_name("link.png")), *p[1:]]))
        at = open_page("errors", run="linked")
        assert "outside the run's dataset roots" in at.error[0].value
    finally:
        first.with_name("link.png").unlink()


def test_aspect_and_identity_strings_are_shown_as_text(own_checkpoints, open_page):
    run = copy_run(own_checkpoints, "done", "markup")
    rewrite_embeddings(run, query_aspects=lambda a: np.full(len(a), MARKUP),
                       query_identities=lambda a: np.array([f"**{i}**<b>" for i in a]))
    at = open_page("errors", run="markup")
    assert not at.exception and not at.error
    headers = [t.value for t in at.text if t.value.startswith("Query")]  # st.text: literal, never markdown
    assert headers and all(MARKUP in h for h in headers)
    assert not any(MARKUP in m.value or "**0" in m.value for m in at.markdown if not m.value.startswith("<"))


def test_plain_leaves_no_markup():
    assert plain(MARKUP) == r"!\[x\](http://example.invalid/x.png)"
    assert plain("snake_case _it_ `code` <i> $x$ a|b") == r"snake_case \_it\_ \`code\` \<i\> \$x\$ a\|b"


# New run: nothing starts while an error is on the page

def test_a_bad_root_disables_start_training(empty_checkpoints, open_page):
    at = open_page("new_run")
    at.selectbox(key=key("data.dataset")).set_value("folder").run()
    at.text_input(key=key("data.root:folder")).set_value("/nonexistent/hands").run()
    assert button(at, "Start training").disabled and button(at, "Start sweep").disabled
    assert [e.value for e in at.error] == [plain("dataset root not found: /nonexistent/hands")]


def test_weights_not_available_offline_disable_start_training(empty_checkpoints, open_page):
    at = open_page("new_run")
    at.radio(key=key("weights")).set_value("open_clip tag").run()
    at.selectbox(key=key("model.backbone")).set_value("ViT-B-32").run()
    assert not at.exception and "not available offline" in at.error[0].value
    assert button(at, "Start training").disabled


@pytest.mark.parametrize(("widget", "value", "named"), [("train.epochs", 0, "train.epochs"),
                                                        ("eval.runs", 100000, "eval.runs"),
                                                        ("optim.lr", -1.0, "optim.lr"),
                                                        ("data.image_size:h", 100000, "data.image_size")])
def test_an_invalid_number_is_named_not_replaced_and_nothing_starts(synth_root, empty_checkpoints, open_page,
                                                                    widget, value, named):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root)).run()
    at.number_input(key=key(widget)).set_value(value).run()
    assert not at.exception and named in at.error[0].value
    assert button(at, "Start training").disabled
    assert list_runs(empty_checkpoints) == []


def test_every_sweep_value_is_checked_before_start_sweep(synth_root, empty_checkpoints, open_page):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root)).run()
    at.text_area(key=key("grid")).set_value("model.backbone=HandID-Tiny,ViT-X-99").run()
    assert not at.exception and "ViT-X-99" in at.error[0].value
    assert button(at, "Start sweep").disabled and not button(at, "Start training").disabled
    at.text_area(key=key("grid")).set_value("optim.lr=1e-4,1e30").run()
    assert "optim.lr" in at.error[0].value and button(at, "Start sweep").disabled
    assert list_runs(empty_checkpoints) == []


def test_synthetic_data_is_generated_only_at_a_synthetic_presets_root(empty_checkpoints, open_page):
    at = open_page("new_run")
    at.selectbox(key=key("data.dataset")).set_value("11k").run()
    assert at.text_input(key=key("data.root:11k")).value == ""  # never the synthetic root
    at.selectbox(key=key("data.dataset")).set_value("synthetic").run()
    assert at.text_input(key=key("data.root:synthetic")).value == "data/synthetic-11k"  # the demo preset's
    demo_data = Path("data/synthetic-11k")  # `make run` prepares it in a checkout; a fresh clone has none
    assert not at.error and (demo_data.exists() or "generated there" in at.info[0].value)
    at.text_input(key=key("data.root:synthetic")).set_value("/nonexistent").run()
    assert "dataset root not found: /nonexistent" in at.error[0].value.replace("\\", "")
    assert button(at, "Start training").disabled
    assert not Path("/nonexistent").exists()


def test_a_mistyped_evaluation_root_is_refused(synth_root, empty_checkpoints, open_page):
    at = open_page("new_run")
    at.text_input(key=key("data.root:synthetic")).set_value(str(synth_root)).run()
    at.text_input(key=key("eval.root")).set_value("/nonexistent/eval").run()
    assert "eval.root" in at.error[0].value and button(at, "Start training").disabled
    assert not Path("/nonexistent").exists()


def test_run_names_with_markup_are_shown_as_text_on_compare(own_checkpoints, open_page):
    status = json.loads((own_checkpoints / "done" / "status.json").read_text())
    (own_checkpoints / "done" / "status.json").write_text(json.dumps({**status, "name": MARKUP}))
    at = open_page("compare", runs="done,done_ce")
    assert not at.exception
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert any(plain(MARKUP) in s for s in shown) and not any(MARKUP in s for s in shown)
