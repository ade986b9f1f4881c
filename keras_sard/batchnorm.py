"""Fair BatchNorm statistics: re-estimate them before a model is scored.

Keras' `BatchNormalization` keeps a moving average of its batch statistics
with momentum 0.99: after ``n`` training batches a fraction ``0.99**n`` of
its moving mean and variance is still the initial (0, 1) — 38 % after 96
batches.  A model trained on a short schedule and scored in inference mode
is scored with half-initial statistics, which can move its mIoU by points and
reverse the ranking of methods compared on it.

`recalibrate_batchnorm` ("precise BN", Wu & Johnson 2021) replaces every
BatchNorm layer's moving statistics by the average of its batch statistics
over a pass of training images, the weights frozen.  `stale_fraction` and
`has_stale_batchnorm` say when a schedule is short enough to need it.

Example::

    import keras, numpy as np
    from keras_sard.batchnorm import has_stale_batchnorm, recalibrate_batchnorm

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization()])
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    has_stale_batchnorm(model, steps=100)  # True: 0.99**100 = 37 % still initial
    done = recalibrate_batchnorm(model, images, batch_size=8)
    done.examples, len(done.layers)        # (16, 1)
"""

from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import keras
import numpy as np

from keras_sard.data.batches import iterate_batches

__all__ = [
    "STALE_FRACTION_THRESHOLD",
    "Recalibration",
    "batchnorm_layers",
    "has_stale_batchnorm",
    "recalibrate_batchnorm",
    "stale_fraction",
]

STALE_FRACTION_THRESHOLD = 0.01
"""A schedule is short when more than this share of a BatchNorm layer's
moving statistics is still its initial value (`stale_fraction`).

The stale share f puts the moving mean and variance off by f times the gap
between the initial (0, 1) and the trained statistics; 1 % keeps that error
at 1 % of the gap.  With Keras' default momentum 0.99 it makes every schedule
under 459 training batches short (the library's CPU schedules: 96 batches,
38 % stale) and none of the paper's (tens of thousands of batches).
Re-estimating costs one inference-sized pass over the images given."""


class Recalibration(NamedTuple):
    """What `recalibrate_batchnorm` did: the re-estimated layers' names,
    and the batches and examples their statistics were averaged over."""

    layers: Tuple[str, ...]
    batches: int
    examples: int


def _walk(layer, prefix, seen):
    for child in layer._flatten_layers(include_self=False, recursive=False):
        if id(child) in seen:
            continue
        seen.add(id(child))
        path = f"{prefix}{child.name}"
        yield path, child
        yield from _walk(child, f"{path}/", seen)


def batchnorm_layers(model):
    """``{path: layer}`` of every trainable `keras.layers.BatchNormalization`
    of `model`, nested models included, in traversal order; a path names
    nested layers as `keras_sard.taps.find_layer` reads them (``"inner/bn"``).

    A frozen layer (``trainable=False``, also when a parent model is frozen)
    normalises with its moving statistics in training too, so what follows it
    was trained on those: it is left out, and left alone.
    """
    return {
        path: layer for path, layer in _walk(model, "", set())
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    }


