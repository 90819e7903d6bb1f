"""ONNX export: onnxruntime gives the torch embedding, any batch size, with readable metadata."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from core.errors import ModelError
from core.evaluate import checkpoint_thresholds
from core.export import OPSET, export_encoder, main, preprocess_config, read_metadata
from core.runs import RunDir
from core.evaluation import Extraction, extract_features
from core.model.checkpoint import load_checkpoint_model


def onnx_embed(path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def torch_embed(model, images: np.ndarray, feature: str, flip: bool) -> np.ndarray:
    return extract_features(model, torch.from_numpy(images), Extraction(feature, 16, flip, amp=False)).numpy()


@pytest.mark.parametrize("kind, exporter, flip", [("vit", "torchscript", False), ("vit", "torchscript", True),
                                                  ("rn", "torchscript", True), ("vit", "dynamo", True)])
def test_onnxruntime_gives_the_torch_embedding(tiny_model, hand_images, tmp_path, kind, exporter, flip):
    model, meta = tiny_model(kind)
    images = hand_images(16)
    expected = torch_embed(model, images, meta.feature, flip)
    out = tmp_path / "encoder.onnx"
    metadata = export_encoder(model, meta, out, flip=flip, exporter=exporter)
    got = onnx_embed(out, images)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.linalg.norm(got, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert (got * expected).sum(axis=1).min() >= 0.9999
    for n in (1, 5):  # dynamic batch
        assert (onnx_embed(out, images[:n]) * expected[:n]).sum(axis=1).min() >= 0.9999
    assert read_metadata(out) == metadata


def test_metadata_records_what_a_deployment_needs(tiny_model, tmp_path):
    model, meta = tiny_model("vit", size=(64, 32), feature="pre_bn")
    thresholds = [{"far_target": 1e-3, "threshold": 0.8, "far": 0.0, "tar": 0.5}]
    export_encoder(model, meta, tmp_path / "e.onnx", thresholds=thresholds)
    m = read_metadata(tmp_path / "e.onnx")
    pre = preprocess_config(model)
    assert (m["image_height"], m["image_width"], m["mean"], m["std"]) == (64, 32, pre["mean"], pre["std"])
    assert (m["feature"], m["flip"], m["backbone"], m["epoch"], m["num_classes"]) == ("pre_bn", False, "HandID-Tiny", 3, 5)
    assert (m["interpolation"], m["embedding_dim"], m["opset"], m["exporter"]) == ("bicubic", 64, OPSET, "torchscript")
    assert m["thresholds"] == thresholds and "uint8" in m["input_format"]


def test_cli_exports_a_run_with_its_thresholds(trained_run, hand_images, tmp_path, capsys):
    out = tmp_path / "encoder.onnx"
    assert main(["--run-dir", str(trained_run), "--checkpoint", "last", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    m = read_metadata(out)
    model, meta = load_checkpoint_model(RunDir.at(trained_run).checkpoint("last"))
    assert (m["image_height"], m["image_width"], m["epoch"], m["flip"]) == (32, 32, 2, False)  # the demo: no flip
    assert m["thresholds"] == checkpoint_thresholds(trained_run, "last")
    images = hand_images(16, size=(32, 32))
    expected = torch_embed(model, images, meta.feature, flip=False)
    assert (onnx_embed(out, images) * expected).sum(axis=1).min() >= 0.9999


def test_bad_inputs_are_one_line_model_errors(tiny_model, tmp_path):
    model, meta = tiny_model("vit")
    with pytest.raises(ModelError, match="exporter"):
        export_encoder(model, meta, tmp_path / "e.onnx", exporter="tflite")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="junk.onnx"):
        read_metadata(tmp_path / "junk.onnx")
    with pytest.raises(ModelError, match="not found"):
        read_metadata(tmp_path / "missing.onnx")
