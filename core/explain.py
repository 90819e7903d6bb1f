"""`python -m core.explain --run-dir R --query IMAGE [--gallery IMAGE] [--checkpoint best|last|PATH]
[--method gradcam-elementwise|gradcam|gradcam++|layercam] --out map.png`.

Where the encoder looks when it finds two hands alike: a class-activation map (pytorch-grad-cam)
whose target is the cosine similarity between the explained image's embedding and a fixed
reference embedding (the other image of the pair), so the map shows which regions raise that
similarity. Layers: the last residual stage (`layer4[-1]`) of a ModifiedResNet (RN50, ...);
for a VisionTransformer the input of the last block's attention (`resblocks[-1].ln_1`: the
last block's output reaches the embedding only through the class token, so its patch tokens
get no gradient), patch tokens reshaped to their [N, D, h, w] grid, class token dropped.

The default method is pytorch-grad-cam's element-wise Grad-CAM, sum over channels of
ReLU(gradient x activation) per position. A cosine target is scale-invariant, so over the whole
layer the gradient x activation terms sum to about zero: some positions raise the similarity,
others lower it, and the element-wise map shows the former. Plain Grad-CAM (channel weights =
mean gradient) is offered too, but on such targets its weighted sum is often negative at every
position, and its ReLU then leaves an all-zero map (about half the pairs of a small model).

Images are embedded as the run's evaluation sees them (resized as the cache does, the run's
retrieval feature), without the flip augmentation: the explained similarity is that of the two
unflipped images. Without --gallery the reference is the query's rank-1 among the gallery of
the run's embeddings.npz (its saved features, ranked against the query's embedding by the
explained checkpoint). The overlay is written at the query image's own size.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from PIL import Image
from pytorch_grad_cam import GradCAM, GradCAMElementWise, GradCAMPlusPlus, LayerCAM
from pytorch_grad_cam.utils.image import show_cam_on_image

from core.cli import run_cli
from core.data.augment import eval_batch
from core.data.cache import decode_image
from core.errors import DataError, ModelError
from core.metrics import ranked_gallery
from core.device import resolve_device
from core.model.checkpoint import load_checkpoint_model
from core.model.handid import HandIDModel
from core.runs import CheckpointMeta, Embeddings, RunDir

METHODS = {"gradcam-elementwise": GradCAMElementWise, "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus,
           "layercam": LayerCAM}
DEFAULT_METHOD = "gradcam-elementwise"


@dataclass(frozen=True)
class Explanation:
    """A class-activation map of one image of a pair, and the similarity it explains."""

    heatmap: np.ndarray  # float32 [h, w] in [0, 1] at the model's input size; high = raises the similarity
    similarity: float  # cosine of the image's and the reference's embeddings (the CAM target)
    method: str


class _Embedder(torch.nn.Module):
    """Normalised NCHW images -> the model's L2-normalised retrieval feature (what the CAM explains)."""

    def __init__(self, model: HandIDModel, feature: str) -> None:
        super().__init__()
        self.model, self.feature = model, feature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x, self.feature)


class CosineTarget:
    """CAM target: cosine similarity of an output embedding with a fixed reference embedding."""

    def __init__(self, reference: torch.Tensor) -> None:
        self.reference = reference

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(output, self.reference.to(output), dim=-1)


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int], batch_first: bool) -> torch.Tensor:
    """ViT tokens [N, L, D] (or [L, N, D]) -> patch activations [N, D, h, w], leading tokens dropped."""
    if not batch_first:
        tokens = tokens.transpose(0, 1)
    h, w = grid
    patches = tokens[:, -h * w:]
    return patches.reshape(tokens.shape[0], h, w, tokens.shape[2]).permute(0, 3, 1, 2)


def cam_layer(visual: torch.nn.Module):
    """(target layer, reshape_transform) of an open_clip image encoder."""
    if isinstance(visual, ModifiedResNet):
        return visual.layer4[-1], None
    if isinstance(visual, VisionTransformer):
        grid = tuple(visual.grid_size)
        batch_first = getattr(visual.transformer, "batch_first", True)
        return visual.transformer.resblocks[-1].ln_1, lambda t: tokens_to_grid(t, grid, batch_first)
    raise ModelError(f"no class-activation layer known for a {type(visual).__name__} image encoder")


def _batch(model: HandIDModel, image: np.ndarray) -> torch.Tensor:
    """One uint8 [h, w, 3] image as the normalised [1, 3, h, w] batch evaluation feeds the model."""
    device = next(model.clip.visual.parameters()).device
    return eval_batch(torch.from_numpy(image[None].copy()).to(device), model.preprocess)


@torch.no_grad()
def embed_image(model: HandIDModel, feature: str, image: np.ndarray) -> torch.Tensor:
    """The [D] embedding of one uint8 [h, w, 3] image, unflipped."""
    model.eval()
    return model.embed(_batch(model, image), feature)[0]


