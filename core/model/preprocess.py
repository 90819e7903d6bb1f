"""What a backbone expects of its input images: the normalisation and the resize filter.

open_clip gives each model its own preprocessing (OpenAI CLIP: its mean and std, bicubic;
SigLIP: mean and std 0.5; ...), set from the pretrained tag's config or from the
`open_clip_config.json` that ships beside a model's weights. Training augmentation, evaluation,
embedding and export all read it from here, so no path normalises with another model's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from open_clip.model import get_model_preprocess_cfg
from open_clip.transform import PreprocessCfg

DEFAULT = PreprocessCfg()
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "lanczos")


@dataclass(frozen=True)
class Preprocess:
    mean: tuple[float, float, float] = tuple(DEFAULT.mean)
    std: tuple[float, float, float] = tuple(DEFAULT.std)
    interpolation: str = DEFAULT.interpolation

    @classmethod
    def of(cls, clip) -> "Preprocess":
        """The preprocessing open_clip recorded on a CLIP model (its defaults where it recorded none)."""
        cfg = get_model_preprocess_cfg(clip)
        interpolation = cfg.get("interpolation", DEFAULT.interpolation)
        return cls(tuple(float(v) for v in cfg.get("mean", DEFAULT.mean)),
                   tuple(float(v) for v in cfg.get("std", DEFAULT.std)),
                   interpolation if interpolation in INTERPOLATIONS else DEFAULT.interpolation)
