"""Identify page: enrol a run's gallery with its encoder (the run's last checkpoint in torch, or an
ONNX model exported by core.export), then upload or pick a hand photo and see the most similar
enrolled identities with their images and scores, accepted or rejected at the run's verification
threshold for a chosen false accept rate (core.identify, core.verification).

The gallery is the one embeddings.npz lists (the final evaluation's first query/gallery run), so
the thresholds recorded by that evaluation apply to it; each enrolment is cached per encoder
and file versions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import DataError
from core.identify import Encoder, Gallery, best_images, embed_files, enrol_images, onnx_encoder, run_encoder, \
    search_features
from core.runs import RunDir
from core.verification import threshold_at
from dashboard import analysis
from dashboard.common import eval_record, file_version, show_error
from dashboard.figures import FIXED_COLOURS
from dashboard.views import PageSpec
from dashboard.widgets import image_grid

PAGE = PageSpec("Identify", "identify", ":material/fingerprint:", order=45)

SOURCES = {"run": "the run's last checkpoint (torch)", "onnx": "an exported ONNX model (onnxruntime)"}
TOP = 5
UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "webp"]


def render() -> None:
    st.title("Identify")
    try:
        run = analysis.pick_run_with_embeddings()
        if run is None:
            return
        source = st.radio("Encoder", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="id_source")
        model = onnx_path(run) if source == "onnx" else None
        if source == "onnx" and model is None:
            return
        gallery = enrolled(run, model)
        st.caption(f"Enrolled {len(gallery.paths):,} gallery images of {len(set(gallery.identities)):,} identities "
                   "(the run's evaluation gallery).")
        threshold = pick_threshold(gallery)
        probe = pick_probe(run)
        if probe is not None:
            show_search(run, model, gallery, probe, threshold)
    except Exception as exc:
        show_error(exc)


def onnx_path(run: RunDir) -> Path | None:
    """The ONNX model to use: one found in the run folder, or a path typed in."""
    found = sorted(str(p) for p in run.path.glob("*.onnx"))
    typed = st.text_input("ONNX model path (python -m core.export --run-dir R --out encoder.onnx)",
                          value=found[0] if found else "", key="id_onnx")
    if not typed:
        st.info("No .onnx file in the run folder: export one with python -m core.export, or type its path.")
        return None
    path = Path(typed)
    if not path.is_file():
        raise DataError(f"ONNX model not found: {path}")
    return path


def record_thresholds(run: RunDir) -> list[dict]:
    """The final evaluation's decision thresholds (eval.json), as core.verification lists them."""
    final = eval_record(run).final
    points = final.curves.get("thresholds", {}) if final else {}
    keys = ("far_target", "threshold", "far", "tar")
    return [dict(zip(keys, values)) for values in zip(*(points.get(k, []) for k in keys))]


@st.cache_resource(max_entries=4, show_spinner=False)
def _encoder(run_path: str, model: str | None, version: tuple[int, int]) -> Encoder:
    return onnx_encoder(model) if model else run_encoder(run_path, "last", device="cpu")


def encoder_of(run: RunDir, model: Path | None) -> Encoder:
    """The run's last checkpoint, or the ONNX model, loaded once per file version."""
    return _encoder(str(run.path), str(model) if model else None, file_version(model or run.last_path))


@st.cache_resource(max_entries=4, show_spinner=False)
def _gallery(run_path: str, model: str | None, versions: tuple) -> Gallery:
    run = RunDir(Path(run_path))
    encoder = _encoder(run_path, model, versions[0])
    emb = analysis.embeddings(run)
    thresholds = (encoder.thresholds() if model else []) or record_thresholds(run)
    return enrol_images(encoder, emb.gallery_paths.astype(str).tolist(), emb.gallery_identities.astype(str).tolist(),
                        thresholds)


def enrolled(run: RunDir, model: Path | None) -> Gallery:
    """The run's gallery enrolled with the chosen encoder (cached until a file changes)."""
    versions = (file_version(model or run.last_path), file_version(run.embeddings_path), file_version(run.eval_path))
    with st.spinner("Enrolling the gallery..."):
        return _gallery(str(run.path), str(model) if model else None, versions)


def pick_threshold(gallery: Gallery) -> float | None:
    """The threshold at the chosen FAR target, from the thresholds the gallery carries."""
    targets = [t["far_target"] for t in gallery.thresholds]
    if not targets:
        st.warning("No verification thresholds recorded for this encoder: matches are listed, not accepted.")
        return None
    far = st.selectbox("Accept at false accept rate", targets, format_func=lambda f: f"{f:g}", key="id_far")
    threshold = threshold_at(gallery.thresholds, far)
    st.caption(f"A probe is accepted when its best score is at least {threshold:.6f} (the evaluation's threshold "
               f"for FAR {far:g}).")
    return threshold


def pick_probe(run: RunDir) -> str | None:
    """An uploaded hand photo (saved to a temporary file), else one of the run's query images."""
    upload = st.file_uploader("Upload a hand photo", type=UPLOAD_TYPES, key="id_upload")
    if upload is not None:
        suffix = Path(upload.name).suffix.lower() or ".png"
        folder = Path(tempfile.gettempdir()) / "handid-identify"
        folder.mkdir(exist_ok=True)
        path = folder / f"{os.getpid()}-{abs(hash(upload.file_id))}{suffix}"
        path.write_bytes(upload.getvalue())
        return str(path)
    emb = analysis.embeddings(run)
    queries = {str(p): f"{i} · {Path(p).name}" for p, i in zip(emb.query_paths, emb.query_identities)}
    return st.selectbox("or pick one of the run's query images", list(queries), format_func=queries.get,
                        key="id_probe")


def show_search(run: RunDir, model: Path | None, gallery: Gallery, probe: str, threshold: float | None) -> None:
    """The probe, its top identities with their best images and scores, and the decision."""
    features = embed_files(encoder_of(run, model), [probe])
    result = search_features(gallery, features, [probe], TOP, threshold if threshold is not None else float("inf"))
    matches = result["results"][0]["matches"]
    identities = [m["identity"] for m in matches]
    if threshold is not None:
        if result["results"][0]["accepted"]:  # numbers only in the alerts (markdown); identities as text below
            st.success(f"Accepted: the best score {matches[0]['score']:.6f} is at least {threshold:.6f}")
        else:
            st.warning(f"Rejected: the best score {matches[0]['score']:.6f} is below {threshold:.6f}")
    accepted = [threshold is not None and m["score"] >= threshold for m in matches]
    image_grid([probe, *best_images(gallery, features[0], identities)],
               [f"probe · {Path(probe).name}", *(f"{i}. {m['identity']} · {m['score']:.4f}"
                                                 for i, m in enumerate(matches, 1))],
               [FIXED_COLOURS["query"], *(FIXED_COLOURS["right" if a else "wrong"] for a in accepted)],
               columns=TOP + 1, width=130, key="id_matches")
    st.dataframe(pd.DataFrame({"rank": range(1, len(matches) + 1), "identity": identities,
                               "score": [m["score"] for m in matches], "accepted": accepted}),
                 hide_index=True, key="id_table")
