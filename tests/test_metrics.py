"""mIoU and Boundary IoU against brute-force NumPy/SciPy references (spec §4)."""

import keras
import numpy as np
import pytest

from helpers import to_numpy
from keras_sard.metrics import BoundaryIoU, MeanIoU, band_width
from references import ref_band, ref_boundary_iou, ref_labels_from_logits, ref_mean_iou


def blobs(rng, shape, num_classes):
    """Piecewise-constant label maps (so boundaries exist) with some ignore pixels."""
    b, h, w = shape
    coarse = rng.integers(0, num_classes, size=(b, (h + 3) // 4, (w + 3) // 4))
    labels = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :h, :w]
    labels[rng.random(shape) < 0.05] = 255
    return labels


def noisy_logits(rng, labels, num_classes, flip=0.2):
    truth = np.where(labels == 255, 0, labels)
    channels = max(num_classes, 2)
    logits = rng.normal(size=labels.shape + (channels,)).astype("float32")
    logits += 3 * np.eye(channels)[truth] * (rng.random(labels.shape) > flip)[..., None]
    if num_classes == 1:
        logits = (logits[..., 1:] - logits[..., :1]).astype("float32")
    return logits


@pytest.mark.parametrize("num_classes, shape", [(3, (2, 17, 23)), (5, (3, 32, 32)), (1, (2, 25, 19))])
def test_accumulated_over_batches_match_reference(rng, num_classes, shape):
    k = max(num_classes, 2)
    miou, biou = MeanIoU(num_classes=k), BoundaryIoU(num_classes=k)
    labels_list, preds_list = [], []
    for _ in range(3):
        labels = blobs(rng, shape, k)
        logits = noisy_logits(rng, labels, num_classes)
        miou.update_state(labels, logits)
        biou.update_state(labels, logits)
        labels_list.append(labels)
        preds_list.append(ref_labels_from_logits(logits))
    np.testing.assert_allclose(float(to_numpy(miou.result())), ref_mean_iou(labels_list, preds_list, k), rtol=1e-5)
    np.testing.assert_allclose(
        float(to_numpy(biou.result())), ref_boundary_iou(labels_list, preds_list, k), rtol=1e-5
    )


def test_band_width_and_band(rng):
    assert band_width(512, 1024) == 23 and band_width(10, 10) == 1 and band_width(3, 3) == 1
    from keras_sard.metrics import boundary_band

    masks = rng.random((2, 40, 31, 2)) > 0.4
    for d in (1, 2, 5):
        band = to_numpy(boundary_band(keras.ops.cast(masks, "float32"), d))
        for b in range(2):
            for k in range(2):
                np.testing.assert_array_equal(band[b, :, :, k] > 0.5, ref_band(masks[b, :, :, k], d))


def test_classes_are_banded_separately():
    # Two classes touching: banding the label map as one image would miss the
    # boundary of class 1 against class 2 (both non-zero).
    labels = np.zeros((1, 20, 20), int)
    labels[:, :, 10:] = 1
    labels[:, :, 15:] = 2
    logits = np.eye(3)[labels].astype("float32")
    biou = BoundaryIoU(num_classes=3)
    biou.update_state(labels, logits)
    assert float(to_numpy(biou.result())) == pytest.approx(1.0)
    assert np.all(to_numpy(biou.union) > 0)


def test_ignore_pixels_are_excluded(rng):
    labels = blobs(rng, (2, 24, 24), 3)
    logits = noisy_logits(rng, labels, 3)
    other = logits.copy()
    other[labels == 255] = rng.normal(size=other[labels == 255].shape) * 10
    first, second = BoundaryIoU(3), BoundaryIoU(3)
    first.update_state(labels, logits)
    second.update_state(labels, other)
    assert float(to_numpy(first.result())) == float(to_numpy(second.result()))


def test_reset_and_resized_logits(rng):
    labels = blobs(rng, (2, 16, 16), 3)
    small = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    for metric in (MeanIoU(3), BoundaryIoU(3)):
        metric.update_state(labels, small)  # resized to 16×16
        metric.reset_state()
        assert float(to_numpy(metric.result())) == 0.0


def test_in_compile_and_evaluate(rng):
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 1)])
    model.compile(loss="sparse_categorical_crossentropy", metrics=[MeanIoU(3), BoundaryIoU(3)])
    x = rng.normal(size=(4, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, size=(4, 16, 16))
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    preds = ref_labels_from_logits(to_numpy(model.predict(x, verbose=0)))
    np.testing.assert_allclose(logs["miou"], ref_mean_iou([y], [preds], 3), rtol=1e-5)
    np.testing.assert_allclose(logs["biou"], ref_boundary_iou([y], [preds], 3), rtol=1e-5)


def test_config_round_trip():
    for metric in (MeanIoU(4, ignore_label=0, name="m"), BoundaryIoU(4, ignore_label=7, dilation_ratio=0.05)):
        clone = metric.__class__.from_config(metric.get_config())
        assert clone.get_config() == metric.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="`num_classes`"):
        MeanIoU(num_classes=1)
    with pytest.raises(ValueError, match="`num_classes`"):
        BoundaryIoU(num_classes=0)
    with pytest.raises(ValueError, match="`dilation_ratio`"):
        BoundaryIoU(3, dilation_ratio=-0.1)
    with pytest.raises(ValueError, match="`dilation_ratio`"):
        BoundaryIoU(3, dilation_ratio=float("inf"))
    for metric in (MeanIoU, BoundaryIoU):
        with pytest.raises(ValueError, match="`ignore_label`"):
            metric(3, ignore_label="255")
