"""CUDA checks bench/gpu_check.sh runs on a lent card: bf16 training through the trainer, the image
cache on the device, the compile path and the throughput benchmark (each skipped without CUDA)."""

import json
import math

import pytest
import torch

from bench.train_throughput import STAGE2, full_trainer, measure
from core.data.samplers import epoch_rows
from core.device import autocast
from tests.sync_counter import cuda_syncs_raise

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = torch.device("cuda")


def train_losses(trainer) -> list[float]:
    lines = (trainer.run.path / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r.get("kind") == "train"]


def test_bf16_step_through_the_trainer_with_the_cache_on_the_device(tmp_path):
    trainer = full_trainer(tmp_path, "HandID-Tiny", (64, 64), batch_size=8, steps=2, repeats=1, compile="off",
                           amp=True, device=CUDA, config=STAGE2)
    assert trainer.train.images.device.type == "cuda" and trainer.train.images.dtype == torch.uint8
    assert trainer.eval_set.test.images.device.type == "cuda"
    with autocast(CUDA, True):
        out = trainer.step.forward(trainer.augment(trainer.train.images[:8], torch.Generator().manual_seed(0)))
    assert out["feat"].dtype == torch.bfloat16
    before = [p.detach().clone() for p in trainer.model.clip.visual.parameters()]
    trainer.train_epoch(1)
    assert train_losses(trainer) and all(math.isfinite(v) for v in train_losses(trainer))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.clip.visual.parameters()))


@pytest.mark.parametrize("compile", ["model", "step"])
def test_compiled_training_epoch(tmp_path, compile):
    trainer = full_trainer(tmp_path, "HandID-Tiny", (64, 64), batch_size=8, steps=2, repeats=1, compile=compile,
                           amp=True, device=CUDA, config=STAGE2)
    trainer.train_epoch(1)
    trainer.train_epoch(2)
    assert len(train_losses(trainer)) == 2 and all(math.isfinite(v) for v in train_losses(trainer))


def test_a_step_compiled_with_cuda_graphs_makes_no_host_sync(tmp_path):
    """The whole Stage 2 step (augmentation, forward, CE + triplet + centre, backward, capturable
    Adam and the centres' SGD) under torch's sync debug mode set to raise."""
    trainer = full_trainer(tmp_path, "HandID-Tiny", (64, 64), batch_size=8, steps=2, repeats=1, compile="step",
                           amp=True, device=CUDA, config=STAGE2)
    trainer.train_epoch(1)  # compiles and records the CUDA graphs
    rows = epoch_rows(trainer.sampler, 2, trainer.device)
    plan = trainer.augment.draw(tuple(rows.shape), tuple(trainer.train.images.shape[1:3]),
                                torch.Generator().manual_seed(2)).to(trainer.device)
    factors = trainer.step.factors([1.0] * rows.shape[0])
    batches = [(trainer.train.images[rows[i]], plan[i], trainer.train.labels[rows[i]]) for i in range(rows.shape[0])]
    torch.cuda.synchronize()
    with cuda_syncs_raise():
        for i, (images, params, labels) in enumerate(batches):
            trainer.step(images, params, labels, factors[i])
    torch.cuda.synchronize()


def test_throughput_benchmark_reports_both_paths_on_cuda():
    result = measure("HandID-Tiny", (64, 64), batch_size=16, steps=2, repeats=1, device="cuda")
    assert not [k for k in result if k.endswith("_error")]
    assert result["bf16"] and result["full_images_per_s"] > 0 and result["bare_images_per_s"] > 0
