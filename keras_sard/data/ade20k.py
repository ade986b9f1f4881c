"""ADE20K SceneParsing (150 classes) from the ``ADEChallengeData2016`` folder.

Download http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip
(see http://sceneparsing.csail.mit.edu/) and unzip::

    data_dir/ADEChallengeData2016/        # or data_dir itself
      images/training/ADE_train_00000001.jpg
      images/validation/ADE_val_00000001.jpg
      annotations/training/ADE_train_00000001.png
      annotations/validation/ADE_val_00000001.png
      objectInfo150.csv

Annotations are single-channel PNGs: 0 = "other"/unlabelled becomes the
ignore label, 1..150 become classes 0..149 (names from ``objectInfo150.csv``,
first synonym). TFDS's ``scene_parse150`` is not used: it is built from the
2017 *instance* annotations (``annotations_instance``), not these 150-class
semantic maps.
"""

from __future__ import annotations

import numpy as np

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import read_image, read_label_image
from keras_sard.data.files import PathLike, find_child_dir, pair_files, require_dir
from keras_sard.data.labels import lookup_labels

CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea",
    "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe",
    "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
    "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
    "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel",
    "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike",
    "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
    "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
SPLIT_FOLDERS = {"train": "training", "val": "validation"}
# Raw annotation value -> class id (0 -> ignore, v -> v - 1).
LABEL_TABLE = np.concatenate([[IGNORE_LABEL], np.arange(150)]).astype(np.int32)


def list_ade20k(data_dir: PathLike, split: str = "train"):
    """Sorted ``(jpg, png)`` pairs of an ADEChallengeData2016 split.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()) / "ADEChallengeData2016"
    >>> (root / "images" / "validation").mkdir(parents=True)
    >>> (root / "annotations" / "validation").mkdir(parents=True)
    >>> (root / "images" / "validation" / "ADE_val_1.jpg").touch()
    >>> (root / "annotations" / "validation" / "ADE_val_1.png").touch()
    >>> len(list_ade20k(root.parent, "val"))
    1
    """
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"ADE20K split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}.")
    data_dir = require_dir(
        data_dir, "ADE20K data",
        "Download http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip.")
    root = find_child_dir(data_dir, ["ADEChallengeData2016"]) or data_dir
    folder = SPLIT_FOLDERS[split]
    return pair_files(root / "images" / folder, root / "annotations" / folder,
                      image_suffixes=(".jpg", ".jpeg", ".png"), mask_suffixes=(".png",))


def load_ade20k(data_dir: PathLike, split: str = "train", *,
                validate: bool = False) -> SegmentationData:
    """ADE20K (150 classes, 0 = ignore) as :class:`SegmentationData`.

    Args:
        data_dir: folder holding (or being) ``ADEChallengeData2016``.
        split: ``"train"`` (20,210 images) or ``"val"`` (2,000 images).
        validate: check every image/mask size pair now.

    Example:

    >>> data = load_ade20k("/data", "val")                   # doctest: +SKIP
    >>> data.num_classes, data.class_names[0]                # doctest: +SKIP
    (150, 'wall')
    """
    pairs = list_ade20k(data_dir, split)

    def load_example(image_path, mask_path):
        return read_image(image_path), lookup_labels(read_label_image(mask_path),
                                                     LABEL_TABLE, mask_path)

    return from_files(pairs, load_example, name="ade20k", split=split,
                      class_names=CLASS_NAMES, validate=validate)
