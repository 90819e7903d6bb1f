"""Training images/s and model-FLOPs utilisation: the bare model against this project's full step.

Side by side in one process, for any open_clip backbone and image size:
- bare: a random batch already on the device; forward + backward + Adam step of the image
  encoder with a linear head (no data path at all), bf16 autocast on CUDA;
- full: the trainer's own `Trainer.train_epoch` (core.training.trainer) on a folder dataset of
  tiny JPEGs: the decode-once cache tensor on the device, the sampler's indices, device
  augmentation, HandIDModel + LossSet + optimizer steps, exactly as `python -m core.train`.
Each figure is the median over `repeats` windows of `steps` steps; one window of warm-up
(compilation, allocator, autotuning) comes first and is not counted. FLOPs per image come from
torch.utils.flop_counter.FlopCounterMode on one forward + backward of the bare model; MFU is
achieved FLOP/s over the card's dense bf16 peak (null on the CPU or an unknown card).
Run: `python -m bench.train_throughput [--backbone ViT-B-16 --image-size 224 --batch-size 256
--steps 20 --compile [off|model|step] --device cuda] [--json] [--out FILE]` from the repo root.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from bench.reference_pipeline import EncoderWithHead, encoder_with_head
from bench.timing import add_output_arguments, device_name, emit, error_text, median_rate, release, size_arg, timed
from core.config import load_config
from core.device import autocast, resolve_device
from core.runs import RunDir
from core.training.lifecycle import CancelFlag
from core.training.trainer import Trainer

STAGE2 = "configs/stage2_ce_triplet_center.yaml"
PK_K = 4
IMAGES_PER_IDENTITY = 8  # one of them goes to val
# Dense bf16 peak FLOP/s by card name (first match wins).
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L40S", 362e12))


def peak_flops(device: torch.device) -> float | None:
    """The card's dense bf16 peak FLOP/s; None on the CPU or an unlisted card."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def write_folder_dataset(root: Path, identities: int, per_identity: int, size: int = 32, seed: int = 0) -> Path:
    """`root/<identity>/<n>.jpg`: small noise JPEGs, the cheapest data the trainer's readers accept."""
    rng = np.random.default_rng(seed)
    for i in range(identities):
        folder = root / f"id{i:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_identity):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{n}.jpg")
    return root


