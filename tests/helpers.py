"""Small test utilities shared by the suite."""

import keras
import numpy as np


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_maps_close(actual, expected, rtol=1e-5, scale=None):
    """rtol on each value, with an atol of 1e-6 of the map's own scale (so a
    value that should be ~0 is judged against the map, not against itself).
    `scale` overrides that scale where the map's natural unit is another's
    (C is judged against λ1: with one channel C is 0 everywhere)."""
    actual = to_numpy(actual).astype("float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape
    if scale is None:
        scale = np.abs(expected).max()
    atol = 1e-6 * max(scale, 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def tiny_segmenter(name, width, num_classes=2, size=16, channels=3, batch_norm=True):
    """A two-level functional segmenter: levels `{name}_level_1` (stride 1) and
    `{name}_level_2` (stride 2), logits at the input resolution."""
    layers = keras.layers
    inputs = keras.Input((size, size, channels), name=f"{name}_input")
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}_level_1")(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    y = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu", name=f"{name}_level_2")(x)
    y = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(y)
    logits = layers.Conv2D(num_classes, 1, name=f"{name}_logits")(layers.Concatenate()([x, y]))
    return keras.Model(inputs, logits, name=name)


def tiny_batch(rng, n=8, size=16, num_classes=2, ignore_fraction=0.05):
    """Images (n, size, size, 3) float32 and blocky labels with some ignore pixels."""
    x = rng.random((n, size, size, 3)).astype("float32")
    coarse = rng.integers(0, num_classes, size=(n, size // 4, size // 4))
    y = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("int32")
    x[..., 0] += 0.5 * y  # the label is learnable from the image
    y[rng.random(y.shape) < ignore_fraction] = 255
    return x, y


def gradients(fn, variables):
    """Gradients of the scalar `fn()` with respect to `variables` (keras.Variable),
    on whichever backend is active; None where a variable gets no gradient."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = fn()
        return tape.gradient(value, [v.value for v in variables])
    if backend == "torch":
        for v in variables:
            v.value.grad = None
        fn().backward()
        return [v.value.grad for v in variables]
    import jax

    def pure(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn()

    return jax.grad(pure)([v.value for v in variables])