def stale_fraction(momentum, steps):
    """The share of a moving average still holding its initial value after
    `steps` updates with `momentum`: ``momentum ** steps``.

    `steps` counts training-mode forward passes (batches), not optimizer
    updates: with gradient accumulation, each micro-batch updates the
    statistics.

    >>> round(stale_fraction(0.99, 96), 3)
    0.381
    >>> stale_fraction(0.9, 0)
    1.0
    """
    if not (isinstance(momentum, (int, float, np.number)) and 0 <= momentum <= 1):
        raise ValueError(f"`momentum` must be a number in [0, 1]; got {momentum!r}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"`steps` must be an integer >= 0; got {steps!r}.")
    return float(momentum) ** int(steps)


def has_stale_batchnorm(model, steps, threshold=STALE_FRACTION_THRESHOLD):
    """Whether any BatchNorm layer of `model` (see `batchnorm_layers`) still
    holds more than `threshold` of its initial statistics after `steps`
    training batches: the rule for recalibrating by default.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    >>> has_stale_batchnorm(model, 96), has_stale_batchnorm(model, 1000)
    (True, False)
    """
    if not (isinstance(threshold, (int, float, np.number)) and 0 <= threshold <= 1):
        raise ValueError(f"`threshold` must be a number in [0, 1]; got {threshold!r}.")
    return any(stale_fraction(layer.momentum, steps) > threshold
               for layer in batchnorm_layers(model).values())


def _check_layer(layer, path):
    if getattr(layer, "renorm", False):
        raise ValueError(
            f"BatchNormalization layer {path!r} uses batch renormalization "
            "(renorm=True), whose statistics recalibrate_batchnorm does not re-estimate; "
            "freeze the layer (trainable=False) to leave it as it is.")


def _training_call(layer, call, seen):
    """`call` in training mode, with the momentum that makes the moving
    statistics the running average of every call's batch statistics,
    weighted by batch size: ``moving ← moving·n/(n + b) + batch·b/(n + b)``
    (n rows seen before, b in this call; a shared layer averages each call)."""
    def batch_statistics_call(inputs, *args, **kwargs):
        size = int(keras.ops.shape(inputs)[0])
        before = seen[id(layer)]
        layer.momentum = before / (before + size) if before + size else 1.0
        kwargs["training"] = True
        outputs = call(inputs, *args, **kwargs)
        seen[id(layer)] = before + size
        return outputs

    return batch_statistics_call


def _batch_length(inputs):
    first = inputs
    while isinstance(first, (tuple, list)):
        first = first[0]
    return int(np.shape(first)[0])


def recalibrate_batchnorm(model, batches, num_batches=None, batch_size=None):
    """Re-estimate the moving statistics of `model`'s BatchNorm layers.

    Every trainable `BatchNormalization` layer at any depth (see
    `batchnorm_layers`) gets as moving mean and moving variance the average,
    over the batches given, of the batch mean and batch variance it computes
    in training mode — Keras' biased variance (divided by the number of
    values), the quantity its moving average tracks — weighted by batch size.
    The pass runs the model in inference mode with only those layers in
    training mode, so each sees inputs normalised by the batch statistics of
    the layers before it (as in training) while dropout and other
    training-only behaviour stay off.  A layer called several times per pass
    (shared) averages the statistics of every call, as its moving average
    does in training; a layer that does not run on these inputs keeps its
    statistics and is not listed in the result.  Nothing else changes: no
    weight, no optimizer, no other layer's state; each layer's momentum is
    restored, and on an error its moving statistics are too.

    Args:
        model: a Keras model (nested models included).
        batches: training images, preprocessed as in training: a NumPy array
            (give `batch_size`), a batched ``tf.data.Dataset`` or an iterable
            of batches, of images or ``(images, masks)`` pairs (see
            `keras_sard.data.batches`).
        num_batches: use the first `num_batches` batches; None: all (an
            endless dataset needs it).
        batch_size: examples per batch when `batches` is an array.  Batch
            statistics are noisier in small batches; use the training batch
            size.

    Returns:
        a `Recalibration`: the layers' paths, the number of batches and of
        examples used.

    Runs eagerly (one model call per batch); the momentum it sets per batch
    is read at call time.
    """
    found = batchnorm_layers(model)
    for path, layer in found.items():
        _check_layer(layer, path)
    layers = list(found.values())
    if not layers:
        return Recalibration((), 0, 0)
    from keras_sard.backend import steps

    saved = [(layer, layer.momentum, layer.__dict__.get("call")) for layer in layers]
    before = [
        (layer, keras.ops.copy(layer.moving_mean.value), keras.ops.copy(layer.moving_variance.value))
        for layer in layers if layer.built
    ]
    examples = count = 0
    seen = {id(layer): 0 for layer in layers}
    try:
        for layer in layers:
            object.__setattr__(layer, "call", _training_call(layer, layer.call, seen))
        for layer, mean, variance in before:  # the first batch replaces them (momentum 0),
            layer.moving_mean.assign(keras.ops.zeros_like(mean))  # 0 · NaN would not
            layer.moving_variance.assign(keras.ops.zeros_like(variance))
        for inputs, _ in iterate_batches(batches, batch_size, num_batches, "batches"):
            size = _batch_length(inputs)
            if size == 0:
                continue
            with steps.inference_scope():
                model(inputs, training=False)
            examples += size
            count += 1
        if count == 0:
            raise ValueError("`batches` yielded no example to estimate BatchNorm statistics on.")
        for layer, mean, variance in before:
            if not seen[id(layer)]:  # never ran: its old statistics stay
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)
        found = {path: layer for path, layer in found.items() if seen[id(layer)]}
        for path, layer in found.items():
            if not all(math.isfinite(v) for v in _extremes(layer)):
                raise FloatingPointError(
                    f"The re-estimated statistics of BatchNorm layer {path!r} are not "
                    "finite (non-finite images or weights); the old ones were restored.")
    except BaseException:
        for layer, mean, variance in before:
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        raise
    finally:
        for layer, momentum, own_call in saved:
            layer.momentum = momentum
            if own_call is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own_call)
    return Recalibration(tuple(found), count, examples)


def _extremes(layer):
    values = np.concatenate([
        keras.ops.convert_to_numpy(layer.moving_mean).ravel(),
        keras.ops.convert_to_numpy(layer.moving_variance).ravel(),
    ])
    return float(values.min()), float(values.max())
