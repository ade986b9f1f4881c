"""Cityscapes fine annotations (19 train classes), from the folders or from TFDS.

Folder source (default): download ``leftImg8bit_trainvaltest.zip`` and
``gtFine_trainvaltest.zip`` from https://www.cityscapes-dataset.com/downloads/
(registration needed) and unzip both into one folder::

    data_dir/
      leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The ``*_gtFine_labelIds.png`` maps hold the raw label ids 0..33; they are
mapped to the 19 evaluation classes ("trainIds") with the official table
of ``cityscapesscripts/helpers/labels.py`` (:data:`LABELS`); every other id
becomes the ignore label 255. (No ``createTrainIdLabelImgs`` step is needed.)
The test split's public annotations are empty (all ignore).

TFDS source (``source="tfds"``): ``cityscapes/semantic_segmentation`` needs a
manual download: put the same two zips in ``<tfds data_dir>/downloads/manual/``
and the reader prepares it (``prepare=True``, no network involved). Its
``segmentation_label`` is the same raw label-id map, so the same table is
applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import read_image, read_label_image
from keras_sard.data.files import PathLike, pair_files, require_dir
from keras_sard.data.labels import lookup_labels

# (name, labelId, trainId, colour) from cityscapesscripts/helpers/labels.py.
LABELS = (
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
)
TRAIN_ID_TABLE = np.array([train_id for _, _, train_id, _ in LABELS], np.int32)
"""``TRAIN_ID_TABLE[label_id]`` is the trainId (255 = ignore) of label ids 0..33."""
CLASS_NAMES = tuple(name for name, _, train_id, _ in sorted(
    (label for label in LABELS if label[2] != 255), key=lambda label: label[2]))
PALETTE = tuple(colour for _, _, train_id, colour in sorted(
    (label for label in LABELS if label[2] != 255), key=lambda label: label[2]))
SPLITS = ("train", "val", "test")
TFDS_NAME = "cityscapes/semantic_segmentation"
TFDS_SPLITS = {"train": "train", "val": "validation", "test": "test"}
MANUAL_ZIPS = ("leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip")


def label_ids_to_train_ids(label_ids: np.ndarray, path="<array>") -> np.ndarray:
    """Map Cityscapes label ids (0..33) to trainIds (0..18, 255 = ignore).

    Raises ``ValueError`` naming ``path`` for values above 33.

    Example:

    >>> import numpy as np
    >>> label_ids_to_train_ids(np.array([[0, 7, 26, 33, 9]])).tolist()
    [[255, 0, 13, 18, 255]]
    """
    return lookup_labels(label_ids, TRAIN_ID_TABLE, path)


def train_ids_tf(label_ids):
    """TensorFlow version of :func:`label_ids_to_train_ids` for a uint8/int tensor.

    Values above 33 fail a ``tf.debugging`` assertion.

    Example:

    >>> import tensorflow as tf
    >>> train_ids_tf(tf.constant([[0, 7, 24]], tf.uint8)).numpy().tolist()
    [[255, 0, 11]]
    """
    import tensorflow as tf

    label_ids = tf.cast(label_ids, tf.int32)
    tf.debugging.assert_less(
        tf.reduce_max(label_ids), len(TRAIN_ID_TABLE),
        message="Cityscapes label ids must lie in 0..33")
    return tf.gather(tf.constant(TRAIN_ID_TABLE), label_ids)


def list_cityscapes(data_dir: PathLike, split: str = "train"):
    """Sorted ``(leftImg8bit, gtFine_labelIds)`` pairs of a Cityscapes split.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "leftImg8bit" / "val" / "ulm").mkdir(parents=True)
    >>> (root / "gtFine" / "val" / "ulm").mkdir(parents=True)
    >>> (root / "leftImg8bit" / "val" / "ulm" / "ulm_000000_000019_leftImg8bit.png").touch()
    >>> (root / "gtFine" / "val" / "ulm" / "ulm_000000_000019_gtFine_labelIds.png").touch()
    >>> len(list_cityscapes(root, "val"))
    1
    """
    if split not in SPLITS:
        raise ValueError(f"Cityscapes split must be one of {SPLITS}, got {split!r}.")
    data_dir = require_dir(data_dir, "Cityscapes data",
                           "Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip "
                           "from https://www.cityscapes-dataset.com/downloads/.")
    images = require_dir(data_dir / "leftImg8bit" / split, "Cityscapes leftImg8bit",
                         "Unzip leftImg8bit_trainvaltest.zip into data_dir.")
    labels = require_dir(data_dir / "gtFine" / split, "Cityscapes gtFine",
                         "Unzip gtFine_trainvaltest.zip into data_dir.")
    return pair_files(images, labels, image_suffixes=("_leftImg8bit.png",),
                      mask_suffixes=("_gtFine_labelIds.png",), recursive=True)


def load_cityscapes(data_dir: Optional[PathLike], split: str = "train", *,
                    source: str = "folder", prepare: bool = True,
                    validate: bool = False) -> SegmentationData:
    """Cityscapes (19 classes, other label ids = ignore) as :class:`SegmentationData`.

    Args:
        data_dir: for ``source="folder"``, the folder holding ``leftImg8bit/``
            and ``gtFine/``; for ``source="tfds"``, the TFDS data directory
            (``None``: TFDS's default).
        split: ``"train"``, ``"val"`` or ``"test"``.
        source: ``"folder"`` or ``"tfds"``.
        prepare: TFDS only: build the TFDS dataset from the manual zips when it
            is not prepared yet.
        validate: folder only: check every image/label size pair now.

    Example:

    >>> data = load_cityscapes("/data/cityscapes", "val")    # doctest: +SKIP
    >>> data.num_classes, data.class_names[:2]               # doctest: +SKIP
    (19, ('road', 'sidewalk'))
    """
    if source == "tfds":
        return _load_tfds(data_dir, split, prepare)
    if source != "folder":
        raise ValueError(f"source must be 'folder' or 'tfds', got {source!r}.")
    pairs = list_cityscapes(data_dir, split)

    def load_example(image_path, mask_path):
        return read_image(image_path), label_ids_to_train_ids(
            read_label_image(mask_path), mask_path)

    return from_files(pairs, load_example, name="cityscapes", split=split,
                      class_names=CLASS_NAMES, palette=PALETTE, validate=validate)


def _load_tfds(data_dir, split, prepare) -> SegmentationData:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if split not in TFDS_SPLITS:
        raise ValueError(f"Cityscapes split must be one of {SPLITS}, got {split!r}.")
    builder = tfds.builder(TFDS_NAME, data_dir=None if data_dir is None else str(data_dir))
    if not builder.is_prepared():
        # builder.data_dir is <root>/cityscapes/semantic_segmentation/<version>.
        manual_dir = Path(builder.data_dir).parents[2] / "downloads" / "manual"
        missing = [name for name in MANUAL_ZIPS if not (manual_dir / name).is_file()]
        if missing or not prepare:
            raise FileNotFoundError(
                f"TFDS dataset '{TFDS_NAME}' is not prepared in "
                f"'{Path(builder.data_dir).parents[2]}' and TFDS cannot download it (manual "
                f"download). Download {list(MANUAL_ZIPS)} from "
                f"https://www.cityscapes-dataset.com/downloads/ into '{manual_dir}' and call "
                f"again with prepare=True (missing now: {missing or 'none'}), or use "
                f"source='folder' on the unzipped folders.")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    tfds_split = TFDS_SPLITS[split]
    num_examples = builder.info.splits[tfds_split].num_examples
    dataset = builder.as_dataset(split=tfds_split, shuffle_files=False)

    def _to_pair(example):
        image = tf.cast(example["image_left"], tf.uint8)
        return image, train_ids_tf(example["segmentation_label"][..., 0])

    dataset = dataset.map(_to_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return SegmentationData(dataset=dataset, num_classes=len(CLASS_NAMES),
                            class_names=CLASS_NAMES, num_examples=num_examples,
                            name="cityscapes", ignore_label=IGNORE_LABEL, split=split,
                            palette=PALETTE)
