"""`python -m core.export --run-dir R [--checkpoint best|last|PATH] --out encoder.onnx [--flip | --no-flip]
[--exporter torchscript|dynamo] [--no-thresholds]`.

Exports a run's image encoder to ONNX for deployment (`core.identify`, or any onnxruntime):

- input `images`: uint8 RGB, NHWC `[batch, height, width, 3]`, each image resized to the
  recorded height x width (stretched, bicubic: `core.data.cache.decode_image`); the graph does
  the rest (scaling to [0, 1], the model's mean/std), so a deployment needs no preprocessing
  code beyond the resize;
- output `embeddings`: float32 `[batch, dim]`, the run's retrieval feature (pre_bn / post_bn
  from the checkpoint), L2-normalised, optionally with the flip test-time augmentation;
- opset 18, dynamic batch axis;
- metadata_props, every value JSON-encoded (`read_metadata` decodes them): image_height,
  image_width, mean, std, interpolation, input_format, feature, flip, backbone, pretrained,
  epoch, num_classes, embedding_dim, exporter, opset, and `thresholds`: the checkpoint's
  verification thresholds on its own protocol (core.verification; [] with --no-thresholds).

Exporters: the TorchScript exporter (`dynamo=False`, the default: fast, works for the ViT
and ModifiedResNet encoders) or torch.export (`dynamo=True`, also works for both, slower).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from google.protobuf.message import DecodeError

from core.cli import run_cli
from core.data.augment import hflip, normalise, to_float
from core.errors import ModelError
from core.evaluate import checkpoint_thresholds, run_config
from core.model.checkpoint import load_checkpoint_model
from core.model.handid import HandIDModel
from core.runs import CheckpointMeta, RunDir

OPSET = 18
EXPORTERS = ("torchscript", "dynamo")
INPUT, OUTPUT = "images", "embeddings"
INPUT_FORMAT = "uint8 RGB NHWC [batch, image_height, image_width, 3], resized (stretched, bicubic) to that size"


def preprocess_config(model: HandIDModel) -> dict[str, Any]:
    """The model's own preprocessing (core.model.preprocess): mean, std, interpolation."""
    pre = model.preprocess
    return {"mean": list(pre.mean), "std": list(pre.std), "interpolation": pre.interpolation}


class DeployedEncoder(torch.nn.Module):
    """uint8 NHWC images -> L2-normalised retrieval features, normalisation and flip TTA inside."""

    def __init__(self, model: HandIDModel, feature: str, flip: bool) -> None:
        super().__init__()
        self.model, self.feature, self.flip = model, feature, flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalise(to_float(images), self.model.preprocess)
        f = self.model.embed(x, self.feature)
        if self.flip:
            f = f + self.model.embed(hflip(x), self.feature)
        return F.normalize(f, dim=-1)


def _trace(encoder: DeployedEncoder, example: torch.Tensor, out: Path, exporter: str) -> None:
    """torch.onnx.export with a dynamic batch axis, by the named exporter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # MHA's shape assertions, constant per model
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        if exporter == "dynamo":
            torch.onnx.export(encoder, (example,), str(out), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamo=True, external_data=False,
                              dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, verbose=False)
        else:
            torch.onnx.export(encoder, (example,), str(out), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamo=False,
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})


def export_encoder(model: HandIDModel, meta: CheckpointMeta, out: str | Path, flip: bool = False,
                   exporter: str = "torchscript", thresholds: list[dict] | None = None) -> dict[str, Any]:
    """Write `model`'s deployed encoder to `out` (ONNX) with its metadata; returns the metadata.
    The model is traced on the CPU (and left there, in eval mode).

    `meta` is the checkpoint's metadata (image_size, feature, backbone, ...); `thresholds` the
    verification thresholds to record (core.verification's "thresholds" list).
    """
    if exporter not in EXPORTERS:
        raise ModelError(f"exporter {exporter!r} is not valid; choose one of {', '.join(EXPORTERS)}")
    out = Path(out)
    height, width = meta.image_size
    feature = meta.feature
    encoder = DeployedEncoder(model.cpu().eval(), feature, flip).eval()
    example = torch.zeros((2, height, width, 3), dtype=torch.uint8)
    with torch.no_grad():
        dim = int(encoder(example).shape[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    _trace(encoder, example, out, exporter)
    metadata = {"image_height": height, "image_width": width, **preprocess_config(model),
                "input_format": INPUT_FORMAT, "feature": feature, "flip": bool(flip),
                "backbone": meta.backbone, "pretrained": meta.pretrained, "epoch": meta.epoch,
                "num_classes": meta.num_classes,
                "embedding_dim": dim, "exporter": exporter, "opset": OPSET, "thresholds": list(thresholds or [])}
    graph = onnx.load(str(out))
    del graph.metadata_props[:]
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(graph, str(out))
    return metadata


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata `export_encoder` recorded in an ONNX file (the graph itself is not loaded)."""
    path = Path(path)
    try:
        graph = onnx.load(str(path), load_external_data=False)
        return {p.key: json.loads(p.value) for p in graph.metadata_props}
    except FileNotFoundError:
        raise ModelError(f"{path}: ONNX model not found") from None
    except (OSError, ValueError, DecodeError) as exc:
        raise ModelError(f"{path}: not an ONNX model exported by core.export ({exc})") from None


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best", flip: bool | None = None,
               exporter: str = "torchscript", thresholds: bool = True) -> dict[str, Any]:
    """Export a run's checkpoint; flip defaults to the run's eval.flip, and with `thresholds` the
    checkpoint is evaluated on its own protocol (run 0) for the verification thresholds."""
    run = RunDir.at(run_dir)
    flip = run_config(run).eval.flip if flip is None else flip
    path = run.checkpoint(checkpoint)
    model, meta = load_checkpoint_model(path)
    points = checkpoint_thresholds(run_dir, checkpoint, flip=flip) if thresholds else []
    return export_encoder(model, meta, out, flip, exporter, points)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.export", description="Export a run's image encoder to ONNX.")
    parser.add_argument("--run-dir", required=True, help="run folder holding the checkpoint and config.yaml")
    parser.add_argument("--checkpoint", default="best", help="best, last or a .safetensors path (default best)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="flip test-time augmentation inside the graph (default: the run's eval.flip)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript", help="torch.onnx exporter")
    parser.add_argument("--no-thresholds", action="store_true",
                        help="skip evaluating the checkpoint for its verification thresholds (no dataset needed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metadata = export_run(args.run_dir, args.out, args.checkpoint, args.flip, args.exporter, not args.no_thresholds)
    print(f"wrote {args.out}: {metadata['backbone']} epoch {metadata['epoch']}, {metadata['feature']} "
          f"{metadata['embedding_dim']}-d, input {metadata['image_height']}x{metadata['image_width']} uint8 NHWC, "
          f"flip {'on' if metadata['flip'] else 'off'}, {len(metadata['thresholds'])} thresholds")
    return 0


if __name__ == "__main__":
    run_cli(main)
