"""Any dataset kept as an ``images/`` + ``masks/`` folder pair (e.g. RockFrag).

Layouts read (the first that exists)::

    data_dir/images/a.jpg            data_dir/masks/a.png               # split=None
    data_dir/<split>/images/a.jpg    data_dir/<split>/masks/a.png
    data_dir/images/<split>/a.jpg    data_dir/masks/<split>/a.png

Images and masks pair by file stem (``a.jpg`` with ``a.png``). A mask holds,
per pixel, one of:

* class ids directly (default);
* raw values translated by ``value_map`` (e.g. ``{0: 0, 255: 1}`` for 0/255
  binary masks); values missing from the map are errors;
* colours translated by ``palette`` (``{(r, g, b): class_id}`` or a list of
  colours in class order); unknown colours are errors.

``binarize=True`` maps every non-zero value to 1 (for binary masks stored
as 0/1, 0/255, or instance ids), 255 included: a binary mask with an ignore
region needs ``value_map`` (e.g. ``{0: 0, 1: 1, 255: 255}``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import read_array, read_image, read_label_image
from keras_sard.data.errors import MissingDataError
from keras_sard.data.files import PathLike, pair_files, require_dir
from keras_sard.data.labels import colors_to_labels, lookup_labels, palette_dict

Palette = Union[Mapping[Tuple[int, int, int], int], Sequence[Tuple[int, int, int]]]


def _folders(data_dir: Path, split, image_dir, mask_dir):
    if split is None:
        candidates = [(data_dir / image_dir, data_dir / mask_dir)]
    else:
        candidates = [(data_dir / split / image_dir, data_dir / split / mask_dir),
                      (data_dir / image_dir / split, data_dir / mask_dir / split)]
    for images, masks in candidates:
        if images.is_dir():
            return images, masks
    tried = " or ".join(f"'{images}'" for images, _ in candidates)
    raise MissingDataError(data_dir, f"no image folder {tried} (split={split!r}).")


def _value_table(value_map: Mapping[int, int], ignore_label: int) -> np.ndarray:
    keys = [int(k) for k in value_map]
    if min(keys) < 0:
        raise ValueError(f"value_map keys must be >= 0, got {sorted(keys)}.")
    table = np.full(max(keys + [ignore_label]) + 1, -1, np.int64)
    table[ignore_label] = ignore_label
    for raw, cls in value_map.items():
        table[int(raw)] = int(cls)
    return table


def load_folder(
    data_dir: PathLike,
    split: Optional[str] = None,
    *,
    num_classes: int,
    class_names: Optional[Sequence[str]] = None,
    ignore_label: int = IGNORE_LABEL,
    image_dir: str = "images",
    mask_dir: str = "masks",
    value_map: Optional[Mapping[int, int]] = None,
    palette: Optional[Palette] = None,
    binarize: bool = False,
    recursive: bool = False,
    name: str = "folder",
    validate: bool = False,
) -> SegmentationData:
    """An ``images/`` + ``masks/`` dataset as :class:`SegmentationData`.

    Args:
        data_dir: root folder (see the module docstring for layouts).
        split: sub-folder name (``"train"``, ``"val"``...) or ``None``.
        num_classes: number of classes.
        class_names: defaults to ``("class_0", ...)``.
        ignore_label: mask value to ignore (kept as is).
        image_dir, mask_dir: folder names.
        value_map: ``{raw value: class id}`` for single-channel masks.
        palette: colour masks: ``{(r, g, b): class id}`` or colours in class order.
        binarize: every non-zero value -> 1, the ignore label's value too
            (0/255 masks are common; a value kept as ignore would silently
            drop the foreground); needs ``num_classes=2``.
        recursive: pair files in sub-folders too (by relative path).
        name: dataset name.
        validate: check every image/mask size pair now.

    Example:

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "images" / "a.jpg")
    >>> Image.fromarray(np.full((4, 4), 255, np.uint8)).save(root / "masks" / "a.png")
    >>> data = load_folder(root, num_classes=2, value_map={0: 0, 255: 1})
    >>> int(next(iter(data.dataset))[1][0, 0])
    1
    """
    if sum(x is not None and x is not False for x in (value_map, palette, binarize or None)) > 1:
        raise ValueError("Give at most one of value_map, palette and binarize.")
    if binarize and num_classes != 2:
        raise ValueError(f"binarize=True gives 2 classes; got num_classes={num_classes}.")
    class_names = tuple(class_names) if class_names is not None else tuple(
        f"class_{i}" for i in range(num_classes))
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class_names for num_classes={num_classes}.")
    colour_table = None
    if palette is not None:
        colour_table = (dict((tuple(int(v) for v in k), int(c)) for k, c in palette.items())
                        if isinstance(palette, Mapping) else palette_dict(palette))
    table = None if value_map is None else _value_table(value_map, ignore_label)

    data_dir = require_dir(data_dir, f"{name} data")
    images, masks = _folders(data_dir, split, image_dir, mask_dir)
    pairs = pair_files(images, masks, recursive=recursive,
                       mask_suffixes=(".png", ".tif", ".tiff", ".bmp"))

    def load_example(image_path, mask_path):
        image = read_image(image_path)
        if colour_table is not None:
            return image, colors_to_labels(read_array(mask_path), colour_table, mask_path)
        raw = read_label_image(mask_path)
        if table is not None:
            return image, lookup_labels(raw, table, mask_path)
        if binarize:
            return image, (raw > 0).astype(np.int32)
        return image, raw.astype(np.int32)

    if colour_table is None and table is None and not binarize and pairs:
        _warn_if_binary_foreground_is_ignore(pairs[0][1], ignore_label)
    palette_out = None
    if colour_table is not None and sorted(colour_table.values()) == list(range(num_classes)):
        palette_out = tuple(sorted(colour_table, key=colour_table.get))
    return from_files(pairs, load_example, name=name, split=split or "",
                      class_names=class_names, ignore_label=ignore_label,
                      palette=palette_out, validate=validate)


def _warn_if_binary_foreground_is_ignore(mask_path, ignore_label):
    """A first mask holding only 0 and the ignore label, read as class ids, is
    most likely a 0/255 binary mask whose foreground would be ignored."""
    values = set(np.unique(read_label_image(mask_path)).tolist())
    if ignore_label in values and values <= {0, ignore_label}:
        warnings.warn(
            f"Mask '{mask_path}' holds only 0 and {ignore_label}, and masks are read as class "
            f"ids, so {ignore_label} is the ignore label: if it marks the foreground of a binary "
            f"mask, every foreground pixel is ignored. Pass binarize=True (or value_map={{0: 0, "
            f"{ignore_label}: 1}}); pass value_map={{0: 0, 1: 1, {ignore_label}: {ignore_label}}} "
            "to confirm it is the ignore region and silence this warning.",
            stacklevel=3,
        )


def load_rockfrag(data_dir: PathLike, split: Optional[str] = None, **kwargs) -> SegmentationData:
    """A rock-fragment dataset in ``images/`` + ``masks/`` form, binary by default.

    Same as :func:`load_folder` with ``num_classes=2``, class names
    ``("background", "fragment")``, ``binarize=True`` (any non-zero mask value
    is a fragment) and ``name="rockfrag"``; every keyword can be overridden
    (e.g. ``binarize=False, value_map={...}``).

    Example:

    >>> data = load_rockfrag("/data/rockfrag", "train")      # doctest: +SKIP
    >>> data.class_names                                     # doctest: +SKIP
    ('background', 'fragment')
    """
    options = dict(num_classes=2, class_names=("background", "fragment"), binarize=True,
                   name="rockfrag")
    if "value_map" in kwargs or "palette" in kwargs:
        options["binarize"] = False
    options.update(kwargs)
    return load_folder(data_dir, split, **options)
