"""Scoring a segmenter at full resolution: its logits for whole images
(`predict`, by sliding windows where image and model sizes differ) and its
mIoU and Boundary IoU over a whole split (`evaluate`).

Example::

    import keras
    from keras_sard.training import evaluate, load_task

    task = load_task("synthetic", image_size=32, num_examples=4)
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    evaluate(model, task.val)  # {'miou': ..., 'biou': ...}
"""

import keras
import numpy as np

from keras_sard.data.base import SegmentationData
from keras_sard.data.pipeline import make_pipeline
from keras_sard.data.sliding_window import sliding_window_predict
from keras_sard.metrics import BoundaryIoU, MeanIoU
from keras_sard.validation import SIZE_MULTIPLE, model_image_size, model_num_classes

__all__ = ["evaluate", "predict"]


def predict(model, images, stride_ratio=2 / 3):
    """Full-resolution logits (NumPy) of `model` for a batch of same-size images.

    Images of the model's input size go through it whole; others through
    `keras_sard.data.sliding_window_predict` with windows of the input size
    and a stride of `stride_ratio` of it; a model of any input size sees the
    images zero-padded to a multiple of 32, its logits cropped back.
    """

    def call(batch):
        return keras.ops.convert_to_numpy(model(batch, training=False))

    images = np.asarray(images, np.float32)
    height, width = images.shape[1:3]
    size = model_image_size(model) or (None, None)
    if None in size:
        pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
        padded = np.pad(images, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)])
        return call(padded)[:, :height, :width]
    if (height, width) == tuple(size):
        return call(images)
    stride = tuple(max(1, int(round(s * stride_ratio))) for s in size)
    return sliding_window_predict(call, images, window=size, stride=stride,
                                  num_classes=model_num_classes(model))


def evaluate(model, data, batch_size=8, stride_ratio=2 / 3):
    """mIoU and bIoU of `model` over the whole of `data`, at full resolution.

    Args:
        model: a segmenter (logits of ``data.num_classes`` channels).
        data: a `keras_sard.data.SegmentationData` (e.g. ``task.val``).
        batch_size: images per call where all images have one size (else 1).
        stride_ratio: sliding-window stride as a fraction of the window.

    The logits come from `predict` (sliding windows where images and model
    input differ in size).  The metrics are `keras_sard.metrics`' `MeanIoU`
    and `BoundaryIoU`, accumulated over every image.

    Returns:
        ``{"miou": float, "biou": float}``, fractions in [0, 1].
    """
    if not isinstance(data, SegmentationData):
        raise TypeError(f"`data` must be a keras_sard.data.SegmentationData; got "
                        f"{type(data).__name__}.")
    num_classes = data.num_classes
    if model_num_classes(model) != num_classes:
        raise ValueError(
            f"The model '{model.name}' predicts {model_num_classes(model)} classes; the data "
            f"('{data.name}') has {num_classes}.")
    if not 0 < stride_ratio <= 1:
        raise ValueError(f"`stride_ratio` must be in (0, 1]; got {stride_ratio!r}.")
    image_shape = tuple(data.dataset.element_spec[0].shape)
    same_size = None not in image_shape[:2]
    metrics = (MeanIoU(num_classes, ignore_label=data.ignore_label),
               BoundaryIoU(num_classes, ignore_label=data.ignore_label))
    batches = make_pipeline(data, int(batch_size) if same_size else 1, training=False)
    for images, masks in batches:
        logits = predict(model, images.numpy(), stride_ratio)
        for metric in metrics:
            metric.update_state(masks.numpy(), logits)
    return {"miou": float(metrics[0].result()), "biou": float(metrics[1].result())}
