"""Helpers on spatial maps shared by the losses, the metrics and the figures.

Labels are integer maps (batch, height, width) — a trailing channel of 1 is
accepted — and logits (batch, h, w, classes) at any resolution, one channel
meaning binary (foreground where the logit is > 0):

- `prepare_labels`: labels as (B, H, W) int32;
- `resize_logits`: logits bilinearly at the labels' size;
- `predicted_labels`: class ids from logits at a given size;
- `resize_like`: a feature map bilinearly at another map's size.

Example::

    import numpy as np
    from keras_sard.maps import predicted_labels, prepare_labels
    labels = prepare_labels(np.zeros((2, 8, 8, 1), "int32"))       # (2, 8, 8)
    classes = predicted_labels(np.random.rand(2, 4, 4, 3), (8, 8))  # (2, 8, 8) int32
"""

from keras import ops

__all__ = ["predicted_labels", "prepare_labels", "resize_like", "resize_logits"]


def prepare_labels(labels):
    """Integer label maps as (B, H, W) int32; a trailing channel of 1 is dropped."""
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if len(labels.shape) != 3:
        raise ValueError(
            "Labels must be integer class maps of shape (batch, height, width) or "
            f"(batch, height, width, 1); got shape {tuple(labels.shape)}."
        )
    return ops.cast(labels, "int32")


def resize_logits(logits, size):
    """Bilinearly resize (B, h, w, K) logits to `size` = (H, W) where they differ."""
    logits = ops.convert_to_tensor(logits)
    if len(logits.shape) != 4:
        raise ValueError(
            "Predictions must be logits of shape (batch, height, width, classes); "
            f"got shape {tuple(logits.shape)}."
        )
    if tuple(logits.shape[1:3]) == tuple(size) and None not in tuple(size):
        return logits
    return ops.image.resize(logits, size, interpolation="bilinear")


def predicted_labels(logits, size):
    """Class ids (B, H, W) int32 from logits: argmax, or logit > 0 for one channel."""
    logits = resize_logits(logits, size)
    if logits.shape[-1] == 1:
        return ops.cast(logits[..., 0] > 0, "int32")
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def resize_like(x, reference):
    """Bilinearly resize x's spatial size to reference's, where they differ."""
    size = tuple(reference.shape[1:3])
    if tuple(x.shape[1:3]) == size and None not in size:
        return x
    if None in size:
        size = tuple(ops.shape(reference)[1:3])
    return ops.image.resize(x, size, interpolation="bilinear")
