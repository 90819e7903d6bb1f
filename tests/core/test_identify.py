"""Enrol and search: a trained run's gallery and queries give that run's rank-1, by torch and by ONNX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.runs import Embeddings
from core.errors import DataError, HandIDError
from core.evaluate import checkpoint_thresholds
from core.export import export_run, read_metadata
from core.identify import Gallery, main, rank_identities
from core.metrics import ranked_gallery
from core.runs import RunDir


@pytest.fixture(scope="module")
def run_embeddings(trained_run) -> Embeddings:
    return Embeddings.load(RunDir.at(trained_run).embeddings_path)


@pytest.fixture(scope="module")
def manifest(run_embeddings, tmp_path_factory) -> Path:
    """The run's gallery images (run 0 of its final evaluation) as a CSV manifest path,identity."""
    path = tmp_path_factory.mktemp("gallery") / "gallery.csv"
    pd.DataFrame({"path": run_embeddings.gallery_paths, "identity": run_embeddings.gallery_identities}).to_csv(
        path, index=False)
    return path


@pytest.fixture(scope="module")
def encoder_onnx(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "encoder.onnx"
    export_run(trained_run, out, checkpoint="last")
    return out


def search_json(capsys, gallery: Path, images, *extra: str) -> dict:
    assert main(["search", "--gallery", str(gallery), *map(str, images), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def expected_rank1(emb: Embeddings) -> list[str]:
    order, _ = ranked_gallery(emb.query_features, emb.gallery_features, k=1)
    return emb.gallery_identities[order[:, 0].numpy()].astype(str).tolist()


@pytest.mark.parametrize("encoder", ["run", "onnx"])
def test_enrol_and_search_reproduce_the_runs_rank1(trained_run, run_embeddings, manifest, encoder_onnx, encoder,
                                                   tmp_path, capsys):
    source = ["--run-dir", str(trained_run), "--checkpoint", "last"] if encoder == "run" else ["--model", str(encoder_onnx)]
    out = tmp_path / "gallery.npz"
    assert main(["enrol", *source, "--images", str(manifest), "--out", str(out)]) == 0
    assert "enrolled" in capsys.readouterr().out
    gallery = Gallery.load(out)
    by_path = dict(zip(gallery.paths, gallery.features))
    enrolled = np.stack([by_path[p] for p in run_embeddings.gallery_paths])
    assert enrolled == pytest.approx(run_embeddings.gallery_features, abs=1e-4)  # same images, feature, flip
    assert [t["far_target"] for t in gallery.thresholds] == [1e-2, 1e-3]
    assert gallery.thresholds == (checkpoint_thresholds(trained_run, "last") if encoder == "run"
                                  else read_metadata(encoder_onnx)["thresholds"])

    result = search_json(capsys, out, run_embeddings.query_paths, "--top", "3")
    assert [r["image"] for r in result["results"]] == run_embeddings.query_paths.tolist()
    assert [r["matches"][0]["identity"] for r in result["results"]] == expected_rank1(run_embeddings)
    assert set(result) == {"results"}
    assert all(set(r) == {"image", "matches", "accepted"} and len(r["matches"]) == 3 for r in result["results"])
    assert all(set(m) == {"identity", "score"} for r in result["results"] for m in r["matches"])


def test_acceptance_follows_the_threshold(trained_run, run_embeddings, manifest, tmp_path, capsys):
    out = tmp_path / "gallery.npz"
    main(["enrol", "--run-dir", str(trained_run), "--checkpoint", "last", "--images", str(manifest), "--out", str(out)])
    capsys.readouterr()
    probes = run_embeddings.query_paths[:6]
    assert all(r["accepted"] for r in search_json(capsys, out, probes, "--threshold", "-1")["results"])
    assert not any(r["accepted"] for r in search_json(capsys, out, probes, "--threshold", "1.01")["results"])
    threshold = {t["far_target"]: t["threshold"] for t in Gallery.load(out).thresholds}
    for far in ("1e-2", "1e-3"):
        results = search_json(capsys, out, probes, "--far", far)["results"]
        assert [r["accepted"] for r in results] == [r["matches"][0]["score"] >= threshold[float(far)] for r in results]
    default = search_json(capsys, out, probes)["results"]
    assert default == search_json(capsys, out, probes, "--far", "1e-3")["results"]
    with pytest.raises(HandIDError, match=f"{out}: no verification threshold for FAR 0.05"):
        main(["search", "--gallery", str(out), str(probes[0]), "--far", "0.05"])
    assert main(["search", "--gallery", str(out), str(probes[0]), "--top", "2"]) == 0
    assert "1. " in capsys.readouterr().out


def test_identities_are_scored_by_their_best_image():
    gallery = Gallery(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32),
                      np.array(["b", "a", "b", "c"]), np.array(["1", "2", "3", "4"]), [], {})
    probe = np.array([[0.0, 1.0]], dtype=np.float32)
    ranked = rank_identities(gallery, probe, top=5)[0]
    assert [m["identity"] for m in ranked] == ["a", "b", "c"]
    assert [m["score"] for m in ranked] == pytest.approx([1.0, 0.8, 0.6])
    tie = rank_identities(gallery, np.array([[1.0, 1.0]], dtype=np.float32) / np.sqrt(2), top=2)[0]
    assert [m["identity"] for m in tie] == ["b", "c"]  # b (0.6, 0.8) and c (0.8, 0.6) tie: b appears first


def test_a_folder_of_identities_enrols_and_needs_a_threshold_without_one(trained_run, encoder_onnx, run_embeddings,
                                                                        tmp_path, capsys):
    folder = tmp_path / "people"
    for path, identity in zip(run_embeddings.gallery_paths[:4], run_embeddings.gallery_identities[:4]):
        (folder / identity).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / identity / Path(path).name)
    bare = tmp_path / "bare.onnx"
    export_run(trained_run, bare, checkpoint="last", thresholds=False)
    out = tmp_path / "gallery.npz"
    assert main(["enrol", "--model", str(bare), "--images", str(folder), "--out", str(out)]) == 0
    assert "thresholds none" in capsys.readouterr().out
    assert len(Gallery.load(out).paths) == 4
    with pytest.raises(HandIDError, match=f"{out}: no verification threshold .*recorded: none"):
        main(["search", "--gallery", str(out), run_embeddings.query_paths[0]])
    result = search_json(capsys, out, run_embeddings.query_paths[:1], "--threshold", "0.5")
    assert len(result["results"][0]["matches"]) == len({*run_embeddings.gallery_identities[:4]})


def test_bad_input_is_a_one_line_error_naming_the_file(encoder_onnx, tmp_path):
    with pytest.raises(DataError, match="gallery not found"):
        main(["search", "--gallery", str(tmp_path / "none.npz"), "x.jpg", "--threshold", "0"])
    (tmp_path / "fake.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="fake.npz"):
        main(["search", "--gallery", str(tmp_path / "fake.npz"), "x.jpg", "--threshold", "0"])
    csv = tmp_path / "list.csv"
    csv.write_text("path,identity\nmissing.jpg,1\nalso.jpg,2\n")
    with pytest.raises(DataError, match="missing.jpg"):
        main(["enrol", "--model", str(encoder_onnx), "--images", str(csv), "--out", str(tmp_path / "g.npz")])
    csv.write_text("file,person\na.jpg,1\n")
    with pytest.raises(DataError, match="list.csv"):
        main(["enrol", "--model", str(encoder_onnx), "--images", str(csv), "--out", str(tmp_path / "g.npz")])
