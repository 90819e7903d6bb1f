"""open_clip backbones and the identity heads."""
