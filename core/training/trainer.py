"""One training run: data and model set up, epochs of device-side batches, evaluations, checkpoints.

Everything it writes goes through core.runs.RunDir: metrics.jsonl lines, eval.json, the last
checkpoint (weights and the state to resume them, one file, every `train.checkpoint_every`
epochs), the checkpoint selected on the validation split (best.safetensors) and embeddings.npz.
Model selection reads only validation figures; the test side is reported, never chosen on.
"""

from __future__ import annotations

import logging
import time

import torch

from core.config import Config, eval_target, train_target
from core.data.augment import DeviceAugment
from core.data.prepare import ensure_dataset
from core.data.protocols import load_protocol
from core.data.samplers import epoch_rows, make_sampler
from core.data.split import load_split
from core.device import resolve_device
from core.errors import TrainingError
from core.evaluation import EvalSet, Evaluation, Extraction, ValSet, embeddings, evaluate, rerank_of
from core.losses.combined import LossSet
from core.model.checkpoint import load_model_state, load_training_state, save_model
from core.runs import Result, RunDir
from core.training.lifecycle import CancelFlag, mark_progress
from core.training.model import build_model, checkpoint_meta, class_aspects, memory_format
from core.training.optim import build_optimizer
from core.training.prompt_phase import learn_prompts
from core.training.schedule import lr_factor
from core.training.state import restore, training_state
from core.training.step import TrainStep

log = logging.getLogger(__name__)
SELECTED_BY = "mAP"  # the validation figure model selection maximises
NO_STEP = 1 << 62


