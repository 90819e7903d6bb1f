"""Training images/s of this project's pipeline against the published one, on the same photos and model.

Both train the same backbone on the same training split of the 1600x1200 synthetic photos
(bench.photos):
- reference (bench.reference_pipeline): PIL decode + torchvision resize/crop/flip every
  epoch in DataLoader workers (one per core), fp32, cross-entropy on a linear head, at the
  published batch 20 and at the recipe's batch 64;
- ours: the decode-once cache (its build timed on its own, cold), then `Trainer.train_epoch`
  (device augmentation, HandIDModel, the Stage 1 preset's CE, bf16 on CUDA) at batch 64.
The first epoch of each is warm-up; images/s is the median over the timed epochs (at least 5
of ours, they are cheap). Ours is also given amortised over the epochs it ran (warm-up
included) and over the recipe's 60 epochs, cache build included.
CPU: HandID-Tiny at its 64 px; CUDA: ViT-B/16 and RN50 at 224 px.
Run: `python -m bench.pipeline_vs_reference [--quick] [--backbone B --image-size S] [--json] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from bench.photos import PROTOCOL, ensure_photos, scale
from bench.reference_pipeline import BATCH_SIZE, ReferenceLoop, encoder_with_head, make_loader
from bench.timing import add_output_arguments, device_name, emit, error_text, median_rate, release, size_arg, timed
from core.config import Config, load_config, train_target
from core.data.cache import load_images
from core.data.protocols import load_protocol
from core.runs import RunDir
from core.training.lifecycle import CancelFlag
from core.training.trainer import Trainer

STAGE1 = "configs/stage1_vitb16_11k.yaml"
OUR_BATCH = 64
OUR_MIN_EPOCHS = 5  # our epochs are cheap: time more of them for a steadier median
RECIPE_EPOCHS = 60
CPU_TARGET = 2.0  # ours at least 2x the reference's images/s on the CPU


def our_config(root: Path, backbone: str, image_size: tuple[int, int], epochs: int, cache_dir: Path) -> Config:
    return load_config(STAGE1, {
        "data.dataset": "synthetic", "data.root": str(root), "data.protocol": PROTOCOL,
        "data.image_size": list(image_size), "data.cache_dir": str(cache_dir),
        "model.backbone": backbone, "model.pretrained": "", "train.batch_size": OUR_BATCH,
        "train.epochs": epochs, "train.log_every": 10_000, "eval.runs": 1,
    })


def reference_rate(paths: list[str], labels: list[int], backbone: str, image_size: tuple[int, int],
                   num_classes: int, batch_size: int, epochs: int, device: torch.device) -> float:
    """Median images/s of the reference loop over `epochs` timed epochs (after one warm-up epoch)."""
    model = encoder_with_head(backbone, image_size, num_classes)
    loader = make_loader(paths, labels, image_size, batch_size, pin_memory=device.type == "cuda")
    loop = ReferenceLoop(model, loader, device)
    loop.epoch()
    runs = [loop.epoch() for _ in range(epochs)]
    return median_rate(runs[0][0], [seconds for _, seconds in runs])


def our_rates(root: Path, backbone: str, image_size: tuple[int, int], epochs: int, device: torch.device,
              workdir: Path) -> tuple[dict, list[str], list[int], int]:
    """Our figures, plus the training split's paths, labels and class count for the reference."""
    epochs = max(epochs, OUR_MIN_EPOCHS)
    cfg = our_config(root, backbone, image_size, epochs + 1, workdir / "cache")
    train = load_protocol(train_target(cfg), cfg.eval.seed, cfg.eval.runs).train
    paths, labels = list(train["path"]), [int(v) for v in train["label"]]
    cache_s = timed(lambda: load_images(paths, tuple(image_size), workdir / "cache"), torch.device("cpu"))
    trainer = Trainer(cfg, RunDir.at(workdir / "run").create(), CancelFlag())
    trainer.setup(resume=False)
    images = sum(len(rows) for rows in trainer.sampler.epoch(1))
    seconds = [timed(lambda e=epoch: trainer.train_epoch(e), device) for epoch in range(1, epochs + 2)]
    per_epoch = statistics.median(seconds[1:])
    figures = {
        "train_images": len(paths),
        "ours_timed_epochs": epochs,
        "cache_build_s": cache_s,
        "cache_build_images_per_s": len(paths) / cache_s,
        "ours_images_per_s": images / per_epoch,
        "ours_amortised_images_per_s": images * len(seconds) / (cache_s + sum(seconds)),
        f"ours_amortised_{RECIPE_EPOCHS}_epochs_images_per_s": images * RECIPE_EPOCHS / (cache_s + RECIPE_EPOCHS * per_epoch),
    }
    return figures, paths, labels, trainer.protocol.num_classes


def compare(root: Path, backbone: str, image_size: tuple[int, int], epochs: int, device: torch.device) -> dict:
    """Ours and the reference (batch 20 and 64) side by side, with their ratios."""
    result: dict = {"backbone": backbone, "image_size": f"{image_size[0]}x{image_size[1]}", "device": device_name(device),
                    "reference_timed_epochs": epochs, "ours_batch_size": OUR_BATCH, "ours_bf16": device.type == "cuda"}
    with tempfile.TemporaryDirectory(prefix="handid-bench-") as tmp:
        ours, paths, labels, classes = our_rates(root, backbone, image_size, epochs, device, Path(tmp))
    result.update(ours)
    release(device)
    for batch in (BATCH_SIZE, OUR_BATCH):
        try:
            rate = reference_rate(paths, labels, backbone, image_size, classes, batch, epochs, device)
        except Exception as exc:
            result[f"reference_b{batch}_error"] = error_text(exc)
            continue
        finally:
            release(device)
        result[f"reference_b{batch}_images_per_s"] = rate
        result[f"ours_over_reference_b{batch}"] = ours["ours_images_per_s"] / rate
        result[f"ours_amortised_over_reference_b{batch}"] = ours["ours_amortised_images_per_s"] / rate
    if device.type == "cpu" and f"ours_over_reference_b{BATCH_SIZE}" in result:
        result[f"cpu_target_{CPU_TARGET:g}x_met"] = result[f"ours_over_reference_b{BATCH_SIZE}"] >= CPU_TARGET
    return result


def default_settings() -> list[tuple[str, tuple[int, int]]]:
    if torch.cuda.is_available():
        return [("ViT-B-16", (224, 224)), ("RN50", (224, 224))]
    return [("HandID-Tiny", (64, 64))]


def run(quick: bool = False, settings: list[tuple[str, tuple[int, int]]] | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = scale()
    root = ensure_photos(**size)
    result: dict = {"photos": f"{size['identities']} identities x 4 aspects x {size['images_per_aspect']}, 1600x1200 JPEG",
                    "protocol": PROTOCOL}
    for backbone, image_size in settings or default_settings():
        try:
            result[backbone] = compare(root, backbone, image_size, 1 if quick else 2, device)
        except Exception as exc:
            result[backbone] = {"error": error_text(exc)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed epoch instead of two")
    parser.add_argument("--backbone", help="one backbone instead of this machine's defaults")
    parser.add_argument("--image-size", type=size_arg, default=(224, 224), help="with --backbone: 224 or HxW")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    result = run(args.quick, [(args.backbone, args.image_size)] if args.backbone else None)
    emit(result, args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
