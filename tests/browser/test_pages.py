"""The dashboard in a real browser: every page renders without an error, a run started from the
New run page trains to the end, and the Errors and Embeddings pages show images."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot, wait_for_app

pytestmark = pytest.mark.browser

EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
PLOT = ".js-plotly-plot"
TRAINING_TIMEOUT_MS = 240_000

# (name, url path, title, query, a selector that shows the page has rendered to its end, errors expected).
# New run is the default page: served at the root URL and at its own url_path.
PAGES = [
    ("new_run", "", "New run", {}, "button:has-text('Start training')", False),
    ("new_run_url", "new_run", "New run", {}, "button:has-text('Start training')", False),  # its own URL too
    ("runs", "runs", "Runs", {}, "text=Selected runs", False),
    ("run", "run", "Run", {"run": "done"}, PLOT, False),
    ("run_failed", "run", "Run", {"run": "broken"}, "text=Log tail", True),
    ("embeddings", "embeddings", "Embeddings", {"run": "done"}, PLOT, False),
    ("errors", "errors", "Errors", {"run": "done"}, "[class*='st-key-err_grid_'] img", False),
    ("compare", "compare", "Compare", {"runs": "done,done_ce"}, "text=Sweep leaderboard", False),
    ("cross_eval", "cross_eval", "Cross evaluation", {}, "text=Fill missing cells", False),
]


@pytest.mark.parametrize(("url_path", "title", "query", "ready", "errors"), [p[1:] for p in PAGES],
                         ids=[p[0] for p in PAGES])
def test_page_renders_without_errors(page: Page, open_page: Callable[..., None], url_path: str, title: str,
                                     query: dict[str, str], ready: str, errors: bool) -> None:
    open_page(page, url_path, title, **query)
    expect(page.locator(ready).first).to_be_visible()
    shot(page, f"page-{url_path or 'new_run'}-{'-'.join(query.values()) or 'plain'}")
    expect(page.locator(EXCEPTION)).to_have_count(0)
    if errors:  # a failed run shows its one-line error, not a traceback
        expect(page.locator(ERROR).first).to_contain_text("at least 2 are needed")
    else:
        expect(page.locator(ERROR)).to_have_count(0)


def test_run_page_shows_curves_and_results(page: Page, open_page: Callable[..., None]) -> None:
    open_page(page, "run", "Run", run="done")
    expect(page.locator(PLOT).first).to_be_visible()
    expect(page.get_by_text("succeeded", exact=True)).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]')).to_have_count(4)  # rank-1, mAP in both conventions, mINP
    shot(page, "run-done")


def test_errors_page_shows_query_images(page: Page, open_page: Callable[..., None]) -> None:
    open_page(page, "errors", "Errors", run="done")
    first_query = page.locator("[class*='st-key-err_grid_']").first
    expect(first_query.locator("img").first).to_be_visible()
    assert first_query.locator("img").count() >= 2  # the query and at least its rank-1 match
    shot(page, "errors-done")


def lasso_whole_plot(page: Page) -> None:
    """Draw a lasso (the scatter's drag mode) around the whole plot area with the mouse."""
    area = page.locator(f"{PLOT} .nsewdrag").first
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    assert box is not None
    left, top = box["x"] + 3, box["y"] + 3
    right, bottom = box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in [(right, top), (right, bottom), (left, bottom), (left, top + 5)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_embeddings_selection_shows_images(page: Page, open_page: Callable[..., None]) -> None:
    open_page(page, "embeddings", "Embeddings", run="done")
    expect(page.locator(PLOT).first).to_be_visible()
    expect(page.locator(".st-key-emb_selected img")).to_have_count(0)
    lasso_whole_plot(page)
    expect(page.locator(".st-key-emb_selected img").first).to_be_visible()
    expect(page.get_by_role("heading", name="Nearest neighbours")).to_be_visible()
    expect(page.locator("[class*='st-key-emb_neighbours_'] img").first).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)
    shot(page, "embeddings-selection")


def set_field(page: Page, label: str, value: str) -> None:
    """Type a value into the text or number input labelled `label` and commit it (Enter)."""
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    expect(field).to_have_value(value)


def test_new_run_trains_to_success(page: Page, open_page: Callable[..., None], synth_root: Path,
                                   tmp_path: Path) -> None:
    """The demo preset shrunk to seconds (6 identities, 32 px, 1 epoch, batches of 6) goes from the
    form to a succeeded run with curves."""
    open_page(page, "", "New run")
    expect(page.get_by_role("combobox", name="Preset")).to_have_value("demo.yaml")
    set_field(page, "Root folder (or manifest CSV)", str(synth_root))
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()  # the protocol's split sizes
    for label, value in [("Epochs", "1"), ("Evaluate every (epochs; 0 = start and end only)", "0"),
                         ("Image height", "32"), ("Image width", "32"), ("Evaluation runs (query/gallery draws)", "1")]:
        set_field(page, label, value)
    for label, value in [("P (identities per batch)", "3"), ("K (images per identity)", "2"), ("Batch size", "6")]:
        if page.get_by_label(label, exact=True).is_enabled():  # P and K for the PK sampler, else the batch size
            set_field(page, label, value)
    page.get_by_text("More settings").click()
    for label, value in [("data.cache_dir", str(tmp_path / "cache")), ("train.log_every", "1")]:
        set_field(page, label, value)
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    queued = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Queued 1 run")
    expect(queued).to_be_visible()
    run_id = re.search(r"Queued 1 run: (\S+)", queued.inner_text()).group(1)
    shot(page, "new-run-queued")

    open_page(page, "runs", "Runs")
    table = page.locator('[data-testid="stDataFrame"]').first  # its cells are mirrored in an accessible <table>
    column = table.locator('th:text-is("State")').get_attribute("aria-colindex")
    state = table.locator(f'tr:has(td:text-is("{run_id}")) td[aria-colindex="{column}"]')
    expect(state).to_have_text(re.compile("^(succeeded|failed|cancelled)$"), timeout=TRAINING_TIMEOUT_MS)
    shot(page, "runs-after-training")
    expect(state).to_have_text("succeeded")

    open_page(page, "run", "Run", run=run_id)
    expect(page.locator(PLOT).first).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)
    shot(page, "run-new")
