"""Identity prompts for the frozen text encoder: fixed ones ("a photo of the dorsal right hand of
person 0000123"), and learned ones, per-identity token embeddings in "a photo of a X X X X hand."
(`PromptLearner`, trained by core.training.prompt_phase).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from open_clip.transformer import text_global_pool
from torch import nn

from core.errors import ConfigError, ModelError

_SIDES = {"r": "right", "l": "left"}


def aspect_name(aspect: str) -> str:
    """Readable aspect: `dorsal_r` -> `dorsal right`, `palmar_l` -> `palmar left`, `dorsal` as is."""
    words = aspect.strip().replace("-", "_").split("_")
    return " ".join(_SIDES.get(w, w) if i else w for i, w in enumerate(words) if w)


def identity_prompts(
    class_names: Sequence[str],
    aspects: Sequence[str] | str,
    template: str = "a photo of the {aspect} hand of person {identity}",
) -> list[str]:
    """One prompt per class. `aspects` is one aspect for all classes or one per class; an empty
    aspect leaves no double space ("a photo of the hand of person 7")."""
    if isinstance(aspects, str):
        aspects = [aspects] * len(class_names)
    if len(aspects) != len(class_names):
        raise ConfigError(f"identity prompts: {len(class_names)} classes but {len(aspects)} aspects")
    try:
        texts = [template.format(identity=name, aspect=aspect_name(a)) for name, a in zip(class_names, aspects)]
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"model.prompt={template!r} is not valid ({exc!r}); use the placeholders {{identity}} and {{aspect}}"
        ) from None
    return [" ".join(text.split()) for text in texts]


TOKENS = "{tokens}"  # where a learned-prompt template takes its per-identity tokens
_PLACEHOLDER = "X"
_CTX_STD = 0.02  # CLIP-ReID's init of the identity tokens (and CLIP's token embedding's)


def check_learned_template(template: str, tokens: int) -> str:
    """The template with its `{tokens}` placeholder written out as `tokens` X words; ConfigError
    naming prompts.template when it does not hold exactly one placeholder."""
    if template.count(TOKENS) != 1 or "{" in template.replace(TOKENS, "", 1):
        raise ConfigError(f"prompts.template={template!r} is not valid; it needs {TOKENS} once and no other "
                          "placeholder (e.g. 'a photo of a {tokens} hand.')")
    return " ".join(template.replace(TOKENS, " ".join([_PLACEHOLDER] * tokens)).split())


def text_tower(clip: nn.Module) -> nn.Module:
    """The CLIP model itself when it holds open_clip's built-in text transformer (not a custom or
    Hugging Face text tower, whose embedding layers differ)."""
    if all(hasattr(clip, a) for a in ("token_embedding", "positional_embedding", "transformer", "ln_final",
                                      "text_pool_type", "attn_mask")):
        return clip
    raise ModelError(f"learned prompts need open_clip's built-in text transformer; {type(clip).__name__} has "
                     "another text tower (set prompts.epochs=0)")


class PromptLearner(nn.Module):
    """Per-identity learnable token embeddings in a fixed prompt (CLIP-ReID's first stage).

    "a photo of a X X X X hand." is tokenised once; the X positions' word embeddings are
    replaced by `ctx[label]` ([classes, tokens, width], the only parameters) and the sequence
    runs through the frozen text transformer exactly as `encode_text` runs a tokenised one.
    """

    def __init__(self, clip: nn.Module, tokenizer, num_classes: int, tokens: int, template: str) -> None:
        super().__init__()
        # Held outside the module tree: the frozen text encoder belongs to the model, and the
        # learner's parameters and state are its identity tokens alone.
        self._tower = (text_tower(clip),)
        ids = tokenizer([check_learned_template(template, tokens)])
        marker = int(tokenizer([_PLACEHOLDER])[0, 1])
        start = int((ids[0] == marker).nonzero()[0, 0])
        device = clip.positional_embedding.device
        with torch.no_grad():
            embedded = clip.token_embedding(ids.to(device)).float()
        self.register_buffer("ids", ids.to(device), persistent=False)
        self.register_buffer("prefix", embedded[:, :start], persistent=False)
        self.register_buffer("suffix", embedded[:, start + tokens:], persistent=False)
        width = embedded.shape[-1]
        self.ctx = nn.Parameter(torch.randn(num_classes, tokens, width, device=device) * _CTX_STD)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """[B, embed_dim] text features (not normalised) of the prompts of `labels`."""
        n = len(labels)
        x = torch.cat([self.prefix.expand(n, -1, -1), self.ctx[labels], self.suffix.expand(n, -1, -1)], dim=1)
        return encode_embedded(self._tower[0], x, self.ids.expand(n, -1))


def encode_embedded(tower: nn.Module, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's `encode_text` from the token embeddings `x` on ([B, context, width]); `ids` are
    the token ids that say where each sequence ends (pooling)."""
    cast = tower.transformer.get_cast_dtype()
    x = x.to(cast) + tower.positional_embedding.to(cast)
    x = tower.transformer(x, attn_mask=tower.attn_mask)
    x = tower.ln_final(x)
    x = text_global_pool(x, ids, tower.text_pool_type, eos_token_id=getattr(tower, "text_eos_id", None))
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection
