"""Studies and Sweeps pages in a real browser over a constructed study and sweep (no training): the
forest plot and the parallel coordinates render, and their screenshots are the README's
(docs/screenshots/studies.png, sweeps.png)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.runs import RunDir
from tests.browser.conftest import shot, wait_for_app
from tests.conftest import REPO
from tests.study_folders import constructed_study, constructed_sweep, seeded_values

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "docs" / "screenshots"
EXCEPTION = '[data-testid="stException"]'


def readme_shot(page: Page, selector: str, name: str, top: bool = False) -> Path:
    """Scroll the element into view (to the top of the viewport with `top`) and save the viewport as
    docs/screenshots/<name>.png (and in tests/artifacts)."""
    element = page.locator(selector).first
    if top:
        element.evaluate("e => e.scrollIntoView({block: 'start'})")
    else:
        element.scroll_into_view_if_needed()
    wait_for_app(page)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path)
    shot(page, name)
    return path


def test_forest_plot_and_parallel_coordinates(page: Page, open_page: Callable[..., None], served_root: Path) -> None:
    values = seeded_values(effect=0.03, seeds=5)
    values["CE+triplet"] = values.pop("TRI")
    values["CE+center"] = {s: v + 0.002 * (-1) ** s for s, v in values["CE"].items()}
    study = constructed_study(served_root, values, seeds=5, name="demo_study")
    ids = constructed_sweep(served_root, [0.2, 0.3, 0.5], [0.41, 0.52, 0.41, 0.55, 0.38, 0.47], stopped=4)

    open_page(page, "studies", "Studies", study=study.id)
    forest = ".st-key-studies_forest .js-plotly-plot"
    expect(page.locator(forest)).to_be_visible()
    expect(page.locator(f"{forest} .point").first).to_be_visible()  # per-seed points and the means
    expect(page.get_by_text("CE+triplet beats CE by +0.0", exact=False)).to_be_visible()
    expect(page.get_by_text("No detectable difference between CE+center and CE", exact=False)).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)
    readme_shot(page, "h3:has-text('Against the reference')", "studies", top=True)

    open_page(page, "sweeps", "Sweeps", sweep=RunDir.at(served_root / ids[0]).read_status().sweep_id)
    parallel = ".st-key-sweeps_parallel .js-plotly-plot"
    expect(page.locator(f"{parallel} .parcoords")).to_be_visible()
    expect(page.get_by_text("2 runs have bit-identical results", exact=False)).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)
    readme_shot(page, parallel, "sweeps")
