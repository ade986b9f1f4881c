"""UPerNet decoder (Xiao et al. 2018), as in mmsegmentation's ``UPerHead``.

A pyramid pooling module (PPM) on the last level, an FPN top-down path over
the four levels, all levels fused at stride 4, a 1×1 classifier, and the
logits upsampled (bilinear) to the input resolution.  Every convolution is
conv (no bias) → BatchNorm → ReLU, as mmsegmentation's ``ConvModule``.

Example::

    import keras
    from keras_sard.models.upernet import upernet_decoder

    inputs = keras.Input((64, 64, 3))
    features = [keras.layers.Conv2D(8 * 2**i, 1, strides=4 * 2**i)(inputs) for i in range(4)]
    logits = upernet_decoder(features, num_classes=3, channels=16)
    keras.Model(inputs, logits).output_shape  # (None, 64, 64, 3)
"""

import keras
from keras import layers, ops

__all__ = ["ResizeLike", "upernet_decoder"]


@keras.saving.register_keras_serializable(package="keras_sard")
class ResizeLike(layers.Layer):
    """Resize ``x`` (bilinear, half-pixel centres, i.e. ``align_corners=False``)
    to the spatial size of ``reference``: ``ResizeLike()([x, reference])``.

    A 1×1 map is broadcast, which works for any (even unknown) size; other
    maps need the reference's size to be known when the model is built.
    """

    def call(self, inputs):
        x, reference = inputs
        if x.shape[1] == 1 and x.shape[2] == 1:
            return x * ops.ones_like(reference[..., :1], dtype=x.dtype)
        return ops.image.resize(x, tuple(reference.shape[1:3]), interpolation="bilinear")

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


def _conv_bn_relu(x, filters, kernel_size, name):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def upernet_decoder(
    features,
    num_classes,
    channels=512,
    pool_scales=(1, 2, 3, 6),
    dropout=0.1,
    upsample=4,
    name="upernet",
):
    """UPerNet logits from a 4-level feature pyramid (symbolic tensors).

    Args:
        features: four channels_last maps, strides 4, 8, 16, 32 (each level
            exactly twice the size of the next).
        num_classes: output channels of the logits.
        channels: width of the decoder (512 in the paper / mmsegmentation).
        pool_scales: PPM bin sizes on the last level. Bins other than 1 need
            maps of a known size (a model built for one image size).
        dropout: dropout rate before the classifier (0.1 in mmsegmentation).
        upsample: factor from the first level to the input resolution.
        name: prefix of every layer name.

    Returns:
        logits of shape ``(batch, H, W, num_classes)``.
    """
    if len(features) != 4:
        raise ValueError(
            f"upernet_decoder needs 4 feature levels (strides 4, 8, 16, 32); got {len(features)}."
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int; got {num_classes!r}.")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int; got {channels!r}.")
    pool_scales = tuple(pool_scales)
    if not pool_scales or any(not isinstance(s, int) or s < 1 for s in pool_scales):
        raise ValueError(f"pool_scales must be positive ints; got {pool_scales!r}.")

    # Pyramid pooling on the last level.
    last = features[-1]
    if any(s != 1 for s in pool_scales) and None in tuple(last.shape[1:3]):
        raise ValueError(
            f"pool_scales {pool_scales} need feature maps of a known size, but the last level's "
            f"shape is {tuple(last.shape)}: build the model for a fixed image_size, or use "
            "pool_scales=(1,)."
        )
    branches = [last]
    for scale in pool_scales:
        if scale == 1:  # global pooling, any input size
            pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_ppm_{scale}_pool")(last)
        else:
            pooled = layers.AdaptiveAveragePooling2D(scale, name=f"{name}_ppm_{scale}_pool")(last)
        pooled = _conv_bn_relu(pooled, channels, 1, f"{name}_ppm_{scale}")
        branches.append(ResizeLike(name=f"{name}_ppm_{scale}_resize")([pooled, last]))
    psp = layers.Concatenate(name=f"{name}_ppm_concat")(branches)
    psp = _conv_bn_relu(psp, channels, 3, f"{name}_ppm_bottleneck")

    # FPN: lateral 1×1 convs, top-down path, 3×3 output convs.
    laterals = [_conv_bn_relu(f, channels, 1, f"{name}_lateral_{i + 1}") for i, f in enumerate(features[:-1])]
    laterals.append(psp)
    for i in range(3, 0, -1):
        up = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_top_down_{i}_up")(laterals[i])
        laterals[i - 1] = layers.Add(name=f"{name}_top_down_{i}_add")([laterals[i - 1], up])
    outputs = [_conv_bn_relu(laterals[i], channels, 3, f"{name}_fpn_{i + 1}") for i in range(3)]
    outputs.append(psp)

    # Fuse at stride 4, classify, upsample to the input.
    fused = [outputs[0]] + [
        layers.UpSampling2D(2**i, interpolation="bilinear", name=f"{name}_fuse_{i + 1}_up")(outputs[i])
        for i in range(1, 4)
    ]
    x = layers.Concatenate(name=f"{name}_fuse_concat")(fused)
    x = _conv_bn_relu(x, channels, 3, f"{name}_fuse")
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Conv2D(num_classes, 1, name=f"{name}_classifier")(x)
    if upsample != 1:
        x = layers.UpSampling2D(upsample, interpolation="bilinear", name=f"{name}_logits_up")(x)
    return x