def flops_per_image(model: EncoderWithHead, image_size: tuple[int, int], device: torch.device,
                    memory_format: torch.memory_format) -> float:
    """FLOPs of one forward + backward per image (FlopCounterMode over a batch of 2)."""
    x = torch.randn(2, 3, *image_size, device=device).contiguous(memory_format=memory_format)
    labels = torch.zeros(2, dtype=torch.int64, device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def bare_windows(model: EncoderWithHead, batch_size: int, image_size: tuple[int, int], steps: int, repeats: int,
                 compile: bool, amp: bool, device: torch.device, memory_format: torch.memory_format) -> list[float]:
    """Seconds of each timed window of `steps` bare training steps (after one warm-up window); `compile`
    compiles the model's forward (torch.compile's default mode, the baseline every full step is set beside)."""
    forward = torch.compile(model) if compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    x = torch.randn(batch_size, 3, *image_size, device=device).contiguous(memory_format=memory_format)
    labels = torch.randint(0, model.head.out_features, (batch_size,), device=device)

    def window() -> None:
        for _ in range(steps):
            with autocast(device, amp):
                logits = forward(x)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    timed(window, device)
    return [timed(window, device) for _ in range(repeats)]


def full_trainer(workdir: Path, backbone: str, image_size: tuple[int, int], batch_size: int, steps: int,
                 repeats: int, compile: str, amp: bool, device: torch.device, config: str) -> Trainer:
    """A set-up Trainer whose epoch is `steps` steps of `batch_size` (PK batches of K=4 when the preset samples PK)."""
    train_ids = math.ceil(steps * batch_size / (IMAGES_PER_IDENTITY - 1))
    root = write_folder_dataset(workdir / "data", 2 * train_ids, IMAGES_PER_IDENTITY)
    overrides = {
        "data.dataset": "folder", "data.root": str(root), "data.protocol": "default",
        "data.image_size": list(image_size), "data.cache_dir": str(workdir / "cache"),
        "model.backbone": backbone, "model.pretrained": "", "model.init_from": "",
        "train.batch_size": batch_size, "train.compile": compile, "train.amp": amp, "train.device": str(device),
        "train.epochs": repeats + 1, "train.log_every": steps, "eval.runs": 1,
    }
    if load_config(config).sampler.kind == "pk":
        overrides.update({"sampler.p": max(2, batch_size // PK_K), "sampler.k": PK_K})
    trainer = Trainer(load_config(config, overrides), RunDir.at(workdir / "run").create(), CancelFlag())
    trainer.setup(resume=False)
    return trainer


def full_windows(trainer: Trainer, repeats: int) -> tuple[int, list[float]]:
    """(images per epoch, seconds of each timed `Trainer.train_epoch`), after one warm-up epoch."""
    images = sum(len(rows) for rows in trainer.sampler.epoch(1))
    trainer.train_epoch(1)
    return images, [timed(lambda e=epoch: trainer.train_epoch(e), trainer.device) for epoch in range(2, repeats + 2)]


def figures(prefix: str, images_per_s: float, flops: float, peak: float | None, bf16: bool) -> dict:
    achieved = images_per_s * flops
    return {f"{prefix}_images_per_s": images_per_s, f"{prefix}_tflop_per_s": achieved / 1e12,
            f"{prefix}_mfu": achieved / peak if peak and bf16 else None}


def measure(backbone: str = "HandID-Tiny", image_size: tuple[int, int] = (64, 64), batch_size: int = 64,
            steps: int = 10, repeats: int = 3, compile: str = "off", device: str = "auto", amp: bool = True,
            config: str = STAGE2) -> dict:
    """Bare and full training images/s, FLOP/s and MFU for one setting; failures land in `*_error`."""
    dev = resolve_device(device)
    bf16 = amp and dev.type == "cuda"
    result: dict = {"backbone": backbone, "image_size": f"{image_size[0]}x{image_size[1]}", "batch_size": batch_size,
                    "steps": steps, "repeats": repeats, "compile": compile, "bf16": bf16, "device": device_name(dev),
                    "full_config": Path(config).stem}
    model = encoder_with_head(backbone, image_size, num_classes=1000).to(dev)
    memory_format = torch.channels_last if isinstance(model.visual, ModifiedResNet) else torch.contiguous_format
    model.to(memory_format=memory_format)
    flops = flops_per_image(model, image_size, dev, memory_format)
    peak = peak_flops(dev)
    result.update(gflop_per_image=flops / 1e9, peak_tflop_per_s=peak / 1e12 if peak else None)
    try:
        seconds = bare_windows(model, batch_size, image_size, steps, repeats, compile != "off", amp, dev, memory_format)
        result.update(figures("bare", median_rate(steps * batch_size, seconds), flops, peak, bf16))
    except Exception as exc:  # torch.compile may be unavailable: report it, go on
        result["bare_error"] = error_text(exc)
    del model
    release(dev)
    try:
        with tempfile.TemporaryDirectory(prefix="handid-bench-") as tmp:
            trainer = full_trainer(Path(tmp), backbone, image_size, batch_size, steps, repeats, compile, amp, dev, config)
            images, seconds = full_windows(trainer, repeats)
            result["full_batch_size"] = images // len(trainer.sampler)
            result.update(figures("full", median_rate(images, seconds), flops, peak, bf16))
            del trainer
    except Exception as exc:
        result["full_error"] = error_text(exc)
    release(dev)
    if "bare_images_per_s" in result and "full_images_per_s" in result:
        result["full_over_bare"] = result["full_images_per_s"] / result["bare_images_per_s"]
    return result


COMPILE_LABELS = {"off": "eager", "model": "compiled", "step": "step"}


def label(setting: dict) -> str:
    """`b256-eager`, `b256-compiled` (the model compiled), `b64-step` (the whole step compiled): the names
    gpu_check.sh gives its result files too."""
    return f"b{setting['batch_size']}-{COMPILE_LABELS[setting.get('compile', 'off')]}"


def default_settings(quick: bool) -> list[dict]:
    """CUDA: ViT-B/16 at 224 px, batch 256 eager and model-compiled, batch 64 eager and step-compiled.
    CPU: HandID-Tiny at 64 px."""
    if torch.cuda.is_available():
        vit = {"backbone": "ViT-B-16", "image_size": (224, 224), "steps": 5 if quick else 20, "repeats": 2 if quick else 3}
        modes = [(256, "off")] if quick else [(256, "off"), (256, "model"), (64, "off"), (64, "step")]
        return [dict(vit, batch_size=b, compile=c) for b, c in modes]
    return [{"backbone": "HandID-Tiny", "image_size": (64, 64), "batch_size": 64,
             "steps": 3 if quick else 10, "repeats": 2 if quick else 3}]


def run(quick: bool = False) -> dict:
    return {label(s): measure(**s) for s in default_settings(quick)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", help="open_clip model name (default: the run() settings for this machine)")
    parser.add_argument("--image-size", type=size_arg, default=(224, 224), help="224 or HxW")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows (the median is reported)")
    parser.add_argument("--compile", nargs="?", const="model", default="off", choices=list(COMPILE_LABELS),
                        help="train.compile of the full step (--compile alone: model); the bare model is compiled "
                             "unless off")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 instead of bf16 autocast on CUDA")
    parser.add_argument("--config", default=STAGE2, help="preset of the full step (losses, sampler, optimizer)")
    parser.add_argument("--quick", action="store_true", help="with no --backbone: fewer steps and settings")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.backbone:
        result = measure(args.backbone, args.image_size, args.batch_size, args.steps, args.repeats, args.compile,
                         args.device, args.amp, args.config)
    else:
        result = run(args.quick)
    emit(result, args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
