"""Embedding extraction images/s: HandIDModel.embed over a device-resident uint8 cache.

The evaluation's own `extract_features` (core.evaluation): batches sliced from a
uint8 NHWC tensor on the device, normalised there, embedded in bf16 autocast on CUDA, with
and without the flip test-time augmentation (which embeds every image twice). Images/s counts
each image once; the median over repeats (the two modes interleaved) after one warm-up pass.
Run: `python -m bench.embed_throughput [--quick] [--backbone B --image-size S --images N
--batch-size B --device D] [--json] [--out FILE]` from the repo root.
"""

from __future__ import annotations

import argparse

import torch

from bench.timing import add_output_arguments, device_name, emit, median_rate, release, size_arg, timed
from core.config import Config
from core.model.backbone import create_clip
from core.model.handid import HandIDModel
from core.device import resolve_device
from core.evaluation import Extraction, extract_features
from core.training.model import memory_format


def measure(backbone: str = "HandID-Tiny", image_size: tuple[int, int] = (64, 64), images: int = 1024,
            batch_size: int = 256, repeats: int = 3, device: str = "auto", amp: bool = True) -> dict:
    """Images/s of feature extraction with the flip TTA on and off."""
    dev = resolve_device(device)
    clip, tokenizer = create_clip(backbone, "", image_size)
    model = HandIDModel(clip, tokenizer, num_classes=10, prompts=None).to(dev)
    fmt = memory_format(model, Config())
    model.to(memory_format=fmt)
    cache = torch.randint(0, 256, (images, *image_size, 3), dtype=torch.uint8, device=dev)
    result: dict = {"backbone": backbone, "image_size": f"{image_size[0]}x{image_size[1]}", "images": images,
                    "batch_size": batch_size, "repeats": repeats, "bf16": amp and dev.type == "cuda",
                    "device": device_name(dev)}
    passes = {"flip": lambda: extract_features(model, cache, Extraction("pre_bn", batch_size, True, amp, fmt)),
              "no_flip": lambda: extract_features(model, cache, Extraction("pre_bn", batch_size, False, amp, fmt))}
    seconds: dict[str, list[float]] = {name: [] for name in passes}
    for name, extract in passes.items():  # warm-up
        timed(extract, dev)
    for _ in range(repeats):  # interleaved, so a change in machine load hits both alike
        for name, extract in passes.items():
            seconds[name].append(timed(extract, dev))
    result.update({f"{name}_images_per_s": median_rate(images, times) for name, times in seconds.items()})
    del model, cache
    release(dev)
    return result


def default_settings(quick: bool) -> list[dict]:
    """CUDA: ViT-B/16 and RN50 at 224 px over 8,192 images; CPU: HandID-Tiny at 64 px over 1,024."""
    if torch.cuda.is_available():
        n = 2048 if quick else 8192
        return [dict(backbone=b, image_size=(224, 224), images=n, batch_size=512) for b in ("ViT-B-16", "RN50")]
    return [dict(backbone="HandID-Tiny", image_size=(64, 64), images=256 if quick else 1024, batch_size=256)]


def run(quick: bool = False) -> dict:
    return {s["backbone"]: measure(**s, repeats=2 if quick else 3) for s in default_settings(quick)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", help="one backbone instead of this machine's defaults")
    parser.add_argument("--image-size", type=size_arg, default=(224, 224), help="with --backbone: 224 or HxW")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="with no --backbone: fewer images")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.backbone:
        result = measure(args.backbone, args.image_size, args.images, args.batch_size, args.repeats, args.device)
    else:
        result = run(args.quick)
    emit(result, args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
