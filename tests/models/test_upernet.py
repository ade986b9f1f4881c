"""The UPerNet decoder: logits at the input resolution, its resize against a
NumPy reference, and its argument checks."""

import keras
import numpy as np
import pytest

from keras_sard.models.upernet import ResizeLike, upernet_decoder


def bilinear_reference(x, out_h, out_w):
    """Bilinear resize with half-pixel centres (align_corners=False), NumPy."""
    n, in_h, in_w, c = x.shape

    def axis(out_size, in_size):
        src = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
        src = np.clip(src, 0, in_size - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, in_size - 1)
        return lo, hi, src - lo

    h_lo, h_hi, h_w = axis(out_h, in_h)
    w_lo, w_hi, w_w = axis(out_w, in_w)
    top = x[:, h_lo][:, :, w_lo] * (1 - w_w)[None, None, :, None] + x[:, h_lo][:, :, w_hi] * w_w[None, None, :, None]
    bottom = x[:, h_hi][:, :, w_lo] * (1 - w_w)[None, None, :, None] + x[:, h_hi][:, :, w_hi] * w_w[None, None, :, None]
    return top * (1 - h_w)[None, :, None, None] + bottom * h_w[None, :, None, None]


@pytest.mark.parametrize("in_size, out_size", [((3, 2), (7, 6)), ((1, 1), (5, 3)), ((4, 4), (2, 3))])
def test_resize_like_matches_a_numpy_bilinear_reference(in_size, out_size):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, *in_size, 3)).astype("float32")
    reference = np.zeros((2, *out_size, 5), "float32")
    actual = keras.ops.convert_to_numpy(ResizeLike()([x, reference]))
    np.testing.assert_allclose(actual, bilinear_reference(x.astype("float64"), *out_size), rtol=1e-5, atol=1e-6)


def features_model(size, channels=(4, 6, 8, 10), pool_scales=(1, 2, 3, 6), num_classes=3):
    height, width = (None, None) if size is None else size
    inputs = [keras.Input((None if size is None else height // s, None if size is None else width // s, c))
              for s, c in zip((4, 8, 16, 32), channels)]
    logits = upernet_decoder(inputs, num_classes, channels=16, pool_scales=pool_scales, name="head")
    return keras.Model(inputs, logits)


def test_logits_at_the_input_resolution():
    # A 96x64 input: the last level is 3x2, smaller than PPM bin 6.
    rng = np.random.default_rng(0)
    model = features_model((96, 64))
    maps = [rng.random((2, 96 // s, 64 // s, c)).astype("float32") for s, c in zip((4, 8, 16, 32), (4, 6, 8, 10))]
    logits = keras.ops.convert_to_numpy(model(maps))
    assert logits.shape == (2, 96, 64, 3) and np.all(np.isfinite(logits))
    assert model.get_layer("head_ppm_6_pool").output.shape[1:3] == (6, 6)
    assert model.get_layer("head_ppm_6_resize").output.shape[1:3] == (3, 2)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="known size"):
        features_model(None)  # bins 2, 3, 6 need a fixed size
    inputs = [keras.Input((8, 8, 4))] * 3
    with pytest.raises(ValueError, match="4 feature levels"):
        upernet_decoder(inputs, 2)
    with pytest.raises(ValueError, match="pool_scales"):
        features_model((64, 64), pool_scales=(0,))
