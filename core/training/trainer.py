"""One training run: data and model set up, epochs of device-side batches, evaluations, checkpoints.

Everything it writes goes through core.runs.RunDir: metrics.jsonl lines, eval.json,
best/last checkpoints with the optimizer state beside them, and embeddings.npz.
"""

from __future__ import annotations

import logging
import time

import torch

from core.config import Config
from core.data.augment import DeviceAugment
from core.data.samplers import epoch_rows, make_sampler
from core.errors import ConfigError
from core.losses.combined import LossSet
from core.model.checkpoint import load_model_state, save_model
from core.runs import RunDir
from core.training.data import class_aspects, load_protocol, load_split
from core.training.targets import eval_target, train_target
from core.training.evaluation import EvalSet, Evaluation, autocast, embeddings, evaluate
from core.training.lifecycle import CancelFlag, mark_progress
from core.training.model import build_model, memory_format, metadata
from core.training.optim import build_center_optimizer, build_optimizer
from core.training.schedule import apply, lr_factor
from core.training.state import load_state, save_state

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """train.device: `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"train.device={spec!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={spec} but no CUDA device is available; use auto or cpu")
    return device


class Meter:
    """Running sums of the loss and its components since the last train line, and throughput.

    The sums stay device tensors until `flush`, so logging costs one GPU sync per log line
    rather than one per step.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.images = 0
        self.since = time.perf_counter()

    def add(self, total: torch.Tensor, parts: dict[str, torch.Tensor], images: int) -> None:
        for key, value in {"loss": total.detach().float(), **parts}.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1
        self.images += images

    def flush(self) -> dict[str, float]:
        """Mean of each value over the steps since the last flush, and images per second."""
        elapsed = max(time.perf_counter() - self.since, 1e-9)
        out = {k: float(v) / max(self.steps, 1) for k, v in self.sums.items()}
        out["images_per_s"] = self.images / elapsed
        self.reset()
        return out


