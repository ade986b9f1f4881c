"""Training augmentation of one ``(image, mask)`` pair with stateless TF image ops.

The recipe of the paper, each step switchable: random scale, random crop (with
padding), horizontal flip, rotation, colour jitter. Geometry moves image and
mask together: the image is resampled bilinearly, the mask by nearest
neighbour, and every pixel that has no source (crop padding, rotated-out
corners) gets the ignore label in the mask (and 0 in the image). All random
draws come from a ``seed`` tensor of shape ``[2]`` through stateless ops, so
the result is a pure function of ``(image, mask, seed)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from keras_sard.data.base import IGNORE_LABEL, as_size


@dataclasses.dataclass(frozen=True)
class ColorJitter:
    """Strength of the photometric jitter applied to a ``[0, 1]`` image.

    ``brightness`` is a maximum additive change; ``contrast`` and
    ``saturation`` are maximum relative changes (factor in ``[1 - x, 1 + x]``).

    Example:

    >>> ColorJitter(brightness=0.1).contrast
    0.2
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self):
        for field in ("brightness", "contrast", "saturation"):
            value = getattr(self, field)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"ColorJitter.{field} must lie in [0, 1), got {value}.")


def resize_pair(image: tf.Tensor, mask: tf.Tensor, size) -> Tuple[tf.Tensor, tf.Tensor]:
    """Resize ``image`` (float, bilinear) and ``mask`` (int, nearest) to ``size``.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = resize_pair(tf.zeros((4, 6, 3)), tf.zeros((4, 6), tf.int32), (8, 12))
    >>> tuple(image.shape), tuple(mask.shape), mask.dtype.name
    ((8, 12, 3), (8, 12), 'int32')
    """
    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def pad_pair(image: tf.Tensor, mask: tf.Tensor, height, width,
             ignore_label: int = IGNORE_LABEL) -> Tuple[tf.Tensor, tf.Tensor]:
    """Pad bottom/right to at least ``(height, width)``: image with 0, mask with ignore.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = pad_pair(tf.ones((2, 2, 3)), tf.zeros((2, 2), tf.int32), 3, 4)
    >>> mask.numpy().tolist()
    [[0, 0, 255, 255], [0, 0, 255, 255], [255, 255, 255, 255]]
    """
    shape = tf.shape(mask)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=0)
    mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=ignore_label)
    return image, mask


def _random_scale(image, mask, scale_range, seed):
    low, high = scale_range
    factor = tf.random.stateless_uniform([], seed, low, high)
    shape = tf.cast(tf.shape(mask), tf.float32)
    size = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    return resize_pair(image, mask, size)


def _random_crop(image, mask, crop_size, ignore_label, seed):
    crop_h, crop_w = crop_size
    image, mask = pad_pair(image, mask, crop_h, crop_w, ignore_label)
    shape = tf.shape(mask)
    top = tf.random.stateless_uniform([], seed, 0, shape[0] - crop_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(seed, 1), 0, shape[1] - crop_w + 1,
        dtype=tf.int32)
    image = tf.slice(image, [top, left, 0], [crop_h, crop_w, -1])
    mask = tf.slice(mask, [top, left], [crop_h, crop_w])
    return image, mask


def _random_flip(image, mask, seed):
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
    return image, mask


