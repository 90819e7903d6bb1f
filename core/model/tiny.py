"""`HandID-Tiny`: a few-layer, 64-wide CLIP registered with open_clip for CPU tests and the demo.

A 2-layer ViT (patch 16, width 64, 64 px default) and a 1-layer text tower that keeps
CLIP's 77-token context and 49,408-token vocabulary, so open_clip's own tokenizer works.
Importing this module registers the config; `open_clip.create_model("HandID-Tiny")` then works.
"""

from pathlib import Path

import open_clip

NAME = "HandID-Tiny"
CONFIG = Path(__file__).parent / "configs" / f"{NAME}.json"

if NAME not in open_clip.list_models():
    open_clip.add_model_config(CONFIG)