class Trainer:
    """Holds a run's data, model, losses and optimizers; `fit()` trains and evaluates."""

    def __init__(self, cfg: Config, run: RunDir, cancel: CancelFlag) -> None:
        self.cfg, self.run, self.cancel = cfg, run, cancel
        self.model = None
        self.optimizer = None
        self.epoch_done = 0
        self.last_eval: tuple[int, Evaluation] | None = None

    # set-up
    def setup(self, resume: bool) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        target, test_target = train_target(cfg), eval_target(cfg)
        self.protocol = load_protocol(cfg.data, target, cfg.eval.seed, cfg.eval.runs)
        self.cancel.check()
        self.train = load_split(self.protocol.train, cfg.data, self.device)
        self.cancel.check()
        eval_protocol = self.protocol if test_target == target else load_protocol(
            cfg.data, test_target, cfg.eval.seed, cfg.eval.runs)
        self.eval_set = EvalSet(test_target, eval_protocol, load_split(eval_protocol.test, cfg.data, self.device))
        self.cancel.check()
        log.info("train %s: %s; evaluate %s: %s", target.key, self.protocol.describe()["train"],
                 test_target.key, eval_protocol.describe())
        self.aspects = class_aspects(self.protocol.train, self.protocol.class_names)
        self.model = build_model(cfg, self.protocol.class_names, self.aspects).to(self.device)
        self.memory_format = memory_format(self.model, cfg)
        self.model.to(memory_format=self.memory_format)
        self.loss = LossSet(cfg.loss, self.protocol.num_classes, self.model.feature_dim).to(self.device)
        groups = self.model.trainable_groups()
        self.optimizer = build_optimizer([
            {"params": groups["backbone"], "lr": cfg.optim.lr, "name": "backbone"},
            {"params": groups["heads"], "lr": cfg.optim.head_lr, "name": "heads"},
            *self.loss.param_groups(cfg.optim.head_lr),
        ], cfg)
        self.center_optimizer = build_center_optimizer(self.loss.center_parameters(), cfg)
        self.sampler = make_sampler(cfg.sampler, self.protocol.train["label"], cfg.train.batch_size, cfg.train.seed)
        self.augment = DeviceAugment(cfg.augment, self.memory_format)
        self.forward = torch.compile(self.model) if cfg.train.compile else self.model
        if resume:
            self._resume()
        log.info("model %s (%s) on %s: %d classes, feature dim %d, %d steps per epoch",
                 cfg.model.backbone, cfg.model.pretrained or "random init", self.device,
                 self.protocol.num_classes, self.model.feature_dim, len(self.sampler))

    def _resume(self) -> None:
        last, state = self.run.checkpoint("last"), self.run.optimizer_state()
        if not last.is_file() or not state.is_file():
            log.warning("--resume: %s has no last checkpoint with optimizer state; starting from epoch 1", self.run.path)
            return
        self.model.load_state_dict(load_model_state(last))
        info = load_state(state, self._optimizers(), {"loss": self.loss})
        self.epoch_done = int(info["epoch"])
        log.info("resumed from %s after epoch %d", last, self.epoch_done)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"main": self.optimizer, "center": self.center_optimizer}

    # training
    def fit(self) -> None:
        """Evaluate at epoch 0, train the remaining epochs (evaluating every eval.every), finish."""
        cfg = self.cfg
        if self.epoch_done == 0 and "epoch0" not in self.run.read_eval():
            self.evaluate(0)
        for epoch in range(self.epoch_done + 1, cfg.train.epochs + 1):
            self.train_epoch(epoch)
            self.epoch_done = epoch
            mark_progress(self.run, epoch)
            if epoch == cfg.train.epochs or (cfg.eval.every and epoch % cfg.eval.every == 0):
                self.evaluate(epoch)
                self.save_last()
        if self.last_eval is None or self.last_eval[0] != cfg.train.epochs:
            self.evaluate(cfg.train.epochs)
            self.save_last()
        epoch, evaluation = self.last_eval
        self.run.write_embeddings(embeddings(evaluation, self.eval_set.protocol))
        self.run.update_eval(final=dict(evaluation.metrics, epoch=epoch))

    def train_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        self.model.train()
        self.loss.train()
        steps = len(self.sampler)
        generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + epoch)
        # The epoch's rows [steps, batch] and augmentation parameters reach the device in one copy each.
        rows = epoch_rows(self.sampler, epoch, self.device)
        plan = self.augment.draw(tuple(rows.shape), tuple(self.train.images.shape[1:3]), generator).to(self.device)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        meter = Meter()
        for i in range(steps):
            step = (epoch - 1) * steps + i
            apply(self.optimizer, lr_factor(step, steps, cfg.train.epochs, cfg.optim))
            images = self.augment.apply(self.train.images[rows[i]], plan[i])
            labels = self.train.labels[rows[i]]
            with autocast(self.device, cfg.train.amp):
                outputs = self.forward(images)
            total, parts = self.loss(outputs, labels)
            self.optimizer.zero_grad(set_to_none=True)
            if self.center_optimizer:
                self.center_optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            self.optimizer.step()
            if self.center_optimizer:
                for p in self.loss.center_parameters():
                    if p.grad is not None:
                        p.grad.mul_(self.loss.center_step_scale)
                self.center_optimizer.step()
            meter.add(total, parts, rows.shape[1])
            if (i + 1) % cfg.train.log_every == 0 or i + 1 == steps:
                self._log_train(epoch, step + 1, meter)
            self.cancel.check()

    def _log_train(self, epoch: int, step: int, meter: Meter) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        values = meter.flush()
        record = {"kind": "train", "epoch": epoch, "step": step, **values, "lr": self.optimizer.param_groups[0]["lr"]}
        self.run.append_metrics(record)
        parts = " ".join(f"{k} {v:.4f}" for k, v in values.items() if k not in ("loss", "images_per_s"))
        log.info("epoch %d/%d step %d: loss %.4f (%s) lr %.3g, %.0f images/s", epoch, self.cfg.train.epochs, step,
                 values["loss"], parts, record["lr"], values["images_per_s"])

    # evaluation and checkpoints
    def evaluate(self, epoch: int) -> Evaluation:
        cfg = self.cfg
        evaluation = evaluate(self.model, self.eval_set, cfg.model.feature, cfg.eval.batch_size, cfg.eval.flip,
                              cfg.train.amp, self.memory_format, between_batches=self.cancel.check)
        metrics = evaluation.metrics
        self.run.append_metrics({"kind": "eval", "epoch": epoch, **metrics})
        record = self.run.read_eval()
        fields = {"protocol": self.eval_set.protocol.name, "dataset": self.eval_set.target.dataset,
                  "runs": len(self.eval_set.protocol.runs)}
        if epoch == 0:
            fields["epoch0"] = dict(metrics, epoch=0)
        best_so_far = (record.get("best") or {}).get("mAP")
        if metrics["mAP"] is not None and metrics["mAP"] > (best_so_far if best_so_far is not None else -1.0):
            save_model(self.model, self.run.path / "best.safetensors", self._metadata(epoch))
            fields.update(best_epoch=epoch, best=dict(metrics, epoch=epoch))
        self.run.update_eval(**fields)
        log.info("eval epoch %d on %s (%d runs): rank1 %.4f rank5 %.4f mAP %.4f mINP %.4f, intra/inter %.3f",
                 epoch, self.eval_set.target.key, len(self.eval_set.protocol.runs), metrics["rank1"],
                 metrics["rank5"], metrics["mAP"], metrics["mINP"], metrics["ratio"] or float("nan"))
        self.last_eval = (epoch, evaluation)
        return evaluation

    def _metadata(self, epoch: int) -> dict:
        return metadata(self.cfg, self.protocol.class_names, self.aspects, epoch)

    def save_last(self) -> None:
        """last.safetensors (weights, epoch = the last completed one) and its optimizer state."""
        if self.optimizer is None:  # cancelled before set-up finished: nothing to save
            return
        save_model(self.model, self.run.checkpoint("last"), self._metadata(self.epoch_done))
        save_state(self.run.optimizer_state(), self._optimizers(), {"loss": self.loss}, {"epoch": self.epoch_done})
