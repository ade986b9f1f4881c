"""Sliding-window inference equals full-image inference for a 1x1-conv model."""

import keras
import numpy as np
import pytest

from keras_sard.data.sliding_window import sliding_window_predict, window_starts


def _pointwise_model(num_classes=3):
    model = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2D(num_classes, 1)])
    return model


def test_window_starts_cover_the_axis():
    assert window_starts(16, 16, 4) == [0]
    assert window_starts(37, 16, 12) == [0, 12, 21]
    for length in range(16, 60):
        starts = window_starts(length, 16, 12)
        covered = np.zeros(length, bool)
        for start in starts:
            covered[start:start + 16] = True
        assert covered.all() and starts[-1] + 16 == length


def test_matches_full_image_prediction_when_not_divisible_by_stride(rng):
    model = _pointwise_model()
    image = rng.normal(size=(37, 50, 3)).astype(np.float32)
    expected = model.predict_on_batch(image[None])[0]
    logits = sliding_window_predict(model, image, window=16, stride=12, num_classes=3,
                                    batch_size=5)
    assert logits.shape == (37, 50, 3) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_rectangular_window_batch_input_and_small_image(rng):
    model = _pointwise_model(2)
    images = rng.normal(size=(2, 21, 19, 3)).astype(np.float32)
    expected = model.predict_on_batch(images)
    logits = sliding_window_predict(model, images, window=(8, 12), stride=(5, 7),
                                    num_classes=2)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    small = rng.normal(size=(10, 12, 3)).astype(np.float32)
    logits = sliding_window_predict(model, small, window=16, stride=8, num_classes=2)
    assert logits.shape == (10, 12, 2)
    np.testing.assert_allclose(logits, model.predict_on_batch(small[None])[0],
                               rtol=1e-5, atol=1e-5)


def test_overlaps_are_averaged():
    """A model whose output is its window-local row index: averaging is visible."""
    class RowIndex:
        def __call__(self, batch):
            n, h, w, _ = batch.shape
            rows = np.arange(h, dtype=np.float32)[None, :, None, None]
            return np.broadcast_to(rows, (n, h, w, 1)).copy()

    logits = sliding_window_predict(RowIndex(), np.zeros((6, 4, 3), np.float32),
                                    window=4, stride=2, num_classes=1)
    # Rows 0-1 seen by window 0 only; rows 2-3 by windows 0 and 1; rows 4-5 by window 1.
    np.testing.assert_allclose(logits[:, 0, 0], [0, 1, 1, 2, 2, 3])


def test_errors_are_clear():
    model = _pointwise_model()
    image = np.zeros((20, 20, 3), np.float32)
    with pytest.raises(ValueError, match="stride"):
        sliding_window_predict(model, image, window=8, stride=9, num_classes=3)
    with pytest.raises(ValueError, match="expected"):
        sliding_window_predict(model, image, window=8, stride=8, num_classes=4)
    strided = keras.Sequential([keras.Input((None, None, 3)),
                                keras.layers.Conv2D(3, 1, strides=2)])
    with pytest.raises(ValueError, match="full-resolution"):
        sliding_window_predict(strided, image, window=8, stride=8, num_classes=3)
    with pytest.raises(ValueError, match="image"):
        sliding_window_predict(model, np.zeros((20, 3)), window=8, stride=8, num_classes=3)
