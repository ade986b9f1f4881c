"""LoveDA (land-cover domain adaptation, urban and rural scenes) from its release folders.

Download ``Train.zip`` and ``Val.zip`` from Zenodo (https://zenodo.org/records/5706578;
see https://github.com/Junjue-Wang/LoveDA) and unzip into one folder::

    data_dir/
      Train/Urban/images_png/1366.png   Train/Urban/masks_png/1366.png
      Train/Rural/images_png/...        Train/Rural/masks_png/...
      Val/Urban/...                     Val/Rural/...
      Test/...                          # images only (masks withheld)

Images are 1024x1024 RGB PNGs; masks are single-channel PNGs with
0 = no-data, 1 background, 2 building, 3 road, 4 water, 5 barren, 6 forest,
7 agriculture. No-data becomes the ignore label and 1..7 become classes 0..6.
``domains`` picks Urban, Rural or both.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import read_image, read_label_image
from keras_sard.data.files import PathLike, pair_files, require_dir
from keras_sard.data.labels import lookup_labels

CLASS_NAMES = ("background", "building", "road", "water", "barren", "forest", "agriculture")
PALETTE = ((255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255), (159, 129, 183),
           (0, 255, 0), (255, 195, 128))
DOMAINS = ("Urban", "Rural")
SPLIT_FOLDERS = {"train": "Train", "val": "Val"}
# Raw mask value -> class id (0 = no-data -> ignore).
LABEL_TABLE = np.array([IGNORE_LABEL, 0, 1, 2, 3, 4, 5, 6], np.int32)


def _domains(domains):
    if isinstance(domains, str):
        domains = [domains]
    chosen = []
    for domain in domains:
        matches = [d for d in DOMAINS if d.lower() == str(domain).lower()]
        if not matches:
            raise ValueError(f"LoveDA domain must be one of {DOMAINS}, got {domain!r}.")
        chosen.append(matches[0])
    if not chosen:
        raise ValueError("domains is empty; pick 'urban', 'rural' or both.")
    return chosen


def list_loveda(data_dir: PathLike, split: str = "train",
                domains: Union[str, Sequence[str]] = DOMAINS):
    """Sorted ``(image, mask)`` pairs of a LoveDA split, domain by domain.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for sub in ("images_png", "masks_png"):
    ...     (root / "Val" / "Rural" / sub).mkdir(parents=True)
    ...     (root / "Val" / "Rural" / sub / "7.png").touch()
    >>> len(list_loveda(root, "val", "rural"))
    1
    """
    if split == "test":
        raise ValueError("LoveDA test masks are withheld (evaluation server); use split "
                         "'train' or 'val'.")
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"LoveDA split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}.")
    data_dir = require_dir(data_dir, "LoveDA data",
                           "Download Train.zip/Val.zip from https://zenodo.org/records/5706578.")
    pairs = []
    for domain in _domains(domains):
        folder = data_dir / SPLIT_FOLDERS[split] / domain
        pairs += pair_files(folder / "images_png", folder / "masks_png",
                            image_suffixes=(".png",), mask_suffixes=(".png",))
    return pairs


def load_loveda(data_dir: PathLike, split: str = "train", *,
                domains: Union[str, Sequence[str]] = DOMAINS,
                validate: bool = False) -> SegmentationData:
    """LoveDA as :class:`SegmentationData` (7 classes, no-data = ignore).

    Args:
        data_dir: the folder holding ``Train/`` and ``Val/``.
        split: ``"train"`` or ``"val"``.
        domains: ``"urban"``, ``"rural"`` or both (default).
        validate: check every image/mask size pair now.

    Example:

    >>> data = load_loveda("/data/LoveDA", "val", domains="rural")   # doctest: +SKIP
    >>> data.class_names[:3]                                         # doctest: +SKIP
    ('background', 'building', 'road')
    """
    pairs = list_loveda(data_dir, split, domains)

    def load_example(image_path, mask_path):
        return read_image(image_path), lookup_labels(read_label_image(mask_path),
                                                     LABEL_TABLE, mask_path)

    return from_files(pairs, load_example, name="loveda", split=split,
                      class_names=CLASS_NAMES, palette=PALETTE, validate=validate)
