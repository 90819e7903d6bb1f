"""Shared dashboard widgets: image grids with coloured borders and metric cards.

Images are shown as small inline thumbnails (decoded once per file version and cached), so a
grid of hundreds of 1600x1200 photos costs a few kilobytes each instead of the full files.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_BORDER = "#d0d0d0"


@st.cache_data(max_entries=4096, show_spinner=False)
def thumbnail_uri(path: str, mtime: float, width: int) -> str:
    """A JPEG data URI of the image at `path` scaled to `width` pixels wide (mtime keys the cache)."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


# Square brackets as character references: inline HTML is still parsed as markdown around its tags,
# and without brackets no caption can become a link or an image.
BRACKETS = str.maketrans({"[": "&#91;", "]": "&#93;"})


def html_text(text: str) -> str:
    """User text for an HTML snippet rendered through st.markdown: escaped as HTML, never a link or image."""
    return html.escape(text).translate(BRACKETS)


def cell_html(path: str, caption: str, border: str, width: int) -> str:
    """One grid cell: the bordered thumbnail and its caption, or a note when the file cannot be read."""
    label = f'<div style="font-size:0.8em;word-break:break-all">{html_text(caption)}</div>' if caption else ""
    try:
        uri = thumbnail_uri(path, Path(path).stat().st_mtime, width)
    except (OSError, UnidentifiedImageError, ValueError):
        box = (f'<div style="width:{width}px;height:{width}px;border:4px solid {html.escape(border)};'
               f'display:flex;align-items:center;justify-content:center;font-size:0.8em">'
               f"unreadable: {html.escape(Path(path).name)}</div>")
        return box + label
    img = (f'<img src="{uri}" title="{html.escape(path)}" '
           f'style="width:{width}px;max-width:100%;border:4px solid {html.escape(border)};border-radius:4px">')
    return img + label


def image_grid(
    paths: list[str],
    captions: list[str] | None = None,
    borders: list[str] | None = None,
    columns: int = 5,
    width: int = 160,
    key: str = "image_grid",
) -> None:
    """Images in rows of `columns`, each with an optional caption and a CSS-coloured border."""
    if captions is not None and len(captions) != len(paths):
        raise ValueError(f"image_grid: {len(captions)} captions for {len(paths)} images")
    if borders is not None and len(borders) != len(paths):
        raise ValueError(f"image_grid: {len(borders)} borders for {len(paths)} images")
    columns = max(1, columns)
    with st.container(key=key):
        for row in range(math.ceil(len(paths) / columns)):
            cells = st.columns(columns)
            for col, i in zip(cells, range(row * columns, min(len(paths), (row + 1) * columns))):
                caption = captions[i] if captions else ""
                border = borders[i] if borders else DEFAULT_BORDER
                col.markdown(cell_html(str(paths[i]), caption, border, width), unsafe_allow_html=True)


def format_value(value: object) -> str:
    """Numbers with 2 decimals (ints as they are), anything else as text; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def metric_cards(
    values: Mapping[str, object],
    deltas: Mapping[str, float | None] | None = None,
    columns: int = 6,
) -> None:
    """A row (or rows) of st.metric cards; `deltas` shows the change of a value (e.g. epoch 0 -> final)."""
    items = list(values.items())
    columns = max(1, columns)
    for start in range(0, len(items), columns):
        cells = st.columns(columns)
        for col, (label, value) in zip(cells, items[start:start + columns]):
            delta = (deltas or {}).get(label)
            col.metric(label, format_value(value), None if delta is None else f"{delta:+.2f}", border=True)
