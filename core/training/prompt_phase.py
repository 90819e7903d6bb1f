"""The prompt phase (CLIP-ReID's first stage), run before the image encoder trains.

With both encoders frozen, per-identity token embeddings (core.model.prompts.PromptLearner) are
learned so that each identity's prompt sits near its images: the training images' features are
extracted once, then each step scores a batch of them against the prompts of their identities,
image-to-text and text-to-image (supervised contrastive, core.losses.functional.supcon_loss,
at CLIP's own logit scale). The learned prompts, encoded once, become the model's fixed
text-prompt classifier, which the image-to-text loss then trains the image encoder against.
Each epoch is one `{"kind": "prompt"}` line in metrics.jsonl (`epoch` 0: before image training).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import open_clip
import torch
import torch.nn.functional as F

from core.config import Config, OptimConfig
from core.data.split import Split
from core.device import autocast
from core.errors import ConfigError
from core.evaluation import Extraction, extract_features
from core.losses.combined import needs_outputs
from core.losses.functional import supcon_loss
from core.model.handid import HandIDModel
from core.model.prompts import PromptLearner, check_learned_template
from core.runs import RunDir
from core.training.schedule import apply, lr_factor

log = logging.getLogger(__name__)
TEXT_OUTPUT = "text_logits"  # the model output that the learned prompts score
_ENCODE_CHUNK = 256


def check_prompts(cfg: Config) -> None:
    """What the prompt phase needs, checkable without data: a loss that reads the prompts, a valid
    template, and a backbone with open_clip's built-in text transformer."""
    if not cfg.prompts.epochs:
        return
    if TEXT_OUTPUT not in needs_outputs(cfg.loss):
        raise ConfigError(f"prompts.epochs={cfg.prompts.epochs} learns prompts that no loss reads; give "
                          "loss.i2t a weight or set prompts.epochs=0")
    check_learned_template(cfg.prompts.template, cfg.prompts.tokens)
    name = cfg.model.backbone.strip().replace("/", "-")
    text_cfg = (open_clip.get_model_config(name) or {}).get("text_cfg", {})
    if text_cfg.get("hf_model_name"):
        raise ConfigError(f"prompts.epochs > 0 needs open_clip's built-in text transformer; {name} has a "
                          "Hugging Face text tower")


def learn_prompts(model: HandIDModel, train: Split, cfg: Config, run: RunDir,
                  between_steps: Callable[[], None] = lambda: None) -> None:
    """Learn the identity prompts against the frozen image features of `train` and install them as
    the model's text-prompt classifier."""
    pc = cfg.prompts
    num_classes = model.neck.classifier.out_features
    images = extract_features(model, train.images, Extraction("pre_bn", cfg.eval.batch_size, False, cfg.train.amp))
    learner = PromptLearner(model.clip, model.tokenizer, num_classes, pc.tokens, pc.template)
    optimizer = torch.optim.Adam([{"params": [learner.ctx], "lr": pc.lr, "base_lr": pc.lr}],
                                 weight_decay=pc.weight_decay)
    schedule = OptimConfig(schedule="cosine", warmup_epochs=pc.warmup_epochs)
    scale = model.clip.logit_scale.detach().exp().float()
    batch = min(pc.batch_size, len(images))
    steps = len(images) // batch
    log.info("prompt phase: %d epochs of %d steps, %d tokens per identity, chance %.3f", pc.epochs, steps,
             pc.tokens, math.log(num_classes))
    for epoch in range(1, pc.epochs + 1):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.train.seed * 7919 + epoch))
        sums = torch.zeros(2, device=images.device)
        for i in range(steps):
            apply(optimizer, lr_factor((epoch - 1) * steps + i, steps, pc.epochs, schedule))
            rows = order[i * batch:(i + 1) * batch].to(images.device)
            labels = train.labels[rows]
            with autocast(images.device, cfg.train.amp):
                text = learner(labels)
            i2t = supcon_loss(images[rows], text, labels, labels, scale)
            t2i = supcon_loss(text, images[rows], labels, labels, scale)
            optimizer.zero_grad(set_to_none=True)
            (i2t + t2i).backward()
            optimizer.step()
            sums += torch.stack([i2t.detach(), t2i.detach()])
            between_steps()
        i2t_mean, t2i_mean = (sums / max(steps, 1)).tolist()
        run.append_metrics({"kind": "prompt", "epoch": 0, "prompt_epoch": epoch, "loss": i2t_mean + t2i_mean,
                            "image_to_text": i2t_mean, "text_to_image": t2i_mean, "lr": optimizer.param_groups[0]["lr"]})
    install(model, encode_all(learner, num_classes))


@torch.no_grad()
def encode_all(learner: PromptLearner, num_classes: int) -> torch.Tensor:
    """[classes, dim] float32 text features of every identity's learned prompt."""
    device = learner.ctx.device
    return torch.cat([learner(torch.arange(s, min(s + _ENCODE_CHUNK, num_classes), device=device)).float()
                      for s in range(0, num_classes, _ENCODE_CHUNK)])


def install(model: HandIDModel, text: torch.Tensor) -> None:
    """The learned prompts as the model's text-prompt classifier (normalised, fixed from now on);
    logs the mean cosine between identities' prompts (fixed prompts: ~0.95)."""
    text = F.normalize(text.float(), dim=1)
    model.text_classifier.text.copy_(text)
    n = len(text)
    mean_cos = float(((text @ text.T).sum() - n) / max(n * (n - 1), 1))
    log.info("prompt phase done: mean cosine between identities' prompts %.3f", mean_cos)
