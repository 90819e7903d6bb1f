"""meta.json: tags and a note per run, apart from status.json."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfigError
from core.runs import RecordError, RunDir, RunMeta


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir.at(tmp_path / "r1").create()
    run.update_status(state="running", name="alpha", pid=123, epoch=1.0, epochs=3)
    return run


def test_a_run_without_meta_has_no_tags_and_no_note(run):
    assert run.read_meta() == RunMeta()


def test_tags_are_added_once_in_order_removed_and_the_note_replaced(run):
    run.update_meta(add=["baseline", " lr-sweep ", "baseline"])
    assert run.read_meta().tags == ["baseline", "lr-sweep"]
    meta = run.update_meta(add=["best"], remove=["baseline"], note="CE only; compare with\nthe triplet arm")
    assert meta == RunMeta(["lr-sweep", "best"], "CE only; compare with\nthe triplet arm")
    assert json.loads(run.meta_path.read_text()) == {"tags": ["lr-sweep", "best"],
                                                     "note": "CE only; compare with\nthe triplet arm"}
    assert run.update_meta(remove=["not-there"]).tags == ["lr-sweep", "best"]  # removing an absent tag is no error
    assert run.update_meta(note="").note == ""


def test_annotating_leaves_the_lifecycle_fields_alone(run):
    before = run.read_status()
    run.update_meta(add=["x"], note="n")
    assert run.read_status() == before
    assert not list(run.path.glob(".*.tmp"))  # written atomically, nothing left behind


@pytest.mark.parametrize("tag", ["", "  ", "a,b", "two\nlines", "x" * 41])
def test_a_bad_tag_is_refused_naming_it(run, tag):
    with pytest.raises(ConfigError, match="tag .* is not valid"):
        run.update_meta(add=[tag])
    assert not run.meta_path.exists()


def test_a_damaged_meta_file_names_the_file(run):
    run.meta_path.write_text('{"tags": "not a list"}')
    with pytest.raises(RecordError, match="meta.json: tags must be a list of text"):
        run.read_meta()
    run.meta_path.write_text('{"tags": ["a,b"]}')
    with pytest.raises(RecordError, match="meta.json: tag 'a,b' is not valid"):
        run.read_meta()
