"""Datasets and the input pipeline of keras_sard (tf.data, for every Keras backend).

Readers return :class:`SegmentationData` whose ``dataset`` yields ``(image
uint8 (H, W, 3), mask int32 (H, W))`` with ignore label 255;
:func:`make_pipeline` turns it into normalised, augmented batches.

Example:

>>> from keras_sard.data import load_dataset, make_pipeline
>>> data = load_dataset("synthetic", kind="fragments", num_examples=8, image_size=(32, 32))
>>> batches = make_pipeline(data, batch_size=4, training=True, crop_size=32, seed=0)
>>> [tuple(t.shape) for t in next(iter(batches))]
[(4, 32, 32, 3), (4, 32, 32)]
"""

from keras_sard.data.ade20k import load_ade20k
from keras_sard.data.augment import ColorJitter, augment_pair
from keras_sard.data.base import IGNORE_LABEL, SegmentationData
from keras_sard.data.cellbin import load_cellbin
from keras_sard.data.cityscapes import label_ids_to_train_ids, load_cityscapes
from keras_sard.data.folder import load_folder, load_rockfrag
from keras_sard.data.isaid import load_isaid
from keras_sard.data.loveda import load_loveda
from keras_sard.data.monuseg import load_monuseg
from keras_sard.data.pipeline import (IMAGENET_MEAN, IMAGENET_STD, denormalize,
                                      make_pipeline, normalize)
from keras_sard.data.registry import DATASET_INFO, DatasetInfo, load_dataset
from keras_sard.data.sliding_window import sliding_window_predict
from keras_sard.data.synthetic import make_synthetic, synthetic_arrays
from keras_sard.data.unlabelled import drop_labels, load_unlabelled, split_labelled

__all__ = [
    "ColorJitter", "DATASET_INFO", "DatasetInfo", "IGNORE_LABEL", "IMAGENET_MEAN",
    "IMAGENET_STD", "SegmentationData", "augment_pair", "denormalize",
    "drop_labels", "label_ids_to_train_ids", "load_ade20k", "load_cellbin", "load_cityscapes",
    "load_dataset", "load_folder", "load_isaid", "load_loveda", "load_monuseg",
    "load_rockfrag", "load_unlabelled", "make_pipeline", "make_synthetic", "normalize",
    "sliding_window_predict", "split_labelled", "synthetic_arrays",
]
