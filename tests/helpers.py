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
