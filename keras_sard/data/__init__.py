"""Datasets and the input pipeline of keras_sard (tf.data, for every Keras backend).

Readers return :class:`SegmentationData` whose ``dataset`` yields ``(image
uint8 (H, W, 3), mask int32 (H, W))`` with ignore label 255;
:func:`make_pipeline` turns it into normalised, augmented batches.  Names
load on first access: the registry (`keras_sard.data.registry`) can be read
without importing TensorFlow.

Example:

>>> from keras_sard.data import load_dataset, make_pipeline
>>> data = load_dataset("synthetic", kind="fragments", num_examples=8, image_size=(32, 32))
>>> batches = make_pipeline(data, batch_size=4, training=True, crop_size=32, seed=0)
>>> [tuple(t.shape) for t in next(iter(batches))]
[(4, 32, 32, 3), (4, 32, 32)]
"""

from keras_sard.lazy import lazy_exports

_EXPORTS = {
    "load_ade20k": "keras_sard.data.ade20k",
    "ColorJitter": "keras_sard.data.augment",
    "augment_pair": "keras_sard.data.augment",
    "IGNORE_LABEL": "keras_sard.data.base",
    "SegmentationData": "keras_sard.data.base",
    "load_cellbin": "keras_sard.data.cellbin",
    "label_ids_to_train_ids": "keras_sard.data.cityscapes",
    "load_cityscapes": "keras_sard.data.cityscapes",
    "load_folder": "keras_sard.data.folder",
    "load_rockfrag": "keras_sard.data.folder",
    "load_isaid": "keras_sard.data.isaid",
    "load_loveda": "keras_sard.data.loveda",
    "load_monuseg": "keras_sard.data.monuseg",
    "IMAGENET_MEAN": "keras_sard.data.pipeline",
    "IMAGENET_STD": "keras_sard.data.pipeline",
    "denormalize": "keras_sard.data.pipeline",
    "make_pipeline": "keras_sard.data.pipeline",
    "normalize": "keras_sard.data.pipeline",
    "DATASET_ALIASES": "keras_sard.data.registry",
    "DATASET_INFO": "keras_sard.data.registry",
    "DatasetInfo": "keras_sard.data.registry",
    "load_dataset": "keras_sard.data.registry",
    "resolve_dataset": "keras_sard.data.registry",
    "sliding_window_predict": "keras_sard.data.sliding_window",
    "make_synthetic": "keras_sard.data.synthetic",
    "synthetic_arrays": "keras_sard.data.synthetic",
    "BadDataError": "keras_sard.data.errors",
    "DataError": "keras_sard.data.errors",
    "MissingDataError": "keras_sard.data.errors",
    "validate_dataset": "keras_sard.data.validate",
    "validate_files": "keras_sard.data.validate",
    "drop_labels": "keras_sard.data.unlabelled",
    "load_unlabelled": "keras_sard.data.unlabelled",
    "split_labelled": "keras_sard.data.unlabelled",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