class Meter:
    """Running sums of the loss and its components since the last train line, and throughput.

    The sums stay device tensors until `flush`, so logging costs one GPU sync per log line
    rather than one per step; so does watching for a non-finite loss: the first step at which
    each part went bad is kept on the device and read at the flush.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.first_bad: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.images = 0
        self.since = time.perf_counter()

    def add(self, total: torch.Tensor, parts: dict[str, torch.Tensor], images: int, step: int) -> None:
        for key, value in {"loss": total.detach().float(), **parts}.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            bad = torch.where(torch.isfinite(value), NO_STEP, step)
            self.first_bad[key] = torch.minimum(self.first_bad[key], bad) if key in self.first_bad else bad
        self.steps += 1
        self.images += images

    def flush(self) -> dict[str, float]:
        """Mean of each value over the steps since the last flush, and images per second; raises
        TrainingError naming the step and the loss part that first became NaN or infinite."""
        bad = {key: int(step) for key, step in self.first_bad.items() if int(step) != NO_STEP and key != "loss"}
        if bad or ("loss" in self.first_bad and int(self.first_bad["loss"]) != NO_STEP):
            part, step = min(bad.items(), key=lambda item: item[1]) if bad else ("loss", int(self.first_bad["loss"]))
            raise TrainingError(f"the {part} loss became NaN or infinite at step {step}; the run is stopped "
                                "(lower optim.lr or optim.head_lr, or the loss weights)")
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
        self.saved_epoch: int | None = None
        self.last_eval: tuple[int, Evaluation] | None = None

    # set-up
    def setup(self, resume: bool) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        target, test_target = train_target(cfg), eval_target(cfg)
        ensure_dataset(cfg.data)
        self.protocol = load_protocol(target, cfg.eval.seed, cfg.eval.runs)
        log.info("read %s: %d training images of %d identities", target.key, len(self.protocol.train),
                 self.protocol.num_classes)
        eval_protocol = self.protocol if test_target == target else load_protocol(test_target, cfg.eval.seed,
                                                                                   cfg.eval.runs)
        self.cancel.check()
        self.aspects = class_aspects(self.protocol.train, self.protocol.class_names)
        self.model = build_model(cfg, self.protocol.class_names, self.aspects).to(self.device)
        self.memory_format = memory_format(self.model, cfg)
        self.model.to(memory_format=self.memory_format)
        log.info("model %s (%s) on %s: %d classes, feature dim %d", cfg.model.backbone,
                 cfg.model.pretrained or "random init", self.device, self.protocol.num_classes, self.model.feature_dim)
        self._load_images(test_target, eval_protocol)
        self._build_training()
        log.info("train %s: %s, %d steps per epoch; evaluate %s: %s", target.key, self.protocol.describe()["train"],
                 len(self.sampler), test_target.key, eval_protocol.describe())
        if resume:
            self._resume()

    def _load_images(self, test_target, eval_protocol) -> None:
        cfg, pre = self.cfg, self.model.preprocess
        load = lambda rows: load_split(rows, cfg.data.image_size, cfg.data.cache_dir, self.device, pre.interpolation)
        self.train = load(self.protocol.train)
        self.cancel.check()
        self.val = ValSet(load(self.protocol.val), self.train) if len(self.protocol.val) else None
        self.eval_set = EvalSet(test_target, eval_protocol, load(eval_protocol.test))
        self.cancel.check()

    def _build_training(self) -> None:
        cfg = self.cfg
        self.loss = LossSet(cfg.loss, self.protocol.num_classes, self.model.feature_dim).to(self.device)
        groups = self.model.trainable_groups()
        self.optimizer = build_optimizer([
            {"params": groups["backbone"], "lr": cfg.optim.lr, "name": "backbone"},
            {"params": groups["heads"], "lr": cfg.optim.head_lr, "name": "heads"},
            *self.loss.param_groups(cfg.optim.head_lr),
        ], cfg)
        self.loss_optimizers = self.loss.own_optimizers()
        self.sampler = make_sampler(cfg.sampler, self.protocol.train["label"], cfg.train.batch_size, cfg.train.seed)
        self.augment = DeviceAugment(cfg.augment, self.model.preprocess, self.memory_format)
        self.step = TrainStep(cfg, self.model, self.augment, self.loss, self.optimizer, self.loss_optimizers,
                              self.device)
        self.extraction = Extraction(cfg.model.feature, cfg.eval.batch_size, cfg.eval.flip, cfg.train.amp,
                                     self.memory_format)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": self.optimizer, **{f"loss.{name}": opt for name, opt in self.loss_optimizers.items()}}

    def _resume(self) -> None:
        """Continue exactly after the last checkpoint's epoch: its weights and state, and the metrics of
        later epochs (replayed now) dropped."""
        removed = self.run.remove_temporary_files()
        if removed:
            log.info("removed %d temporary files left by an interrupted write", len(removed))
        last = self.run.last_path
        state = load_training_state(last) if last.is_file() else None
        if state is None:  # epoch 0's evaluation records stay only when eval.json holds it (else it is redone)
            dropped = self.run.truncate_metrics(0 if self.run.read_eval().epoch0 is not None else -1)
            log.warning("--resume: %s has no last checkpoint; starting from epoch 1 (%d metric records of the "
                        "interrupted attempt dropped)", self.run.path, dropped)
            self.run.append_metrics({"kind": "resume", "epoch": 0})  # curves mark where training picked up
            return
        self.model.load_state_dict(load_model_state(last))
        self.epoch_done = self.saved_epoch = restore(state, self._optimizers(), {"loss": self.loss}, str(last))
        finished = self.epoch_done if self.epoch_done >= self.cfg.train.epochs else None  # fit() evaluates it again
        dropped = self.run.truncate_metrics(self.epoch_done, evaluated_again=finished)
        self.run.append_metrics({"kind": "resume", "epoch": self.epoch_done})
        log.info("resumed from %s after epoch %d (%d metric records of later epochs dropped)", last,
                 self.epoch_done, dropped)

    # training
    def fit(self) -> None:
        """Learn the identity prompts (prompts.epochs), evaluate at epoch 0, train the remaining epochs
        (evaluating every eval.every), finish."""
        cfg = self.cfg
        if self.epoch_done == 0 and cfg.prompts.epochs:  # after a checkpoint, its prompts are loaded
            learn_prompts(self.model, self.train, cfg, self.run, self.cancel.check)
        if self.epoch_done == 0 and self.run.read_eval().epoch0 is None:
            self.evaluate(0)
        for epoch in range(self.epoch_done + 1, cfg.train.epochs + 1):
            self.train_epoch(epoch)
            self.epoch_done = epoch
            mark_progress(self.run, epoch)
            if epoch == cfg.train.epochs or (cfg.eval.every and epoch % cfg.eval.every == 0):
                self.evaluate(epoch)
            if epoch == cfg.train.epochs or epoch % cfg.train.checkpoint_every == 0:
                self.save_last()
        if self.last_eval is None or self.last_eval[0] != cfg.train.epochs:
            self.evaluate(cfg.train.epochs)
        epoch, evaluation = self.last_eval
        self.run.write_embeddings(embeddings(evaluation, self.eval_set.protocol))
        self.run.update_eval(lambda record: setattr(record, "final", Result(epoch, evaluation.test, evaluation.val,
                                                                            evaluation.rerank, evaluation.curves)))

    def train_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        self.model.train()
        self.loss.train()
        steps = len(self.sampler)
        generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + epoch)
        # The epoch's rows [steps, batch], augmentation parameters and lr factors reach the device
        # in one copy each.
        rows = epoch_rows(self.sampler, epoch, self.device)
        plan = self.augment.draw(tuple(rows.shape), tuple(self.train.images.shape[1:3]), generator).to(self.device)
        first = (epoch - 1) * steps
        factors = self.step.factors([lr_factor(first + i, steps, cfg.train.epochs, cfg.optim) for i in range(steps)])
        meter = Meter()
        for i in range(steps):
            total, parts = self.step(self.train.images[rows[i]], plan[i], self.train.labels[rows[i]], factors[i])
            meter.add(total, parts, rows.shape[1], first + i + 1)
            if (i + 1) % cfg.train.log_every == 0 or i + 1 == steps:
                self._log_train(epoch, first + i + 1, meter)
            self.cancel.check()

    def _log_train(self, epoch: int, step: int, meter: Meter) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        values = meter.flush()
        weighted = {f"{name}_weighted": values[name] * weight for name, weight in self.loss.weights.items()}
        record = {"kind": "train", "epoch": epoch, "step": step, **values, **weighted,
                  "lr": float(self.optimizer.param_groups[0]["lr"])}
        self.run.append_metrics(record)
        parts = " ".join(f"{k} {values[k]:.4f}" for k in self.loss.weights)
        log.info("epoch %d/%d step %d: loss %.4f (%s) lr %.3g, %.0f images/s", epoch, self.cfg.train.epochs, step,
                 values["loss"], parts, record["lr"], values["images_per_s"])

    # evaluation and checkpoints
    def evaluate(self, epoch: int) -> Evaluation:
        evaluation = evaluate(self.model, self.eval_set, self.extraction, self.val, rerank_of(self.cfg),
                              between_batches=self.cancel.check)
        self.run.append_metrics({"kind": "eval", "split": "test", "epoch": epoch, **evaluation.test})
        if evaluation.val:
            self.run.append_metrics({"kind": "eval", "split": "val", "epoch": epoch, **evaluation.val})
        result = Result(epoch, evaluation.test, evaluation.val, evaluation.rerank, evaluation.curves)
        if epoch > 0 and self._improves(result):
            save_model(self.model, self.run.best_path, self._meta(epoch))
            selected = result
        else:
            selected = None
        self.run.update_eval(lambda record: self._record(record, result, selected))
        test, val = evaluation.test, evaluation.val
        log.info("eval epoch %d on %s (%d runs): rank1 %.4f mAP %.4f (papers' convention %.4f) mINP %.4f; "
                 "val mAP %s%s", epoch, self.eval_set.target.key, len(self.eval_set.protocol.runs), test["rank1"],
                 test["mAP"], test.get("mAP_trapezoid") or float("nan"), test["mINP"],
                 f"{val[SELECTED_BY]:.4f}" if val.get(SELECTED_BY) is not None else "n/a",
                 " (selected)" if selected else "")
        self.last_eval = (epoch, evaluation)
        return evaluation

    def _improves(self, result: Result) -> bool:
        """Whether this evaluation beats the selected one on validation mAP; without a validation
        split the latest evaluation is selected."""
        current = self.run.read_eval().selected
        if current is None:
            return True
        if self.val is None:
            return result.epoch >= current.epoch
        new, old = result.val.get(SELECTED_BY), current.val.get(SELECTED_BY)
        return new is not None and (old is None or new > old)

    def _record(self, record, result: Result, selected: Result | None) -> None:
        protocol, target = self.eval_set.protocol, self.eval_set.target
        record.dataset, record.root, record.protocol, record.runs = (target.dataset, str(target.root), protocol.name,
                                                                     len(protocol.runs))
        record.selection = f"val {SELECTED_BY}" if self.val is not None else "last evaluation (no validation split)"
        if result.epoch == 0:
            record.epoch0 = result
        if selected is not None:
            record.selected = selected

    def _meta(self, epoch: int):
        return checkpoint_meta(self.cfg, self.model, self.protocol.class_names, self.aspects, epoch)

    def save_last(self) -> None:
        """last.safetensors: the weights after the last completed epoch with the state to resume them."""
        if self.optimizer is None or self.saved_epoch == self.epoch_done:
            return
        state = training_state(self._optimizers(), {"loss": self.loss}, self.epoch_done)
        save_model(self.model, self.run.last_path, self._meta(self.epoch_done), state=state)
        self.saved_epoch = self.epoch_done
