"""Batches of model inputs from an array, a tf.data dataset or any iterable.

Functions that run a model over some images (`keras_sard.batchnorm`,
`keras_sard.diagnostics`) accept the images in any of the forms below and
read them through `iterate_batches`:

- a NumPy array, cut into batches of ``batch_size`` along its first axis;
- a batched ``tf.data.Dataset`` (e.g. from `keras_sard.data.make_pipeline`)
  or any iterable of batches, each batch either the model's input or a tuple
  ``(inputs, targets, ...)`` whose first element is the input and second the
  targets (masks).

Images must already be what the model eats (normalised as in training):
a `SegmentationData` (uint8 images) is refused with a hint.

Example:

>>> import numpy as np
>>> from keras_sard.data.batches import iterate_batches
>>> images = np.zeros((10, 8, 8, 3), "float32")
>>> [x.shape[0] for x, _ in iterate_batches(images, batch_size=4)]
[4, 4, 2]
>>> [x.shape[0] for x, _ in iterate_batches(images, batch_size=4, num_batches=2)]
[4, 4]
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["iterate_batches"]


def _positive_int(value, argument, allow_none):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{argument}` must be an integer >= 1; got {value!r}.")
    return int(value)


def _to_numpy(value):
    if hasattr(value, "numpy"):  # tf.Tensor, torch.Tensor on the CPU
        return value.numpy()
    return np.asarray(value)


def _split(batch, argument):
    """``(inputs, targets or None)`` of one element of a batched iterable."""
    if isinstance(batch, dict):
        raise TypeError(
            f"`{argument}` yields dicts; give batches of images or (images, masks) tuples.")
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError(f"`{argument}` yielded an empty tuple.")
        targets = batch[1] if len(batch) > 1 else None
        return batch[0], targets
    return batch, None


def iterate_batches(data, batch_size=None, num_batches=None, argument="data"):
    """Yield ``(inputs, targets)`` NumPy batches of `data`; targets may be None.

    Args:
        data: a NumPy array of inputs (batch first), a batched
            ``tf.data.Dataset``, or an iterable of batches (a list of arrays
            is a list of batches; see the module docstring).
        batch_size: examples per batch when `data` is an array (required
            then); must be None otherwise (the dataset's batches are used).
        num_batches: stop after this many batches; None reads all of `data`
            (an infinite ``tf.data.Dataset`` then is an error).
        argument: the name errors give `data`.

    Raises:
        ValueError / TypeError naming `argument` for unbatchable input, a
        batch size given with batched data or missing for an array, and an
        endless dataset without `num_batches`.
    """
    num_batches = _positive_int(num_batches, "num_batches", allow_none=True)
    type_name = type(data).__name__
    if type_name == "SegmentationData":
        raise TypeError(
            f"`{argument}` is a SegmentationData (unnormalised uint8 images); pass the "
            "images the model eats, e.g. keras_sard.data.make_pipeline(data, batch_size, "
            "training=False).")
    if isinstance(data, np.ndarray):
        return _array_batches(np.asarray(data), batch_size, num_batches, argument)
    if batch_size is not None:
        raise ValueError(
            f"`batch_size` applies to an array `{argument}`; {type_name} is already "
            "batched (pass batch_size=None).")
    if hasattr(data, "cardinality") and hasattr(data, "as_numpy_iterator"):
        import tensorflow as tf

        if int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY) and num_batches is None:
            raise ValueError(
                f"`{argument}` is an endless tf.data.Dataset (.repeat()); pass `num_batches`.")
        return _iterable_batches(data.as_numpy_iterator(), num_batches, argument)
    try:
        iterator = iter(data)
    except TypeError:
        raise TypeError(
            f"`{argument}` must be an array of images, a tf.data.Dataset or an iterable of "
            f"batches; got {type_name}.") from None
    return _iterable_batches(iterator, num_batches, argument)


def _array_batches(array, batch_size, num_batches, argument):
    if batch_size is None:
        raise ValueError(f"`{argument}` is an array: give `batch_size`.")
    batch_size = _positive_int(batch_size, "batch_size", allow_none=False)
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(
            f"`{argument}` must hold at least one example along its first axis; got "
            f"shape {array.shape}.")
    starts = range(0, len(array), batch_size)
    if num_batches is not None:
        starts = starts[:num_batches]
    return ((array[start:start + batch_size], None) for start in starts)


def _iterable_batches(iterator, num_batches, argument):
    if num_batches is not None:
        iterator = itertools.islice(iterator, num_batches)
    for batch in iterator:
        inputs, targets = _split(batch, argument)
        yield _to_numpy(inputs), None if targets is None else _to_numpy(targets)
