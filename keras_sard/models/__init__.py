"""Teacher and student segmenters: a small CPU model, and keras-hub backbones
(Swin, ResNet, MiT) as 4-level feature pyramids with an UPerNet decoder."""

from keras_sard.models.small import build_small_segmenter, level_names

__all__ = ["build_small_segmenter", "level_names"]
