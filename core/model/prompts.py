"""Identity prompts for the frozen text encoder: "a photo of the dorsal right hand of person 0000123"."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import ConfigError

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
