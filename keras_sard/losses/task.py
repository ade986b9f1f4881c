"""The supervised segmentation loss: cross-entropy + Dice, skipping ignore pixels.

One output channel (binary masks) uses sigmoid BCE + Dice on the foreground,
as the paper; several channels use softmax cross-entropy + Dice averaged over
classes.  Pixels whose label is ``ignore_label`` (255) count nowhere.
"""

import keras
from keras import ops

from keras_sard.maps import prepare_labels, resize_logits
from keras_sard.validation import IGNORE_LABEL, check_ignore_label, check_number, check_weight

__all__ = ["SegmentationLoss", "prepare_labels", "resize_logits"]


def _pixel_weights(valid, sample_weight):
    weights = ops.cast(valid, "float32")
    if sample_weight is None:
        return weights
    sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    shape = tuple(sample_weight.shape)
    if len(shape) == 4 and shape[-1] == 1:
        sample_weight, shape = sample_weight[..., 0], shape[:3]
    expected = (tuple(valid.shape[:1]), tuple(valid.shape))
    if not any(
        len(shape) == len(e) and all(a is None or b is None or a == b for a, b in zip(shape, e))
        for e in expected
    ):
        # Anything else would broadcast against the label map silently.
        raise ValueError(
            "`sample_weight` must weigh each image (batch,) or each pixel "
            f"(batch, height, width[, 1]) of labels shaped {tuple(valid.shape)}; "
            f"got shape {tuple(sample_weight.shape)}."
        )
    if len(shape) == 1:
        sample_weight = ops.reshape(sample_weight, (-1, 1, 1))
    return weights * sample_weight


@keras.saving.register_keras_serializable(package="keras_sard")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy + Dice for logits, with an ignore label.

    Args:
        ignore_label: label value that counts nowhere (255).
        cross_entropy_weight, dice_weight: the mix (1 and 1).
        smooth: the Dice smoothing constant, added to numerator and
            denominator (1.0): an absent class with no predicted mass scores a
            Dice loss of 0, not 0/0.

    ``loss(labels, logits, sample_weight=None)``: labels (B, H, W) or
    (B, H, W, 1) integers; logits (B, h, w, K), resized bilinearly to the
    labels' size when they differ.  K = 1: sigmoid BCE + Dice on the
    foreground, labels in {0, 1}; K > 1: softmax cross-entropy + Dice averaged
    over the K classes.  The cross-entropy is the mean over valid pixels; the
    Dice sums over the whole batch.  `sample_weight`, per image (B,) or per
    pixel (B, H, W), scales each pixel's share in both.  Float32 throughout.

    Example::

        import numpy as np
        from keras_sard.losses import SegmentationLoss
        labels = np.array([[[0, 1], [2, 255]]])
        logits = np.random.rand(1, 2, 2, 3).astype("float32")
        float(SegmentationLoss()(labels, logits))
    """

    def __init__(
        self,
        ignore_label=IGNORE_LABEL,
        cross_entropy_weight=1.0,
        dice_weight=1.0,
        smooth=1.0,
        name="segmentation_loss",
        **kwargs,
    ):
        kwargs.pop("reduction", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, reduction="none", dtype="float32", **kwargs)
        self.ignore_label = check_ignore_label(ignore_label)
        self.cross_entropy_weight = check_weight(cross_entropy_weight, "cross_entropy_weight")
        self.dice_weight = check_weight(dice_weight, "dice_weight")
        self.smooth = check_number(smooth, "smooth", inclusive=False)

    def __call__(self, y_true, y_pred, sample_weight=None):
        labels = prepare_labels(y_true)
        logits = ops.cast(resize_logits(y_pred, tuple(labels.shape[1:3])), "float32")
        if self.ignore_label is None:
            valid = ops.ones_like(labels, dtype="bool")
        else:
            valid = ops.not_equal(labels, self.ignore_label)
        weights = _pixel_weights(valid, sample_weight)
        labels = ops.where(valid, labels, 0)  # ignore pixels masked before any one-hot
        if logits.shape[-1] == 1:
            cross_entropy, dice = self._binary(labels, logits[..., 0], weights)
        else:
            cross_entropy, dice = self._categorical(labels, logits, weights)
        return self.cross_entropy_weight * cross_entropy + self.dice_weight * dice

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def _dice(self, probabilities, targets, weights, axis):
        intersection = ops.sum(weights * probabilities * targets, axis=axis)
        total = ops.sum(weights * probabilities, axis=axis) + ops.sum(weights * targets, axis=axis)
        return 1.0 - (2.0 * intersection + self.smooth) / (total + self.smooth)

    def _binary(self, labels, logits, weights):
        targets = ops.cast(labels, "float32")
        # Stable BCE with logits: max(z, 0) − z·y + log(1 + exp(−|z|)).
        per_pixel = ops.relu(logits) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))
        cross_entropy = ops.sum(weights * per_pixel) / ops.maximum(ops.sum(weights), 1e-12)
        dice = self._dice(ops.sigmoid(logits), targets, weights, axis=(0, 1, 2))
        return cross_entropy, dice

    def _categorical(self, labels, logits, weights):
        num_classes = logits.shape[-1]
        log_probs = ops.log_softmax(logits, axis=-1)
        one_hot = ops.one_hot(labels, num_classes, dtype="float32")
        per_pixel = -ops.sum(one_hot * log_probs, axis=-1)
        cross_entropy = ops.sum(weights * per_pixel) / ops.maximum(ops.sum(weights), 1e-12)
        dice = self._dice(ops.exp(log_probs), one_hot, weights[..., None], axis=(0, 1, 2))
        return cross_entropy, ops.mean(dice)

    def get_config(self):
        return {
            "name": self.name,
            "ignore_label": self.ignore_label,
            "cross_entropy_weight": self.cross_entropy_weight,
            "dice_weight": self.dice_weight,
            "smooth": self.smooth,
        }
