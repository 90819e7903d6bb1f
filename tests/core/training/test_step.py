"""The training step: `train.compile: step` trains like the eager step, writes learning rates as
device tensors from the schedule, survives a resume, and makes no host sync once warmed up.

On this CPU the compiled path runs with the aot_eager backend: Dynamo traces the step and AOT
autograd builds its backward, as inductor and CUDA graphs would, without generating code.
"""

from __future__ import annotations

import copy

import pytest
import torch

from core.errors import ConfigError
from core.runs import RunDir
from core.training.lifecycle import CancelFlag
from core.training.schedule import lr_factor
from core.training.state import restore, training_state
from core.training.trainer import Trainer
from tests.sync_counter import count_host_syncs

STAGE2 = {"loss.ce.weight": 1.0, "loss.triplet.weight": 1.0, "loss.center.weight": 5e-4,
          "sampler.kind": "pk", "sampler.p": 2, "sampler.k": 2, "optim.grad_clip": 1.0}


def trainer_for(tiny_config, folder, compile: str, **overrides) -> Trainer:
    cfg = tiny_config({**STAGE2, "train.compile": compile, "train.compile_backend": "aot_eager",
                       "train.epochs": 2, "eval.every": 0, **overrides})
    trainer = Trainer(cfg, RunDir.at(folder / compile).create(), CancelFlag())
    trainer.setup(resume=False)
    return trainer


@pytest.fixture(scope="module")
def compiled(tiny_config, tmp_path_factory) -> Trainer:
    """One `compile: step` trainer, compiled once for the module (tracing is the slow part)."""
    torch._dynamo.reset()
    trainer = trainer_for(tiny_config, tmp_path_factory.mktemp("compiled"), "step", **{"optim.warmup_epochs": 1})
    trainer.train_epoch(1)
    return trainer


def batch(trainer: Trainer, i: int):
    rows = trainer.train.labels.new_tensor([(4 * i + j) % len(trainer.train.labels) for j in range(4)])
    plan = trainer.augment.draw((4,), tuple(trainer.train.images.shape[1:3]), torch.Generator().manual_seed(i))
    return trainer.train.images[rows], plan, trainer.train.labels[rows]


def test_the_compiled_step_trains_like_the_eager_step(compiled, tiny_config, tmp_path):
    eager = trainer_for(tiny_config, tmp_path, "off", **{"optim.warmup_epochs": 1})
    eager.model.load_state_dict(compiled.model.state_dict())
    eager.model.train()
    optimizers = {"main": compiled.optimizer, "loss.center": compiled.loss_optimizers["center"]}
    state = copy.deepcopy(training_state(optimizers, {"loss": compiled.loss}, 1))  # a copy, as read from a file
    restore(state, {"main": eager.optimizer, "loss.center": eager.loss_optimizers["center"]}, {"loss": eager.loss}, "-")
    values = [1.0, 0.5, 0.25]
    factors = compiled.step.factors(values)
    for i, factor in enumerate(values):
        total_eager, parts_eager = eager.step(*batch(eager, i), factor)
        total_compiled, parts_compiled = compiled.step(*batch(compiled, i), factors[i])
        torch.testing.assert_close(total_compiled, total_eager, rtol=1e-4, atol=1e-5)
        assert parts_compiled.keys() == parts_eager.keys() == {"ce", "triplet", "center"}
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(eager.loss.components["center"].centers, compiled.loss.components["center"].centers)


def test_learning_rates_are_device_tensors_written_in_place_from_the_schedule(compiled):
    steps, cfg = len(compiled.sampler), compiled.cfg
    lrs = [group["lr"] for group in compiled.optimizer.param_groups]
    assert all(isinstance(lr, torch.Tensor) and lr.device == compiled.device for lr in lrs)
    compiled.train_epoch(2)
    expected = lr_factor(2 * steps - 1, steps, cfg.train.epochs, cfg.optim)
    for group, lr in zip(compiled.optimizer.param_groups, lrs):
        assert group["lr"] is lr  # the compiled update keeps reading the same tensor
        assert float(lr) == pytest.approx(float(group["base_lr"]) * expected, rel=1e-6)


def test_a_restored_state_keeps_the_tensor_learning_rates(compiled):
    saved = training_state({"main": compiled.optimizer}, {"loss": compiled.loss}, 1)
    lrs = [group["lr"] for group in compiled.optimizer.param_groups]
    assert restore(saved, {"main": compiled.optimizer}, {"loss": compiled.loss}, "last.safetensors") == 1
    assert all(g["lr"] is lr for g, lr in zip(compiled.optimizer.param_groups, lrs))


def test_the_compiled_step_makes_no_host_sync_outside_the_optimizer(compiled):
    """The optimizer's update is left out on the CPU: single-tensor Adam reads its CPU step count
    there; on CUDA it is capturable and the whole step runs under `cuda_syncs_raise`
    (tests/bench/test_gpu.py). Only the profiler counts: a Python-level mode around a compiled
    function would make Dynamo retrace it."""
    images, plan, labels = batch(compiled, 5)
    factor = compiled.step.factors([1.0])[0]
    updates, compiled.step.updates = compiled.step.updates, lambda: None
    try:
        compiled.step(images, plan, labels, factor)
        assert count_host_syncs(lambda: compiled.step(images, plan, labels, factor), python_level=False) == {}
    finally:
        compiled.step.updates = updates
    assert compiled.optimizer.defaults["foreach"] is False


@pytest.mark.parametrize(("given", "read"), [(False, "off"), (True, "model"), ("step", "step"), ("off", "off")])
def test_compile_reads_yaml_booleans_as_off_and_model(tiny_config, given, read):
    assert tiny_config({"train.compile": given}).train.compile == read


def test_an_unknown_compile_mode_is_one_line(tiny_config):
    with pytest.raises(ConfigError, match=r"train.compile='graphs' is not valid; choose one of off, model, step"):
        tiny_config({"train.compile": "graphs"})





