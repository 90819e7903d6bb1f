"""Attention maps of a run's mistakes for the Errors page (core.explain), computed on demand.

The checkpoint is the one embeddings.npz came from (the final evaluation's: last.safetensors,
else best), loaded once per file version on the CPU; each mistake's three overlays are cached,
so paging back and forth costs nothing. One lock: Grad-CAM hooks the shared model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from core.explain import explain_mistake, overlay, read_rgb
from core.model.checkpoint import load_checkpoint_model
from core.runs import RunDir
from dashboard.common import file_version

SHOWN_WIDTH = 256  # overlays are drawn on the image scaled to this width
_lock = threading.Lock()


def checkpoint_of(run: RunDir) -> Path:
    """The checkpoint whose features embeddings.npz holds: the last epoch's, else the selected one."""
    return run.last_path if run.last_path.exists() else run.checkpoint("best")


@st.cache_resource(max_entries=2, show_spinner=False)
def _model(path: str, version: tuple[int, int]):
    model, meta = load_checkpoint_model(path)
    return model.cpu().eval(), meta


def _small(path: str) -> np.ndarray:
    image = Image.fromarray(read_rgb(path))
    height = max(1, round(image.height * SHOWN_WIDTH / image.width))
    return np.asarray(image.resize((SHOWN_WIDTH, height), Image.Resampling.BILINEAR))


@st.cache_data(max_entries=128, show_spinner=False)
def _maps(checkpoint: str, version: tuple[int, int], query: str, rank1: str, true_match: str) -> dict:
    model, meta = _model(checkpoint, version)
    with _lock:
        found = explain_mistake(model, meta, query, rank1, true_match)
    paths = {"query": query, "rank1": rank1, "true": true_match}
    return {name: (overlay(_small(paths[name]), e.heatmap), e.similarity, e.heatmap) for name, e in found.items()}


def mistake_maps(run: RunDir, query: str, rank1: str, true_match: str) -> dict[str, tuple[np.ndarray, float, np.ndarray]]:
    """{"query" | "rank1" | "true": (overlay uint8 RGB, the explained cosine, the [h, w] heat map)}."""
    checkpoint = checkpoint_of(run)
    return _maps(str(checkpoint), file_version(checkpoint), str(query), str(rank1), str(true_match))
