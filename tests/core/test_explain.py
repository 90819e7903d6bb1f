"""Class-activation maps of a pair's similarity: ViT and ResNet encoders, and the CLI overlay."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.runs import Embeddings
from core.data.augment import eval_batch
from core.errors import DataError, ModelError
from core.explain import DEFAULT_METHOD, METHODS, explain_files, explain_similarity, main, overlay, tokens_to_grid
from core.metrics import ranked_gallery
from core.runs import RunDir


@pytest.mark.parametrize("kind", ["vit", "rn"])
@pytest.mark.parametrize("method", list(METHODS))
def test_the_target_is_the_pairs_cosine(tiny_model, hand_images, kind, method):
    model, meta = tiny_model(kind)
    images = hand_images(2)
    result = explain_similarity(model, meta.feature, images[0], images[1], method)
    assert result.heatmap.shape == (64, 48) and result.heatmap.dtype == np.float32
    assert np.isfinite(result.heatmap).all() and result.heatmap.min() >= 0 and result.heatmap.max() <= 1
    with torch.no_grad():
        a, b = (model.embed(eval_batch(torch.from_numpy(im[None]), model.preprocess), meta.feature) for im in images)
    assert result.similarity == pytest.approx(float(F.cosine_similarity(a, b)), abs=1e-6)


@pytest.mark.parametrize("kind", ["vit", "rn"])
def test_the_default_maps_vary_across_the_image(tiny_model, hand_images, kind):
    model, meta = tiny_model(kind)
    images = hand_images(8)
    for query, gallery in zip(images[:4], images[4:]):
        assert explain_similarity(model, meta.feature, query, gallery).heatmap.std() > 0.01


def test_a_reference_embedding_gives_the_same_map_as_its_image(tiny_model, hand_images):
    model, meta = tiny_model("vit")
    images = hand_images(2)
    with torch.no_grad():
        reference = model.embed(eval_batch(torch.from_numpy(images[1][None]), model.preprocess), meta.feature)[0]
    by_image = explain_similarity(model, meta.feature, images[0], images[1])
    by_embedding = explain_similarity(model, meta.feature, images[0], reference)
    assert by_embedding.heatmap == pytest.approx(by_image.heatmap, abs=1e-5)
    assert by_embedding.similarity == pytest.approx(by_image.similarity)
    assert explain_similarity(model, meta.feature, images[0], images[0]).similarity == pytest.approx(1.0, abs=1e-5)


def test_tokens_reshape_to_the_patch_grid_in_either_layout():
    tokens = torch.arange(2 * 7 * 5, dtype=torch.float32).reshape(2, 7, 5)  # N=2, 1 class + 2x3 patches, D=5
    grid = tokens_to_grid(tokens, (2, 3), batch_first=True)
    assert grid.shape == (2, 5, 2, 3)
    assert torch.equal(grid[1, :, 0, 2], tokens[1, 3])  # row 0, column 2 = patch 2 = token 3
    assert torch.equal(tokens_to_grid(tokens.transpose(0, 1), (2, 3), batch_first=False), grid)


def test_overlay_has_the_images_size():
    image = np.full((30, 20, 3), 128, dtype=np.uint8)
    heat = np.linspace(0, 1, 8 * 6, dtype=np.float32).reshape(8, 6)
    out = overlay(image, heat)
    assert out.shape == (30, 20, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() != out[-1, -1].tolist()


def test_cli_writes_an_overlay_of_the_query_against_its_top_match(trained_run, tmp_path, capsys):
    emb = Embeddings.load(RunDir.at(trained_run).embeddings_path)
    query = str(emb.query_paths[0])
    out = tmp_path / "map.png"
    assert main(["--run-dir", str(trained_run), "--checkpoint", "last", "--query", query, "--out", str(out)]) == 0
    order, _ = ranked_gallery(emb.query_features[:1], emb.gallery_features, k=1)
    rank1 = str(emb.gallery_paths[int(order[0, 0])])
    printed = capsys.readouterr().out
    assert f"{DEFAULT_METHOD} of {query} against {rank1}" in printed  # the run's rank-1 (the demo evaluates unflipped)
    with Image.open(query) as original, Image.open(out) as written:
        assert written.format == "PNG" and written.size == original.size
    explanation, gallery = explain_files(trained_run, query, checkpoint="last")
    assert gallery == rank1 and explanation.heatmap.std() > 0.01


def test_an_explicit_gallery_image_is_the_reference(trained_run):
    emb = Embeddings.load(RunDir.at(trained_run).embeddings_path)
    explanation, gallery = explain_files(trained_run, emb.query_paths[0], emb.gallery_paths[-1], checkpoint="last")
    assert gallery == str(emb.gallery_paths[-1]) and explanation.heatmap.std() > 0.01
    with pytest.raises(DataError, match="nope.jpg"):
        explain_files(trained_run, "nope.jpg", emb.gallery_paths[0])
    with pytest.raises(ModelError, match="unknown CAM method"):
        explain_similarity(None, "pre_bn", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), "magic")
