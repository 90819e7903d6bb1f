"""The hand-identity model: a trainable CLIP image encoder, a frozen CLIP text encoder, heads.

The text encoder (everything in the CLIP model except `visual`) is frozen: no gradients, and
kept in eval mode even when `.train()` is called. Its only job is to encode the identity
prompts once, at construction, into a fixed `PromptClassifier`. Checkpoints therefore leave it
out (see core.model.checkpoint); a load that misses only text-encoder keys is complete.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from core.model.heads import BNNeck, PromptClassifier
from core.model.preprocess import Preprocess

_PROMPT_CHUNK = 256


def is_text_encoder_key(key: str) -> bool:
    """True for state-dict keys of the frozen text encoder (`clip.*` outside `clip.visual.*`)."""
    dotted = "." + key
    return ".clip." in dotted and ".clip.visual." not in dotted


class HandIDModel(nn.Module):
    """CLIP image encoder + BNNeck ID classifier + optional frozen text-prompt classifier."""

    def __init__(self, clip: nn.Module, tokenizer, num_classes: int, prompts: list[str] | None) -> None:
        super().__init__()
        if prompts is not None and len(prompts) != num_classes:
            raise ValueError(f"{len(prompts)} prompts for {num_classes} classes; give one prompt per class")
        self.clip = clip
        self.tokenizer = tokenizer  # for prompts learned later (core.training.prompt_phase)
        self.preprocess = Preprocess.of(clip)
        for name, param in clip.named_parameters():
            if not name.startswith("visual."):
                param.requires_grad_(False)
        self.feature_dim = _feature_dim(clip)
        self.neck = BNNeck(self.feature_dim, num_classes)
        self.text_classifier = None if prompts is None else PromptClassifier(
            _encode_prompts(clip, tokenizer, prompts), clip.logit_scale.detach().exp()
        )
        self.register_load_state_dict_post_hook(_forgive_text_encoder)
        self.train(self.training)

    def train(self, mode: bool = True) -> HandIDModel:
        super().train(mode)
        for name, child in self.clip.named_children():
            if name != "visual":
                child.eval()
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        feat = self.clip.visual(images)
        feat_bn, logits = self.neck(feat)
        text_logits = None if self.text_classifier is None else self.text_classifier(feat)
        return {"feat": feat, "feat_bn": feat_bn, "logits": logits, "text_logits": text_logits}

    def embed(self, images: torch.Tensor, feature: Literal["pre_bn", "post_bn"] = "pre_bn") -> torch.Tensor:
        """L2-normalised retrieval features. Call in eval mode (BN uses its running statistics);
        wrap in torch.inference_mode() yourself where no gradient is wanted."""
        feat = self.clip.visual(images)
        if feature == "post_bn":
            feat = self.neck.bn(feat)
        elif feature != "pre_bn":
            raise ValueError(f"feature must be 'pre_bn' or 'post_bn', not {feature!r}")
        return F.normalize(feat, dim=-1)

    def trainable_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by learning-rate group: the image encoder, and the BNNeck/classifier."""
        return {
            "backbone": [p for p in self.clip.visual.parameters() if p.requires_grad],
            "heads": [p for p in self.neck.parameters() if p.requires_grad],
        }


def _feature_dim(clip: nn.Module) -> int:
    dim = getattr(clip.visual, "output_dim", None)
    if dim:
        return int(dim)
    size = clip.visual.image_size
    h, w = (size, size) if isinstance(size, int) else size
    was_training = clip.visual.training
    with torch.no_grad():
        dim = clip.visual.eval()(torch.zeros(1, 3, h, w, device=clip.logit_scale.device)).shape[-1]
    clip.visual.train(was_training)
    return int(dim)


@torch.no_grad()
def _encode_prompts(clip: nn.Module, tokenizer, prompts: list[str]) -> torch.Tensor:
    """[C, D] text embeddings of `prompts`, encoded in chunks with the text encoder in eval mode."""
    device = clip.logit_scale.device
    was_training = clip.training
    clip.eval()
    chunks = [
        clip.encode_text(tokenizer(prompts[i : i + _PROMPT_CHUNK]).to(device)).float()
        for i in range(0, len(prompts), _PROMPT_CHUNK)
    ]
    clip.train(was_training)
    return torch.cat(chunks)


def _forgive_text_encoder(module: nn.Module, incompatible) -> None:
    """A state without the frozen text encoder (as checkpoints store it) still loads strictly."""
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not is_text_encoder_key(k)]
