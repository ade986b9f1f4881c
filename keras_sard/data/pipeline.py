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

import functools
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from keras_sard.data.augment import ColorJitter, augment_pair, pad_pair, resize_pair
from keras_sard.data.base import SegmentationData, as_size
from keras_sard.data.sliding_window import sliding_window_predict  # noqa: F401 (re-export)
from keras_sard.data.unlabelled import check_channels, drop_labels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet RGB images scaled to [0, 1]."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of ImageNet RGB images scaled to [0, 1]."""
UNLABELLED_SEED_OFFSET = 1_000_003
"""Added to ``seed`` for the unlabelled stream of a mixed pipeline (its own
shuffle and augmentation, independent of the labelled images')."""


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
    unlabelled: Optional[SegmentationData] = None,
    unlabelled_ratio: float = 0.5,
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
        unlabelled: training only: images without labels to mix into every
            batch (:func:`keras_sard.data.load_unlabelled`, or any reader's
            data, whose masks are dropped). See "Mixed batches" below.
        unlabelled_ratio: the unlabelled share of each batch, in (0, 1).

    Mixed batches: each batch holds ``n_u = floor(unlabelled_ratio *
    batch_size + 0.5)`` unlabelled images after ``batch_size - n_u`` labelled
    ones (both at least 1). The unlabelled images' masks are all
    ``data.ignore_label``, so the task loss, the metrics and the label-reading
    losses skip them while label-free losses (SARD, CWD, MGD) see them. Both
    parts get the same augmentation. The labelled part is exactly the
    batches of ``make_pipeline(data, batch_size - n_u, ...)`` with the same
    seed; the unlabelled images are shuffled and augmented from their own
    seeded stream, repeated as needed: an epoch is one pass over the
    labelled data. Where the two parts differ in size (no ``crop_size``) the
    smaller is padded (image 0, mask ignore). When both sets come from files,
    a few headers are read to check that both hold the same kind of image
    (grey or colour).

    Raises:
        ValueError: bad arguments, or ``drop_remainder`` with fewer examples than
            ``batch_size`` (which would give an empty dataset), or unlabelled
            images of another kind than the labelled ones.

    Example:

    >>> from keras_sard.data.synthetic import make_synthetic
    >>> data = make_synthetic("nuclei", num_examples=4, image_size=(40, 40))
    >>> batches = make_pipeline(data, batch_size=2, training=True, crop_size=32, seed=1)
    >>> images, masks = next(iter(batches))
    >>> tuple(images.shape), images.dtype.name, tuple(masks.shape), masks.dtype.name
    ((2, 32, 32, 3), 'float32', (2, 32, 32), 'int32')
    >>> mixed = make_pipeline(data, batch_size=4, training=True, crop_size=32, seed=1,
    ...                       unlabelled=make_synthetic("nuclei", 6, (40, 40), split="val"),
    ...                       unlabelled_ratio=0.5)
    >>> images, masks = next(iter(mixed))
    >>> tuple(images.shape), bool((masks[2:] == 255).numpy().all())
    ((4, 32, 32, 3), True)
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
    labelled_batch = int(batch_size)
    if unlabelled is not None:
        if not training:
            raise ValueError("unlabelled images are mixed into training batches only "
                             "(training=True).")
        if not isinstance(unlabelled, SegmentationData):
            raise TypeError(f"unlabelled must be a SegmentationData (load_unlabelled(folder) "
                            f"or a reader's data), got {type(unlabelled).__name__}.")
        if unlabelled.num_examples < 1:
            raise ValueError(f"The unlabelled data '{unlabelled.name}' holds no image.")
        labelled_batch -= unlabelled_count(batch_size, unlabelled_ratio)
        check_channels(data, [image for image, _ in unlabelled.files])
    if drop_remainder and not repeat and data.num_examples < labelled_batch:
        raise ValueError(
            f"Dataset '{data.name}' has {data.num_examples} examples, fewer than "
            f"the {labelled_batch} labelled images of a batch (batch_size={batch_size}"
            f"{'' if unlabelled is None else f', unlabelled_ratio={unlabelled_ratio}'}), "
            f"and drop_remainder=True would give no batch; lower batch_size or pass "
            f"drop_remainder=False.")
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

    def examples(source: SegmentationData, stream_seed: int, repeat_source: bool):
        dataset = source.dataset
        if cache:
            dataset = dataset.cache()
        if shuffle:
            buffer = max(1, min(int(shuffle_buffer), max(source.num_examples, 1)))
            dataset = dataset.shuffle(buffer, seed=stream_seed, reshuffle_each_iteration=True)
        if repeat_source:
            dataset = dataset.repeat()
        return dataset

    def augmented(dataset, stream_seed: int):
        seeds = tf.data.Dataset.random(seed=stream_seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, seeds.batch(2)))

        def _train_map(example, example_seed):
            image, mask = example
            image = tf.cast(image, tf.float32) / 255.0
            image, mask = augment_pair(
                image, mask, example_seed, crop_size=crop_size, scale_range=scale_range,
                flip=flip, rotation=rotation, color_jitter=color_jitter, ignore_label=ignore)
            return normalize(image, mean, std), mask

        return dataset.map(_train_map, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)

    dataset = examples(data, seed, repeat)
    if training:
        dataset = augmented(dataset, seed)
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
        labelled_batch, padding_values=(0.0, ignore), drop_remainder=drop_remainder)
    if unlabelled is not None:
        unlabelled_seed = seed + UNLABELLED_SEED_OFFSET
        extra = augmented(examples(drop_labels(unlabelled, ignore), unlabelled_seed, True),
                          unlabelled_seed)
        extra = extra.padded_batch(int(batch_size) - labelled_batch,
                                   padding_values=(0.0, ignore), drop_remainder=True)
        dataset = tf.data.Dataset.zip((dataset, extra)).map(
            functools.partial(_join_batches, ignore=ignore),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _join_batches(first, second, ignore):
    """Two ``(images, masks)`` batches as one, the smaller padded to the larger
    (image 0, mask ``ignore``)."""
    (images_a, masks_a), (images_b, masks_b) = first, second
    height = tf.maximum(tf.shape(masks_a)[1], tf.shape(masks_b)[1])
    width = tf.maximum(tf.shape(masks_a)[2], tf.shape(masks_b)[2])

    def pad(images, masks):
        rows, cols = height - tf.shape(masks)[1], width - tf.shape(masks)[2]
        images = tf.pad(images, [[0, 0], [0, rows], [0, cols], [0, 0]])
        masks = tf.pad(masks, [[0, 0], [0, rows], [0, cols]], constant_values=ignore)
        return images, masks

    images_a, masks_a = pad(images_a, masks_a)
    images_b, masks_b = pad(images_b, masks_b)
    return tf.concat([images_a, images_b], 0), tf.concat([masks_a, masks_b], 0)


def unlabelled_count(batch_size: int, unlabelled_ratio: float) -> int:
    """Unlabelled images in a mixed batch: ``floor(ratio * batch_size + 0.5)``.

    ``ValueError`` naming both arguments unless the ratio lies in (0, 1) and
    leaves at least one labelled and one unlabelled image.

    Example:

    >>> unlabelled_count(8, 0.5), unlabelled_count(8, 0.25), unlabelled_count(5, 0.5)
    (4, 2, 3)
    """
    if isinstance(unlabelled_ratio, bool) or not isinstance(
            unlabelled_ratio, (int, float, np.floating)) or not 0.0 < unlabelled_ratio < 1.0:
        raise ValueError(f"unlabelled_ratio must be a number in (0, 1), got "
                         f"{unlabelled_ratio!r}.")
    count = int(math.floor(float(unlabelled_ratio) * int(batch_size) + 0.5))
    if not 1 <= count <= int(batch_size) - 1:
        raise ValueError(
            f"unlabelled_ratio={unlabelled_ratio} of batch_size={batch_size} gives {count} "
            f"unlabelled and {int(batch_size) - count} labelled images per batch; each needs "
            f"at least 1 (raise batch_size or move the ratio towards 0.5).")
    return count
