"""Shared widgets: image grids with coloured borders and captions, metric cards."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.widgets import cell_html, format_value


def _grid(paths: list[str], captions: list[str], borders: list[str]) -> None:
    from dashboard.widgets import image_grid

    image_grid(paths, captions, borders, columns=2, width=40, key="grid")


def _cards() -> None:
    from dashboard.widgets import metric_cards

    metric_cards({"rank-1": 91.234, "mAP": None, "runs": 3}, {"rank-1": 2.5})


@pytest.fixture
def photo(tmp_path: Path) -> str:
    path = tmp_path / "hand.jpg"
    Image.new("RGB", (80, 60), (200, 150, 120)).save(path)
    return str(path)


def test_grid_shows_each_image_with_its_border_and_caption(photo):
    at = AppTest.from_function(_grid, args=([photo, "/missing.jpg", photo], ["a", "b<", "c"], ["red", "green", "#00f"]))
    at.run()
    assert not at.exception
    cells = [m.value for m in at.markdown]
    assert len(cells) == 3
    assert "border:4px solid red" in cells[0] and ">a</div>" in cells[0]
    assert "unreadable: missing.jpg" in cells[1] and "b&lt;" in cells[1]
    assert "border:4px solid #00f" in cells[2]


def test_thumbnails_are_scaled_to_the_width(photo):
    html = cell_html(photo, "", "red", 40)
    data = base64.b64decode(html.split("base64,")[1].split('"')[0])
    assert Image.open(io.BytesIO(data)).size == (40, 30)


def test_grid_rejects_captions_that_do_not_match_the_images(photo):
    at = AppTest.from_function(_grid, args=([photo], ["a", "b"], ["red"])).run()
    assert "2 captions for 1 images" in at.exception[0].message


def test_metric_cards_format_values_and_deltas():
    at = AppTest.from_function(_cards).run()
    assert [(m.label, m.value, m.delta) for m in at.metric] == [("rank-1", "91.23", "+2.50"), ("mAP", "–", ""),
                                                               ("runs", "3", "")]
    assert format_value(0.5) == "0.50"
