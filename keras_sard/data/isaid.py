"""iSAID (instance segmentation in aerial images) semantic masks, devkit layout.

Images come from DOTA-v1.0 (https://captain-whu.github.io/DOTA/dataset.html), the
masks from iSAID (https://captain-whu.github.io/iSAID/dataset.html). Arranged as
the iSAID devkit (https://github.com/CAPTAIN-WHU/iSAID_Devkit) expects, before or
after its ``split.py`` cuts 800x800 patches, each image sits beside its masks::

    data_dir/                       # "iSAID" or "iSAID_patches"
      train/images/P0002.png                      # (or P0002_0_0_800_800.png)
      train/images/P0002_instance_color_RGB.png   # semantic colour mask (read)
      train/images/P0002_instance_id_RGB.png      # instance ids (not read)
      val/images/...
      test/images/...               # no masks: withheld for the server

``*_instance_color_RGB.png`` colours each pixel by class with the devkit's
palette (``labels.py``: ``color`` column, RGB): 15 object classes plus black
background. By default the background is class 0 and the classes are
1..15 (``num_classes=16``); ``background="ignore"`` maps background to the
ignore label and the objects to 0..14 (``num_classes=15``). A colour outside
the palette raises an error naming the file.
"""

from __future__ import annotations

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import read_array, read_image
from keras_sard.data.files import PathLike, pair_files, require_dir
from keras_sard.data.labels import colors_to_labels

MASK_SUFFIX = "_instance_color_RGB.png"
INSTANCE_SUFFIX = "_instance_id_RGB.png"

# (name, RGB colour) in iSAID devkit label id order (0 = unlabeled/background).
LABELS = (
    ("background", (0, 0, 0)),
    ("ship", (0, 0, 63)),
    ("storage_tank", (0, 63, 63)),
    ("baseball_diamond", (0, 63, 0)),
    ("tennis_court", (0, 63, 127)),
    ("basketball_court", (0, 63, 191)),
    ("ground_track_field", (0, 63, 255)),
    ("bridge", (0, 127, 63)),
    ("large_vehicle", (0, 127, 127)),
    ("small_vehicle", (0, 0, 127)),
    ("helicopter", (0, 0, 191)),
    ("swimming_pool", (0, 0, 255)),
    ("roundabout", (0, 191, 127)),
    ("soccer_ball_field", (0, 127, 191)),
    ("plane", (0, 127, 255)),
    ("harbor", (0, 100, 155)),
)
CLASS_NAMES = tuple(name for name, _ in LABELS)
PALETTE = tuple(colour for _, colour in LABELS)
SPLITS = ("train", "val")


def color_table(background: str = "class"):
    """``{colour: class id}`` for iSAID masks.

    Example:

    >>> color_table()[(0, 0, 63)], color_table("ignore")[(0, 0, 0)]
    (1, 255)
    """
    if background == "class":
        return {colour: index for index, colour in enumerate(PALETTE)}
    if background == "ignore":
        table = {colour: index - 1 for index, colour in enumerate(PALETTE)}
        table[PALETTE[0]] = IGNORE_LABEL
        return table
    raise ValueError(f"background must be 'class' or 'ignore', got {background!r}.")


def list_isaid(data_dir: PathLike, split: str = "train"):
    """Sorted ``(image_path, colour_mask_path)`` pairs of an iSAID split.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "val" / "images").mkdir(parents=True)
    >>> for name in ("P1.png", "P1_instance_color_RGB.png", "P1_instance_id_RGB.png"):
    ...     (root / "val" / "images" / name).touch()
    >>> [pathlib.Path(p).name for p in list_isaid(root, "val")[0]]
    ['P1.png', 'P1_instance_color_RGB.png']
    """
    if split == "test":
        raise ValueError("iSAID test masks are withheld (evaluation server); use split "
                         "'train' or 'val'.")
    if split not in SPLITS:
        raise ValueError(f"iSAID split must be one of {SPLITS}, got {split!r}.")
    data_dir = require_dir(data_dir, "iSAID data",
                           "Arrange it as the iSAID devkit README shows "
                           "(https://github.com/CAPTAIN-WHU/iSAID_Devkit).")
    folder = require_dir(data_dir / split / "images", f"iSAID {split} images",
                         f"Expected '{data_dir}/{split}/images/' holding <name>.png and "
                         f"<name>{MASK_SUFFIX}.")
    return pair_files(folder, folder, image_suffixes=(".png",), mask_suffixes=(MASK_SUFFIX,),
                      image_exclude=(MASK_SUFFIX, INSTANCE_SUFFIX))


def load_isaid(data_dir: PathLike, split: str = "train", *, background: str = "class",
               validate: bool = False) -> SegmentationData:
    """iSAID semantic segmentation as :class:`SegmentationData`.

    Args:
        data_dir: the devkit-layout folder (see the module docstring).
        split: ``"train"`` or ``"val"``.
        background: ``"class"`` (16 classes, background = 0) or ``"ignore"``
            (15 object classes, background = ignore label).
        validate: check every image/mask size pair now.

    Example:

    >>> data = load_isaid("/data/iSAID_patches", "val")      # doctest: +SKIP
    >>> data.num_classes, data.class_names[1]                # doctest: +SKIP
    (16, 'ship')
    """
    table = color_table(background)
    pairs = list_isaid(data_dir, split)

    def load_example(image_path, mask_path):
        return read_image(image_path), colors_to_labels(read_array(mask_path), table, mask_path)

    names, palette = CLASS_NAMES, PALETTE
    if background == "ignore":
        names, palette = CLASS_NAMES[1:], PALETTE[1:]
    return from_files(pairs, load_example, name="isaid", split=split, class_names=names,
                      palette=palette, validate=validate)
