"""Sliding-window inference for images larger than the training crop.

Backend-agnostic: windows are cut and the logits averaged with NumPy; the model
is called through ``model.predict_on_batch`` (or ``model(x)`` converted with
``keras.ops.convert_to_numpy``), so it works on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np

from keras_sard.data.base import as_size

IntPair = Union[int, Tuple[int, int]]


def window_starts(length: int, window: int, stride: int) -> List[int]:
    """Start offsets of windows of size ``window`` every ``stride`` covering ``length``.

    The last window is moved back to end exactly at ``length`` (so sizes not
    divisible by the stride are covered without padding); ``length`` must be
    at least ``window``.

    Example:

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    """
    if length < window:
        raise ValueError(f"length {length} is smaller than the window {window}.")
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def _predict(model, batch: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_on_batch"):
        output = model.predict_on_batch(batch)
    else:
        output = model(batch)
    if isinstance(output, (list, tuple)):
        raise ValueError(
            f"The model returned {len(output)} outputs; sliding_window_predict needs a "
            f"model with one output of logits (N, h, w, num_classes).")
    if isinstance(output, dict):
        raise ValueError("The model returned a dict; sliding_window_predict needs a "
                         "model with one output of logits (N, h, w, num_classes).")
    if not isinstance(output, np.ndarray):
        import keras

        output = keras.ops.convert_to_numpy(output)
    return np.asarray(output)


def sliding_window_predict(model, image, window: IntPair, stride: IntPair,
                           num_classes: int, *, batch_size: int = 8,
                           pad_value: float = 0.0) -> np.ndarray:
    """Per-pixel logits of ``model`` over a large image, from overlapping windows.

    Windows of ``window`` pixels are taken every ``stride`` pixels (the last
    one along each axis is moved back to the image border); an image smaller
    than the window is padded bottom/right with ``pad_value`` first. Each
    window's logits are added into place and divided by the number of windows
    covering each pixel, so overlaps are averaged.

    Args:
        model: a Keras model (or callable) mapping ``(n, wh, ww, C)`` float input
            to logits ``(n, wh, ww, num_classes)`` at full resolution.
        image: one image ``(H, W, C)`` or a batch ``(N, H, W, C)``, already
            normalised as the model expects (NumPy or any backend tensor).
        window: window size, int or ``(height, width)``.
        stride: step between windows, int or ``(height, width)``; at most
            ``window`` so windows cover every pixel.
        num_classes: expected number of logits per pixel.
        batch_size: windows per model call.
        pad_value: value of the padding for images smaller than the window.

    Returns:
        float32 logits ``(H, W, num_classes)`` (or ``(N, H, W, num_classes)``).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    >>> logits = sliding_window_predict(model, np.zeros((50, 37, 3), np.float32),
    ...                                 window=16, stride=12, num_classes=2)
    >>> logits.shape
    (50, 37, 2)
    """
    window_h, window_w = as_size(window, "window")
    stride_h, stride_w = as_size(stride, "stride")
    if stride_h > window_h or stride_w > window_w:
        raise ValueError(
            f"stride {(stride_h, stride_w)} is larger than window {(window_h, window_w)}; "
            f"some pixels would never be predicted.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if not isinstance(image, np.ndarray):
        import keras

        image = keras.ops.convert_to_numpy(image)
    image = np.asarray(image, np.float32)
    single = image.ndim == 3
    if single:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"image must be (H, W, C) or (N, H, W, C), got shape {image.shape}.")
    count, height, width, channels = image.shape

    padded_h, padded_w = max(height, window_h), max(width, window_w)
    if (padded_h, padded_w) != (height, width):
        image = np.pad(image, [(0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)],
                       constant_values=pad_value)
    boxes = [(top, left) for top in window_starts(padded_h, window_h, stride_h)
             for left in window_starts(padded_w, window_w, stride_w)]

    logits = np.zeros((count, padded_h, padded_w, num_classes), np.float32)
    hits = np.zeros((padded_h, padded_w, 1), np.float32)
    for top, left in boxes:
        hits[top:top + window_h, left:left + window_w] += 1.0
    for index in range(count):
        for first in range(0, len(boxes), int(batch_size)):
            chunk = boxes[first:first + int(batch_size)]
            crops = np.stack([image[index, t:t + window_h, l:l + window_w] for t, l in chunk])
            output = _predict(model, crops)
            expected = (len(chunk), window_h, window_w, num_classes)
            if output.shape != expected:
                raise ValueError(
                    f"The model returned shape {output.shape} for {len(chunk)} windows of "
                    f"{window_h}x{window_w}; expected {expected} (full-resolution logits, "
                    f"channels last, num_classes={num_classes}).")
            for (t, l), window_logits in zip(chunk, output):
                logits[index, t:t + window_h, l:l + window_w] += window_logits
    logits /= hits
    logits = logits[:, :height, :width]
    return logits[0] if single else logits
