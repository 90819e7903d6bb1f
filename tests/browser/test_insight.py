"""In the browser: the Identify page identifies a picked query and the Errors page shows the attention
maps of a mistake; both saved as the README's screenshots (docs/screenshots/)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.conftest import REPO

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "docs" / "screenshots"


def test_identify_and_the_errors_attention_maps(page: Page, open_page: Callable[..., None]) -> None:
    open_page(page, "identify", "Identify", run="done")
    matches = page.locator(".st-key-id_matches img")
    expect(matches.first).to_be_visible()
    expect(matches).to_have_count(6)  # the probe and its top 5 identities
    expect(page.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]')
           .first).to_contain_text("the best score")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.mouse.move(640, 400)
    page.mouse.wheel(0, 450)  # down to the probe's matches
    expect(matches.first).to_be_in_viewport()
    page.screenshot(path=SCREENSHOTS / "identify.png")
    shot(page, "identify-done")

    open_page(page, "errors", "Errors", run="done")
    maps = page.locator(".st-key-err_maps img")
    expect(maps).to_have_count(3)  # query, wrong rank-1, true match
    for i in range(3):
        expect(maps.nth(i)).to_be_visible()
    page.get_by_text("Element-wise Grad-CAM").scroll_into_view_if_needed()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "errors_maps.png")
    shot(page, "errors-maps")
