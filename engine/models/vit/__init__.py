"""SpecViT: a plain-PyTorch 1D Vision Transformer for log g (see docs/vit.md).

Nothing here imports torch at package import; use `engine.models.vit.estimator` or
`engine.models.vit.model` directly."""

from .presets import VIT_PRESETS

__all__ = ["VIT_PRESETS"]