def rotation_transform(angle: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """The 8-vector projective transform rotating by ``angle`` (radians) about the centre.

    It maps output pixel ``(x, y)`` to input pixel ``(x', y')`` as
    ``tf.raw_ops.ImageProjectiveTransformV3`` expects.

    Example:

    >>> import tensorflow as tf
    >>> rotation_transform(tf.constant(0.0), 5, 5).numpy().tolist()
    [1.0, -0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    angle = tf.cast(angle, tf.float32)
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])


def rotate_pair(image: tf.Tensor, mask: tf.Tensor, angle: tf.Tensor,
                ignore_label: int = IGNORE_LABEL) -> Tuple[tf.Tensor, tf.Tensor]:
    """Rotate ``image`` (bilinear, fill 0) and ``mask`` (nearest, fill ignore) by
    ``angle`` radians about the centre, keeping the size.

    Example:

    >>> import math, tensorflow as tf
    >>> _, mask = rotate_pair(tf.ones((9, 9, 3)), tf.zeros((9, 9), tf.int32),
    ...                       tf.constant(math.radians(45.0)))
    >>> int(mask[0, 0]), int(mask[4, 4])
    (255, 0)
    """
    shape = tf.shape(mask)
    transform = rotation_transform(angle, shape[0], shape[1])[None]
    output_shape = shape[:2]
    image = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=output_shape,
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    mask_float = tf.cast(mask, tf.float32)[None, ..., None]
    mask_float = tf.raw_ops.ImageProjectiveTransformV3(
        images=mask_float, transforms=transform, output_shape=output_shape,
        fill_value=float(ignore_label), interpolation="NEAREST", fill_mode="CONSTANT")[0]
    return image, tf.cast(tf.round(mask_float[..., 0]), tf.int32)


def _color_jitter(image, jitter: ColorJitter, seeds):
    if jitter.brightness > 0:
        image = tf.image.stateless_random_brightness(image, jitter.brightness, seeds[0])
    if jitter.contrast > 0:
        image = tf.image.stateless_random_contrast(
            image, 1.0 - jitter.contrast, 1.0 + jitter.contrast, seeds[1])
    if jitter.saturation > 0:
        image = tf.image.stateless_random_saturation(
            image, 1.0 - jitter.saturation, 1.0 + jitter.saturation, seeds[2])
    return tf.clip_by_value(image, 0.0, 1.0)


def augment_pair(
    image: tf.Tensor,
    mask: tf.Tensor,
    seed: tf.Tensor,
    *,
    crop_size: Optional[Sequence[int]] = None,
    scale_range: Optional[Tuple[float, float]] = (0.5, 2.0),
    flip: bool = True,
    rotation: Optional[float] = 15.0,
    color_jitter: Optional[ColorJitter] = ColorJitter(),
    ignore_label: int = IGNORE_LABEL,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Augment one pair: scale, crop, flip, rotate, colour jitter (in that order).

    Args:
        image: float32 (H, W, 3) with values in ``[0, 1]``.
        mask: int32 (H, W).
        seed: int tensor of shape ``[2]``; the output is a pure function of it.
        crop_size: ``(height, width)`` (or int) of the output; smaller inputs are
            padded (image 0, mask ``ignore_label``). ``None``: no crop.
        scale_range: ``(low, high)`` random resize factor; ``None``: no scaling.
        flip: random horizontal flip with probability 1/2.
        rotation: maximum absolute rotation in degrees; ``None`` or 0: none.
        color_jitter: a :class:`ColorJitter`; ``None``: none.
        ignore_label: mask value for pixels without a source.

    Returns:
        ``(image float32 (h, w, 3) in [0, 1], mask int32 (h, w))``.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = augment_pair(tf.zeros((20, 30, 3)), tf.zeros((20, 30), tf.int32),
    ...                            tf.constant([1, 2]), crop_size=(16, 16))
    >>> tuple(image.shape), tuple(mask.shape)
    ((16, 16, 3), (16, 16))
    """
    if scale_range is not None:
        low, high = (float(v) for v in scale_range)
        if not 0.0 < low <= high:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got "
                             f"{scale_range!r}.")
    if crop_size is not None:
        crop_size = as_size(crop_size, "crop_size")
    if rotation is not None and not 0.0 <= float(rotation) <= 180.0:
        raise ValueError(f"rotation must be a maximum angle in degrees in [0, 180], got "
                         f"{rotation!r}.")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)
    image = tf.convert_to_tensor(image, tf.float32)
    mask = tf.convert_to_tensor(mask, tf.int32)
    if scale_range is not None:
        image, mask = _random_scale(image, mask, scale_range, seeds[0])
    if crop_size is not None:
        image, mask = _random_crop(image, mask, crop_size, ignore_label, seeds[1])
    if flip:
        image, mask = _random_flip(image, mask, seeds[2])
    if rotation:
        limit = math.radians(float(rotation))
        angle = tf.random.stateless_uniform([], seeds[3], -limit, limit)
        image, mask = rotate_pair(image, mask, angle, ignore_label)
    if color_jitter is not None:
        image = _color_jitter(image, color_jitter, seeds[4:7])
    if crop_size is not None:
        image = tf.ensure_shape(image, [crop_size[0], crop_size[1], 3])
        mask = tf.ensure_shape(mask, [crop_size[0], crop_size[1]])
    return image, mask
