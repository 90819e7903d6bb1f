"""Errors page over runs made by real tiny trainings: misidentified queries, hardest first."""

from __future__ import annotations

import shutil

import pytest

from core.analysis import misidentified
from core.runs import Embeddings
from core.runs import RunDir


def wrong_of(root, run_id: str, k: int = 5):
    return misidentified(Embeddings.load(root / run_id / "embeddings.npz"), k)


def grids(at) -> list[str]:
    """The image-grid markdown blocks with at least one readable image."""
    return [m.value for m in at.markdown if "<img" in m.value]


def test_misidentified_queries_hardest_first_with_their_top_k(checkpoints, open_page):
    wrong = wrong_of(checkpoints, "done")
    assert len(wrong) > 0  # the tiny model gets some wrong: the page has something to show
    at = open_page("errors", run="done")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["query"].tolist() == wrong["query"].tolist()
    assert table["true-match rank"].tolist() == wrong["true_rank"].tolist()
    assert table["true-match rank"].is_monotonic_decreasing
    page = wrong.head(10)
    # One image per markdown block: the query, its top 5, and its true match when that ranked below 5.
    assert len(grids(at)) == sum(6 + (page["true_rank"] > 5))
    red = sum(int((~row.astype(bool)).sum()) for row in page["top_correct"])
    assert sum("#d62728" in g for g in grids(at)) == red
    assert len([b for b in at.button if b.key.startswith("err_enlarge_")]) == len(page)


def test_true_match_below_top_k_is_appended(checkpoints, open_page):
    at = open_page("errors", run="done")
    at.slider(key="err_k").set_value(1).run()
    assert not at.exception
    wrong = wrong_of(checkpoints, "done", k=1)
    shown = min(len(wrong), 10)
    assert len(grids(at)) == shown * 3  # query, rank 1 (wrong), the true match further down
    assert any("(true match)" in g for g in grids(at))


def test_identity_filter(checkpoints, open_page):
    wrong = wrong_of(checkpoints, "done")
    identity = wrong["identity"].iloc[-1]
    at = open_page("errors", run="done")
    at.multiselect(key="err_identities").set_value([identity]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["identity"]) == {identity}
    assert len(at.dataframe[0].value) == (wrong["identity"] == identity).sum()


def test_enlarge_opens_the_full_size_images(checkpoints, open_page):
    at = open_page("errors", run="done")
    first = wrong_of(checkpoints, "done")["query"].iloc[0]
    at.button(key=f"err_enlarge_{first}").click().run()
    assert not at.exception
    assert len(at.get("image")) == 3  # query, its rank-1 image, its true match, in a dialog


def test_run_without_embeddings_says_so(checkpoints, open_page):
    at = open_page("errors", run="broken")
    assert not at.exception
    assert "no embeddings yet" in at.info[0].value


@pytest.fixture
def perfect_run(trained_root, tmp_path, monkeypatch):
    """A copy of `done` whose queries sit exactly on a gallery image of their own identity."""
    root = tmp_path / "checkpoints"
    shutil.copytree(trained_root / "done", root / "perfect")
    run = RunDir(root / "perfect")
    arrays = Embeddings.load(run.embeddings_path).arrays()
    first = {label: i for i, label in reversed(list(enumerate(arrays["gallery_labels"])))}
    arrays["query_features"] = arrays["gallery_features"][[first[label] for label in arrays["query_labels"]]]
    run.write_embeddings(Embeddings(**arrays))
    monkeypatch.setenv("HANDID_CHECKPOINTS", str(root))
    return root


def test_all_right_says_so(perfect_run, open_page):
    at = open_page("errors", run="perfect")
    assert not at.exception
    queries = len(Embeddings.load(perfect_run / "perfect" / "embeddings.npz").query_labels)
    assert at.success[0].value.startswith(f"All {queries} queries find their own identity")
    assert not at.dataframe
