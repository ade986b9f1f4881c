"""The task loss (CE/BCE + Dice with an ignore label) against NumPy references."""

import keras
import numpy as np
import pytest

from helpers import to_numpy
from keras_sard.losses import SegmentationLoss
from references import ref_resize_bilinear, ref_segmentation_loss


def random_labels(rng, shape, num_classes, ignore_fraction=0.2):
    labels = rng.integers(0, num_classes, size=shape)
    labels[rng.random(shape) < ignore_fraction] = 255
    return labels


@pytest.mark.parametrize("num_classes", [1, 2, 5])
@pytest.mark.parametrize("shape", [(2, 7, 9), (1, 16, 13)])
@pytest.mark.parametrize("ignore_fraction", [0.0, 0.3])
def test_matches_reference(rng, num_classes, shape, ignore_fraction):
    labels = random_labels(rng, shape, max(num_classes, 2), ignore_fraction)
    logits = (3 * rng.normal(size=shape + (num_classes,))).astype("float32")
    value = SegmentationLoss()(labels, logits)
    np.testing.assert_allclose(float(to_numpy(value)), ref_segmentation_loss(labels, logits), rtol=1e-5)


def test_weights_smooth_and_label_channel(rng):
    labels = random_labels(rng, (2, 6, 5), 3)
    logits = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    loss = SegmentationLoss(cross_entropy_weight=0.5, dice_weight=2.0, smooth=0.1)
    expected = ref_segmentation_loss(labels, logits, ce_weight=0.5, dice_weight=2.0, smooth=0.1)
    np.testing.assert_allclose(float(to_numpy(loss(labels[..., None], logits))), expected, rtol=1e-5)


def test_sample_weight_per_image_and_per_pixel(rng):
    labels = random_labels(rng, (3, 5, 6), 4)
    logits = rng.normal(size=(3, 5, 6, 4)).astype("float32")
    per_image = np.array([1.0, 0.0, 2.5], "float32")
    expected = ref_segmentation_loss(labels, logits, pixel_weights=per_image[:, None, None])
    np.testing.assert_allclose(float(to_numpy(SegmentationLoss()(labels, logits, per_image))), expected, rtol=1e-5)
    per_pixel = rng.random((3, 5, 6)).astype("float32")
    expected = ref_segmentation_loss(labels, logits, pixel_weights=per_pixel)
    np.testing.assert_allclose(float(to_numpy(SegmentationLoss()(labels, logits, per_pixel))), expected, rtol=1e-5)


def test_logits_are_resized_to_the_labels(rng):
    labels = random_labels(rng, (2, 12, 10), 3)
    logits = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    expected = ref_segmentation_loss(labels, ref_resize_bilinear(logits, (12, 10)))
    np.testing.assert_allclose(float(to_numpy(SegmentationLoss()(labels, logits))), expected, rtol=1e-5)


def test_ignore_pixels_do_not_matter(rng):
    labels = random_labels(rng, (2, 8, 8), 3, ignore_fraction=0.4)
    logits = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    changed = logits.copy()
    changed[labels == 255] = 1e4 * rng.normal(size=changed[labels == 255].shape)
    loss = SegmentationLoss()
    np.testing.assert_allclose(to_numpy(loss(labels, logits)), to_numpy(loss(labels, changed)), rtol=1e-6)


def test_all_ignored_is_zero_not_nan():
    labels = np.full((1, 4, 4), 255)
    for channels in (1, 3):
        value = float(to_numpy(SegmentationLoss()(labels, np.ones((1, 4, 4, channels), "float32"))))
        assert value == 0.0


def test_large_logits_stay_finite(rng):
    labels = random_labels(rng, (1, 6, 6), 3)
    logits = (1e4 * rng.normal(size=(1, 6, 6, 3))).astype("float32")
    assert np.isfinite(float(to_numpy(SegmentationLoss()(labels, logits))))
    binary = (1e4 * rng.normal(size=(1, 6, 6, 1))).astype("float32")
    assert np.isfinite(float(to_numpy(SegmentationLoss()(random_labels(rng, (1, 6, 6), 2), binary))))


def test_compiles_into_a_keras_model(rng):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 1)])
    model.compile(optimizer="sgd", loss=SegmentationLoss())
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    y = random_labels(rng, (4, 8, 8), 3)
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_config_round_trip():
    loss = SegmentationLoss(ignore_label=0, cross_entropy_weight=0.3, dice_weight=0.7, smooth=2.0)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, SegmentationLoss) and clone.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [({"dice_weight": -1}, "dice_weight"), ({"smooth": 0}, "smooth"), ({"ignore_label": "x"}, "ignore_label")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        SegmentationLoss(**kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="Labels must be"):
        SegmentationLoss()(np.zeros((2, 4, 4, 3), "int32"), np.zeros((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="Predictions must be logits"):
        SegmentationLoss()(np.zeros((2, 4, 4), "int32"), np.zeros((2, 4, 4), "float32"))


def test_bad_weights_and_sample_weight_shapes():
    for kwargs, name in (({"cross_entropy_weight": float("inf")}, "cross_entropy_weight"),
                         ({"smooth": float("nan")}, "smooth")):
        with pytest.raises(ValueError, match=f"`{name}`"):
            SegmentationLoss(**kwargs)
    labels, logits = np.zeros((2, 4, 3), "int32"), np.zeros((2, 4, 3, 2), "float32")
    # (2, 1) would broadcast along the width; (3,) is not one weight per image.
    for shape in ((2, 1), (3,), (2, 4, 4)):
        with pytest.raises(ValueError, match=r"`sample_weight`.*\(2, 4, 3\)"):
            SegmentationLoss()(labels, logits, np.ones(shape, "float32"))