def explain_similarity(model: HandIDModel, feature: str, image: np.ndarray, reference: np.ndarray | torch.Tensor,
                       method: str = DEFAULT_METHOD) -> Explanation:
    """The CAM of `image` (uint8 [h, w, 3] at the model's input size) for its cosine similarity to
    `reference`: another such image, or a [D] embedding. For an error view call it per image of
    the pair: (query, its wrong rank-1), (the rank-1, the query), (the true match, the query)."""
    if method not in METHODS:
        raise ModelError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(reference, np.ndarray):
        reference = embed_image(model, feature, reference)
    layer, reshape = cam_layer(model.clip.visual)
    target = CosineTarget(reference)
    x = _batch(model, image)
    with METHODS[method](_Embedder(model, feature), [layer], reshape_transform=reshape) as cam:
        heat = cam(input_tensor=x, targets=[target])[0]
        similarity = float(target(cam.outputs[0].detach()))
    return Explanation(heat.astype(np.float32), similarity, method)


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3] at its own size."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The heat map (resized bilinearly to the image) blended over uint8 RGB `image` (jet colours)."""
    h, w = image.shape[:2]
    heat = np.asarray(Image.fromarray(heatmap.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))
    return show_cam_on_image(image.astype(np.float32) / 255, np.clip(heat, 0, 1), use_rgb=True)


def top_gallery_match(run: RunDir, model: HandIDModel, feature: str, image: np.ndarray) -> str:
    """Path of the gallery image in the run's embeddings.npz most similar to `image` (metric tie rule)."""
    emb = Embeddings.load(run.embeddings_path)
    query = embed_image(model, feature, image).cpu().numpy()[None]
    order, _ = ranked_gallery(query, emb.gallery_features, k=1)
    return str(emb.gallery_paths[int(order[0, 0])])


def explain_files(run_dir: str | Path, query: str | Path, gallery: str | Path | None = None, checkpoint: str = "best",
                  method: str = DEFAULT_METHOD, device: str = "cpu") -> tuple[Explanation, str]:
    """Explain a query image file against a gallery image file (default: its top match in the run's
    embeddings.npz) with the run's checkpoint; returns the explanation and the gallery path."""
    run = RunDir.at(run_dir)
    model, meta = load_checkpoint_model(run.checkpoint(checkpoint))
    model.to(resolve_device(device))
    feature, size, filter_ = meta.feature, meta.image_size, meta.interpolation
    image = decode_image(query, size, interpolation=filter_)
    gallery = str(gallery) if gallery else top_gallery_match(run, model, feature, image)
    reference = decode_image(gallery, size, interpolation=filter_)
    return explain_similarity(model, feature, image, reference, method), gallery


def explain_mistake(model: HandIDModel, meta: CheckpointMeta, query: str | Path, rank1: str | Path,
                    true_match: str | Path, method: str = DEFAULT_METHOD) -> dict[str, Explanation]:
    """The three maps of a misidentified query (image files, decoded as evaluation decodes them):
    the query against its wrong rank-1 match, that match against the query, and the true match
    against the query."""
    size, filter_ = meta.image_size, meta.interpolation
    images = {name: decode_image(path, size, interpolation=filter_)
              for name, path in (("query", query), ("rank1", rank1), ("true", true_match))}
    return {"query": explain_similarity(model, meta.feature, images["query"], images["rank1"], method),
            "rank1": explain_similarity(model, meta.feature, images["rank1"], images["query"], method),
            "true": explain_similarity(model, meta.feature, images["true"], images["query"], method)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.explain",
                                     description="Class-activation map of a query's similarity to a gallery image.")
    parser.add_argument("--run-dir", required=True, help="run folder holding the checkpoint")
    parser.add_argument("--query", required=True, help="the image to explain")
    parser.add_argument("--gallery", help="the reference image (default: the query's top match in embeddings.npz)")
    parser.add_argument("--checkpoint", default="best", help="best, last or a .safetensors path (default best)")
    parser.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD,
                        help=f"CAM method (default {DEFAULT_METHOD})")
    parser.add_argument("--device", default="cpu", help="cpu, auto, cuda or cuda:N (default cpu)")
    parser.add_argument("--out", required=True, help="the overlay PNG to write (the query's size)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    explanation, gallery = explain_files(args.run_dir, args.query, args.gallery, args.checkpoint, args.method,
                                         args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay(read_rgb(args.query), explanation.heatmap)).save(out, format="PNG")
    print(f"wrote {out}: {explanation.method} of {args.query} against {gallery} (cosine {explanation.similarity:.4f})")
    return 0


if __name__ == "__main__":
    run_cli(main)
