"""Segmentation metrics over logits: mIoU and Boundary IoU (spec §4).

Both take label maps (B, H, W) or (B, H, W, 1) and logits (B, h, w, K) —
K = 1 means binary (foreground where the logit is > 0) — resize logits to the
labels' size where they differ, skip the ignore label, and accumulate over the
whole evaluation set, so they go straight into ``compile(metrics=[...])``.

Example::

    import numpy as np
    from keras_sard.metrics import BoundaryIoU, MeanIoU
    labels = np.random.randint(0, 3, size=(2, 32, 32))
    logits = np.random.rand(2, 32, 32, 3).astype("float32")
    miou, biou = MeanIoU(num_classes=3), BoundaryIoU(num_classes=3)
    miou.update_state(labels, logits)
    biou.update_state(labels, logits)
    float(miou.result()), float(biou.result())
"""

import math

import keras
from keras import ops

from keras_sard.maps import predicted_labels, prepare_labels
from keras_sard.validation import IGNORE_LABEL, check_ignore_label, check_num_classes, check_number

__all__ = ["MeanIoU", "BoundaryIoU", "predicted_labels", "boundary_band", "band_width"]


def _one_hot_in_range(ids, num_classes):
    """One-hot (…, K) float32 where an id outside [0, K) (the ignore label) is
    in no class.  (Torch's one_hot raises on such ids; −1 gives zeros.)"""
    in_range = ops.logical_and(ids >= 0, ids < num_classes)
    return ops.one_hot(ops.where(in_range, ids, -1), num_classes, dtype="float32")


@keras.saving.register_keras_serializable(package="keras_sard")
class MeanIoU(keras.metrics.MeanIoU):
    """mIoU from logits: `keras.metrics.MeanIoU` with the ignore label removed.

    The confusion matrix accumulates over every batch seen; the mean runs over
    the classes that occur in labels or predictions (as mmsegmentation's
    NaN-aware mean).

    Args:
        num_classes: K (2 for binary, with one- or two-channel logits).
        ignore_label: label value left out (255).
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="miou", dtype=None):
        num_classes = check_num_classes(num_classes)
        ignore_label = check_ignore_label(ignore_label)
        super().__init__(
            num_classes=num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_label,
            sparse_y_true=True,
            sparse_y_pred=True,
        )
        self.ignore_label = ignore_label

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = prepare_labels(y_true)
        predictions = predicted_labels(y_pred, tuple(labels.shape[1:3]))
        return super().update_state(labels, predictions, sample_weight)

    def get_config(self):
        return {"num_classes": self.num_classes, "ignore_label": self.ignore_label, "name": self.name, "dtype": self.dtype}


def boundary_band(masks, distance):
    """``mask AND NOT erode(mask)``, eroding by a 3×3 square `distance` times.

    Args:
        masks: (B, H, W, K) float 0/1, one binary mask per channel.
        distance: d ≥ 1.  d erosions by a 3×3 square equal one erosion by a
            (2d+1)² square, done as two separable max-pools of the complement;
            outside the image counts as background (zero padding), so objects
            touching the border get a band there.
    """
    masks = ops.convert_to_tensor(masks, "float32")  # NumPy input works on every backend
    window = 2 * distance + 1
    outside = ops.pad(
        1.0 - masks, [(0, 0), (distance, distance), (distance, distance), (0, 0)], constant_values=1.0
    )
    grown = ops.max_pool(outside, (window, 1), strides=1, padding="valid")
    grown = ops.max_pool(grown, (1, window), strides=1, padding="valid")
    return masks * grown  # in the mask, and within d of its outside


def band_width(height, width, dilation_ratio=0.02):
    """d = max(1, round(ratio · image diagonal)), as Boundary IoU's reference code."""
    return max(1, int(round(dilation_ratio * math.sqrt(height**2 + width**2))))


@keras.saving.register_keras_serializable(package="keras_sard")
class BoundaryIoU(keras.metrics.Metric):
    """Boundary IoU (Cheng et al., 2021), per class, accumulated over the set.

    For each class k, the boundary band of ``labels == k`` and of
    ``predictions == k`` (see `boundary_band`; d from `band_width`) give
    ``|band_G ∩ band_P| / |band_G ∪ band_P|`` with intersections and unions
    summed over every image seen.  Ignore pixels are in no class in either
    map (so the prediction there cannot move a band) and are not counted.  The
    result is the
    mean over classes whose union is non-empty.  Classes are banded one by one
    (never the label map as one image, which would mix class ids).

    Args:
        num_classes: K (2 for binary).
        ignore_label: label value left out (255).
        dilation_ratio: band width as a fraction of the image diagonal (0.02).
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, dilation_ratio=0.02, name="biou",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = check_num_classes(num_classes)
        self.ignore_label = check_ignore_label(ignore_label)
        self.dilation_ratio = check_number(dilation_ratio, "dilation_ratio")
        self.intersection = self.add_variable((num_classes,), initializer="zeros", name="intersection")
        self.union = self.add_variable((num_classes,), initializer="zeros", name="union")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = prepare_labels(y_true)
        height, width = labels.shape[1], labels.shape[2]
        if height is None or width is None:
            raise ValueError(
                "BoundaryIoU needs label maps of known height and width (the band "
                f"width depends on them); got shape {tuple(labels.shape)}."
            )
        predictions = predicted_labels(y_pred, (height, width))
        if self.ignore_label is None:
            valid = ops.ones_like(labels, dtype="float32")
        else:
            valid = ops.cast(ops.not_equal(labels, self.ignore_label), "float32")
            # An ignore pixel is in no class in the prediction either, as in the
            # labels: what the model says there must not move the bands.
            predictions = ops.where(valid > 0, predictions, -1)
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(sample_weight.shape) == 1:
                sample_weight = ops.reshape(sample_weight, (-1, 1, 1))
            valid = valid * sample_weight
        distance = band_width(height, width, self.dilation_ratio)
        truth = boundary_band(_one_hot_in_range(labels, self.num_classes), distance)
        guess = boundary_band(_one_hot_in_range(predictions, self.num_classes), distance)
        valid = valid[..., None]
        self.intersection.assign_add(ops.sum(truth * guess * valid, axis=(0, 1, 2)))
        self.union.assign_add(ops.sum(ops.maximum(truth, guess) * valid, axis=(0, 1, 2)))

    def result(self):
        present = ops.cast(self.union > 0, "float32")
        per_class = self.intersection / ops.maximum(self.union, 1.0)
        return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.intersection.assign(ops.zeros((self.num_classes,), self.intersection.dtype))
        self.union.assign(ops.zeros((self.num_classes,), self.union.dtype))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "dilation_ratio": self.dilation_ratio,
            "name": self.name,
            "dtype": self.dtype,
        }
