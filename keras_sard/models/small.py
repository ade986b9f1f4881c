"""A small plain-convolution segmenter that trains on a CPU in minutes.

A 4-level pyramid (strides 4, 8, 16, 32) of conv → BatchNorm → ReLU blocks
with stride-2 downsampling, and a light UPerNet decoder
(`keras_sard.models.upernet.upernet_decoder`, global pooling only in its
pyramid pooling module, so any input size divisible by 32 works).

Layer names the Distiller can tap: ``f"{name}_level_{i}"`` for i = 1..4,
the last layer of level i (stride ``4 * 2**(i - 1)``, ``widths[i - 1]``
channels). `level_names(name)` lists them.

Example::

    import numpy as np
    from keras_sard.models import build_small_segmenter, level_names

    student = build_small_segmenter(num_classes=3, image_size=64, name="student")
    student(np.zeros((1, 64, 64, 3), "float32")).shape  # (1, 64, 64, 3)
    level_names("student")  # ('student_level_1', ..., 'student_level_4')
"""

import keras
from keras import layers

from keras_sard.models.levels import level_names, normalize_image_size
from keras_sard.models.upernet import upernet_decoder

__all__ = ["build_small_segmenter"]


def _conv_bn_relu(x, filters, strides, name, relu_name=None):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=relu_name or f"{name}_relu")(x)


def build_small_segmenter(num_classes, image_size=None, widths=(16, 32, 64, 128), decoder_channels=None, name="small"):
    """A small conv pyramid + UPerNet segmenter (functional `keras.Model`).

    Args:
        num_classes: logits channels.
        image_size: int, (height, width), or None for any size; given sizes
            must be divisible by 32.
        widths: channels of levels 1..4 (strides 4, 8, 16, 32).
        decoder_channels: decoder width; defaults to ``widths[1]``.
        name: model name and prefix of every layer name.

    Returns:
        a model mapping ``(batch, H, W, 3)`` images to ``(batch, H, W,
        num_classes)`` logits, with levels ``f"{name}_level_{i}"``.
    """
    height, width = normalize_image_size(image_size)
    widths = tuple(widths)
    if len(widths) != 4 or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths must be 4 positive ints (levels 1..4); got {widths!r}.")
    if decoder_channels is None:
        decoder_channels = widths[1]

    inputs = keras.Input((height, width, 3), name=f"{name}_input")
    # Stem: two stride-2 convs to stride 4.
    x = _conv_bn_relu(inputs, max(widths[0] // 2, 8), 2, f"{name}_stem_1")
    x = _conv_bn_relu(x, widths[0], 2, f"{name}_stem_2")
    features = []
    for i, filters in enumerate(widths, start=1):
        if i > 1:
            x = _conv_bn_relu(x, filters, 2, f"{name}_level_{i}_down")
        x = _conv_bn_relu(x, filters, 1, f"{name}_level_{i}_block", relu_name=level_names(name)[i - 1])
        features.append(x)
    logits = upernet_decoder(
        features, num_classes, channels=decoder_channels, pool_scales=(1,), dropout=0.0,
        name=f"{name}_decoder",
    )
    return keras.Model(inputs, logits, name=name)
