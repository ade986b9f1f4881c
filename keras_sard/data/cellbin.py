"""CellBinDB (multimodal cell/nucleus segmentation) from its release folders.

Download ``CellBinDB.zip`` from Zenodo (https://zenodo.org/records/15370205; also
CNGB project CNP0006370, https://db.cngb.org/search/project/CNP0006370/) and
unzip. One folder per staining/source ("modality"), one sub-folder per sample::

    data_dir/                                  # or data_dir/CellBinDB/
      DAPI/<sample>/<sample>-img.tif           # image
      DAPI/<sample>/<sample>-mask.tif          # semantic mask (read by default)
      DAPI/<sample>/<sample>-instancemask.tif  # instance ids (mask="instance")
      ssDNA/...  HE/...  mIF/...  10×Genomics_DAPI/...  10×Genomics_HE/...

Masks become binary (0 background, 1 cell/nucleus: any non-zero value).
Fluorescence images (DAPI, ssDNA, mIF) are single-channel 8- or 16-bit TIFFs:
16-bit ones are stretched per image so that their 1st and 99th percentiles
map to 0 and 255 (``percentiles``), then repeated to 3 channels; 8-bit and
RGB (H&E) images are kept as they are.

CellBinDB ships no train/val split: ``split="all"`` (default) gives every
sample; ``"train"``/``"val"`` give a fixed split by a hash of the file name
(``val_fraction`` of the samples in val, identical on every machine).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from keras_sard.data.base import SegmentationData, from_files
from keras_sard.data.decode import DEFAULT_PERCENTILES, read_image, read_label_image
from keras_sard.data.errors import MissingDataError
from keras_sard.data.files import (PathLike, find_child_dir, pair_files, require_dir,
                                   split_subset)

CLASS_NAMES = ("background", "cell")
IMAGE_SUFFIX = "-img.tif"
MASK_SUFFIXES = {"semantic": "-mask.tif", "instance": "-instancemask.tif"}
MODALITIES = ("10×Genomics_DAPI", "10×Genomics_HE", "DAPI", "HE", "mIF", "ssDNA")


def _fold(name: str) -> str:
    return name.replace("×", "x").replace(" ", "").replace("_", "").lower()


def _modality_dirs(root, modalities):
    present = {child.name: child for child in sorted(root.iterdir()) if child.is_dir()}
    if modalities is None:
        return list(present.values())
    if isinstance(modalities, str):
        modalities = [modalities]
    by_fold = {_fold(name): path for name, path in present.items()}
    chosen = []
    for modality in modalities:
        if _fold(modality) not in by_fold:
            raise MissingDataError(
                root, f"no CellBinDB modality folder {modality!r} in it; present: "
                f"{sorted(present)}.")
        chosen.append(by_fold[_fold(modality)])
    return chosen


def list_cellbin(data_dir: PathLike, modalities: Optional[Sequence[str]] = None,
                 mask: str = "semantic"):
    """Sorted ``(image, mask)`` pairs of CellBinDB samples (see the module docstring).

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "DAPI" / "s1").mkdir(parents=True)
    >>> for name in ("s1-img.tif", "s1-mask.tif", "s1-instancemask.tif"):
    ...     (root / "DAPI" / "s1" / name).touch()
    >>> [pathlib.Path(p).name for p in list_cellbin(root)[0]]
    ['s1-img.tif', 's1-mask.tif']
    """
    if mask not in MASK_SUFFIXES:
        raise ValueError(f"mask must be one of {sorted(MASK_SUFFIXES)}, got {mask!r}.")
    data_dir = require_dir(data_dir, "CellBinDB data",
                           "Download CellBinDB.zip from https://zenodo.org/records/15370205.")
    root = find_child_dir(data_dir, ["CellBinDB"]) or data_dir
    folders = _modality_dirs(root, modalities)
    pairs = []
    for folder in folders:
        if not any(folder.rglob("*" + IMAGE_SUFFIX)):
            continue
        pairs += pair_files(folder, folder, image_suffixes=(IMAGE_SUFFIX,),
                            mask_suffixes=(MASK_SUFFIXES[mask],), recursive=True)
    if not pairs:
        raise MissingDataError(
            root, f"no CellBinDB samples ('<sample>/<sample>{IMAGE_SUFFIX}') in its modality "
            f"folders ({[f.name for f in folders]}).")
    return pairs


def load_cellbin(data_dir: PathLike, split: str = "all", *,
                 modalities: Optional[Sequence[str]] = None, mask: str = "semantic",
                 val_fraction: float = 0.2,
                 percentiles: Tuple[float, float] = DEFAULT_PERCENTILES,
                 validate: bool = False) -> SegmentationData:
    """CellBinDB as binary :class:`SegmentationData` (background, cell).

    Args:
        data_dir: the unzipped release (see the module docstring).
        split: ``"all"``, ``"train"`` or ``"val"`` (hash split, ``val_fraction``).
        modalities: folder names to read, e.g. ``["DAPI", "ssDNA"]`` (case and
            ``×``/``x`` insensitive); ``None`` reads all.
        mask: ``"semantic"`` (``-mask.tif``) or ``"instance"``
            (``-instancemask.tif``, binarised).
        percentiles: per-image stretch of deeper-than-8-bit images to uint8.
        validate: check every image/mask size pair now.

    Example:

    >>> data = load_cellbin("/data/CellBinDB", "train", modalities=["DAPI"])  # doctest: +SKIP
    >>> data.class_names                                                      # doctest: +SKIP
    ('background', 'cell')
    """
    pairs = split_subset(list_cellbin(data_dir, modalities, mask), split,
                         val_fraction=val_fraction)

    def load_example(image_path, mask_path):
        image = read_image(image_path, percentiles)
        return image, (read_label_image(mask_path) > 0).astype(np.int32)

    return from_files(pairs, load_example, name="cellbin", split=split,
                      class_names=CLASS_NAMES, validate=validate)
