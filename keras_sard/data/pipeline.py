"""The shared input pipeline: from :class:`SegmentationData` to normalised batches.

``make_pipeline`` turns a reader's ``(uint8 image, int32 mask)`` dataset into a
batched, prefetched ``tf.data.Dataset`` of ``(float32 (B, H, W, 3), int32
(B, H, W))`` that Keras' ``fit``/``evaluate`` accept on every backend
(TensorFlow, JAX, PyTorch). Training applies :func:`augment_pair`; evaluation
applies no augmentation, only an optional resize and/or padding to a multiple
of the network stride. Everything random is seeded: the same ``seed`` gives
the same batches, and each new pass over the dataset (epoch) draws new
shuffles and augmentations from it.

Sliding-window inference for large images lives in
:mod:`keras_sard.data.sliding_window` and is re-exported here.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from keras_sard.data.augment import ColorJitter, augment_pair, pad_pair, resize_pair
from keras_sard.data.base import SegmentationData, as_size
from keras_sard.data.sliding_window import sliding_window_predict  # noqa: F401 (re-export)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet RGB images scaled to [0, 1]."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of ImageNet RGB images scaled to [0, 1]."""


def normalize(image: tf.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> tf.Tensor:
    """``(image / 255 - mean) / std`` as float32, for uint8 images.

    ``mean``/``std`` are per channel on the ``[0, 1]`` scale (ImageNet's by
    default). Float input is taken to be on the ``[0, 1]`` scale already.

    Example:

    >>> import tensorflow as tf
    >>> x = normalize(tf.constant([[[0, 255, 124]]], tf.uint8))
    >>> [round(float(v), 3) for v in x[0, 0]]
    [-2.118, 2.429, 0.357]
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    else:
        image = tf.cast(image, tf.float32)
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (image - mean) / std


def denormalize(image, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> tf.Tensor:
    """Invert :func:`normalize` to a uint8 image (for visualisation).

    Example:

    >>> import tensorflow as tf
    >>> x = tf.constant([[[10, 200, 30]]], tf.uint8)
    >>> denormalize(normalize(x)).numpy().tolist()
    [[[10, 200, 30]]]
    """
    image = tf.cast(image, tf.float32) * tf.constant(std, tf.float32) + tf.constant(
        mean, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)


def _check_mean_std(mean, std):
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got mean={mean!r}, std={std!r}.")
    if any(float(s) <= 0 for s in std):
        raise ValueError(f"std must be positive, got {std!r}.")


def make_pipeline(
    data: SegmentationData,
    batch_size: int,
    training: bool,
    crop_size: Optional[Union[int, Tuple[int, int]]] = None,
    seed: int = 0,
    shuffle: Optional[bool] = None,
    *,
    scale_range: Optional[Tuple[float, float]] = (0.5, 2.0),
    flip: bool = True,
    rotation: Optional[float] = 15.0,
    color_jitter: Union[bool, ColorJitter, None] = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    eval_size: Optional[Union[int, Tuple[int, int]]] = None,
    pad_to_multiple: Optional[int] = None,
    shuffle_buffer: int = 1024,
    cache: bool = False,
    repeat: bool = False,
    drop_remainder: Optional[bool] = None,
) -> tf.data.Dataset:
    """Batched, prefetched ``(image float32 (B, H, W, 3), mask int32 (B, H, W))``.

    Args:
        data: a reader's :class:`SegmentationData`.
        batch_size: examples per batch.
        training: ``True`` shuffles and augments (random scale, crop, flip,
            rotation, colour jitter); ``False`` only resizes/pads as asked.
        crop_size: training crop ``(height, width)`` (or int); smaller images are
            padded (image 0, mask ignore label). Needed for fixed-size training
            batches when images differ in size or ``scale_range`` is set;
            without it, batches are padded to their largest example.
        seed: seeds shuffling and augmentation (deterministic given it).
        shuffle: defaults to ``training``.
        scale_range, flip, rotation: augmentation switches (see
            :func:`keras_sard.data.augment.augment_pair`); ``None``/``False``/0
            turns one off.
        color_jitter: ``True`` for the default :class:`ColorJitter`, an instance
            for other strengths, ``False``/``None`` for none.
        mean, std: per-channel normalisation on the ``[0, 1]`` scale.
        eval_size: evaluation only: resize every example to this size (image
            bilinear, mask nearest).
        pad_to_multiple: evaluation only: pad bottom/right (image 0, mask ignore
            label) so height and width are multiples of it (e.g. 32).
        shuffle_buffer: shuffle buffer size (capped at ``data.num_examples``).
        cache: cache decoded uint8 examples in memory after the first pass.
        repeat: repeat forever (use with ``steps_per_epoch``).
        drop_remainder: drop a last smaller batch; defaults to ``training``.

    Raises:
        ValueError: bad arguments, or ``drop_remainder`` with fewer examples than
            ``batch_size`` (which would give an empty dataset).

    Example:

    >>> from keras_sard.data.synthetic import make_synthetic
    >>> data = make_synthetic("nuclei", num_examples=4, image_size=(40, 40))
    >>> batches = make_pipeline(data, batch_size=2, training=True, crop_size=32, seed=1)
    >>> images, masks = next(iter(batches))
    >>> tuple(images.shape), images.dtype.name, tuple(masks.shape), masks.dtype.name
    ((2, 32, 32, 3), 'float32', (2, 32, 32), 'int32')
    """
    if not isinstance(data, SegmentationData):
        raise TypeError(f"data must be a SegmentationData (from a keras_sard.data reader), "
                        f"got {type(data).__name__}.")
    for name, value in (("batch_size", batch_size), ("shuffle_buffer", shuffle_buffer)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    _check_mean_std(mean, std)
    ignore = int(data.ignore_label)
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder
    if drop_remainder and not repeat and data.num_examples < batch_size:
        raise ValueError(
            f"Dataset '{data.name}' has {data.num_examples} examples, fewer than "
            f"batch_size={batch_size}, and drop_remainder=True would give no batch; "
            f"lower batch_size or pass drop_remainder=False.")
    if crop_size is not None:
        crop_size = as_size(crop_size, "crop_size")
    if not training and crop_size is not None:
        raise ValueError("crop_size is a training option; for evaluation use eval_size "
                         "or pad_to_multiple (or sliding_window_predict).")
    if training and (eval_size is not None or pad_to_multiple is not None):
        raise ValueError("eval_size and pad_to_multiple apply to evaluation (training=False) "
                         "only; use crop_size for training.")
    if eval_size is not None:
        eval_size = as_size(eval_size, "eval_size")
    if pad_to_multiple is not None and int(pad_to_multiple) < 1:
        raise ValueError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}.")
    if color_jitter is True:
        color_jitter = ColorJitter()
    elif color_jitter is False:
        color_jitter = None

    dataset = data.dataset
    if cache:
        dataset = dataset.cache()
    if shuffle:
        buffer = max(1, min(int(shuffle_buffer), max(data.num_examples, 1)))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    if training:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds))

        def _train_map(example, example_seed):
            image, mask = example
            image = tf.cast(image, tf.float32) / 255.0
            image, mask = augment_pair(
                image, mask, example_seed, crop_size=crop_size, scale_range=scale_range,
                flip=flip, rotation=rotation, color_jitter=color_jitter, ignore_label=ignore)
            return normalize(image, mean, std), mask

        dataset = dataset.map(_train_map, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    else:
        multiple = None if pad_to_multiple is None else int(pad_to_multiple)

        def _eval_map(image, mask):
            image = tf.cast(image, tf.float32) / 255.0
            if eval_size is not None:
                image, mask = resize_pair(image, mask, eval_size)
            if multiple is not None:
                shape = tf.shape(mask)
                height = (shape[0] + multiple - 1) // multiple * multiple
                width = (shape[1] + multiple - 1) // multiple * multiple
                image, mask = pad_pair(image, mask, height, width, ignore)
            return normalize(image, mean, std), mask

        dataset = dataset.map(_eval_map, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)

    # Examples of different sizes are padded to the largest in their batch
    # (image 0 after normalisation, mask ignore label); equal sizes are untouched.
    dataset = dataset.padded_batch(
        int(batch_size), padding_values=(0.0, ignore), drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
