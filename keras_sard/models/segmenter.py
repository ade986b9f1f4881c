"""Segmenters by backbone name: a feature pyramid plus an UPerNet decoder.

Example::

    import numpy as np
    from keras_sard.models import build_segmenter, tiny_overrides

    model = build_segmenter("resnet50", num_classes=3, image_size=64, decoder_channels=16,
                            name="student", **tiny_overrides("resnet50"))
    model(np.zeros((1, 64, 64, 3), "float32")).shape  # (1, 64, 64, 3)
    # Tap "student_level_1" .. "student_level_4" for SARD.
"""

import keras

from keras_sard.models.backbones import BACKBONES, build_backbone
from keras_sard.models.levels import normalize_image_size
from keras_sard.models.pyramids import build_pyramid
from keras_sard.models.small import build_small_segmenter
from keras_sard.models.upernet import upernet_decoder

__all__ = ["SEGMENTER_BACKBONES", "build_segmenter"]

#: Every backbone name `build_segmenter` accepts.
SEGMENTER_BACKBONES = tuple(BACKBONES) + ("small",)


def build_segmenter(
    backbone,
    num_classes,
    image_size,
    weights=None,
    decoder_channels=None,
    name=None,
    **backbone_overrides,
):
    """A functional segmenter: backbone pyramid → UPerNet → logits at the input size.

    Args:
        backbone: one of `SEGMENTER_BACKBONES`: ``"swin_tiny"``,
            ``"swin_small"``, ``"swin_base"``, ``"swin_large"``,
            ``"resnet50"``, ``"resnet101"``, ``"mit_b0"`` … ``"mit_b5"``, or
            ``"small"`` (`build_small_segmenter`).
        num_classes: logits channels.
        image_size: int or (height, width), divisible by 32 (None: any size,
            for ``"small"`` only; the UPerNet pyramid pooling needs a fixed
            size).
        weights: None (random weights; offline) or a keras-hub preset name
            for the backbone (``from_preset``; needs network access), see
            `keras_sard.models.backbones.PRESETS`.  The decoder always starts
            from random weights.
        decoder_channels: UPerNet width; None gives 512 (the paper's), or
            ``widths[1]`` for ``"small"``.
        name: model name and level prefix (default: the backbone name).
        **backbone_overrides: backbone constructor arguments (e.g.
            `tiny_overrides(backbone)`; ``widths=`` for ``"small"``).

    Returns:
        a `keras.Model` from ``(batch, H, W, 3)`` images to ``(batch, H, W,
        num_classes)`` logits whose layers ``f"{name}_level_{i}"``
        (i = 1..4, strides 4..32) are the levels to distil.
    """
    if backbone not in SEGMENTER_BACKBONES:
        raise ValueError(f"Unknown backbone {backbone!r}; known: {list(SEGMENTER_BACKBONES)}.")
    name = name or backbone
    if backbone == "small":
        if weights is not None:
            raise ValueError(
                f"The 'small' backbone has no pretrained weights; got weights={weights!r}."
            )
        return build_small_segmenter(
            num_classes, image_size, decoder_channels=decoder_channels, name=name, **backbone_overrides
        )
    normalize_image_size(image_size, allow_none=False)
    hub_backbone = build_backbone(backbone, image_size, weights=weights, **backbone_overrides)
    pyramid = build_pyramid(hub_backbone, name=name)
    logits = upernet_decoder(
        pyramid.outputs,
        num_classes,
        channels=512 if decoder_channels is None else decoder_channels,
        name=f"{name}_decoder",
    )
    model = keras.Model(pyramid.input, logits, name=name)
    return model
