"""Images without labels, for semi-supervised distillation.

SARD's structure map is computed from the teacher's features alone, so its
losses (and CWD, MGD) need no labels: images without masks can be distilled
on beside the labelled ones (supplement §7.2). Here such images become a
:class:`SegmentationData` whose masks are all ``ignore_label`` (255), so the
task loss, the metrics and the losses that read labels (KD's ignore mask,
DKD) skip every pixel of them, while every label-free loss sees them:

* :func:`load_unlabelled` reads a folder of images (PNG, JPEG, TIFF, BMP);
* :func:`drop_labels` turns any reader's data (the teacher's own training
  images, say) into unlabelled data;
* :func:`split_labelled` keeps the labels of the first examples only (few
  labels, the rest of the teacher's images unlabelled).

:func:`keras_sard.data.make_pipeline` mixes them into each training batch
at a stated ratio (``unlabelled=``, ``unlabelled_ratio=``).

Example:

>>> from keras_sard.data import make_synthetic
>>> data = drop_labels(make_synthetic("nuclei", num_examples=2, image_size=(16, 16)))
>>> image, mask = next(iter(data.dataset))
>>> tuple(image.shape), sorted(set(mask.numpy().ravel().tolist()))
((16, 16, 3), [255])
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import image_channels, read_array, read_image
from keras_sard.data.errors import BadDataError, MissingDataError
from keras_sard.data.files import IMAGE_SUFFIXES, PathLike, list_files, require_dir

__all__ = ["check_channels", "drop_labels", "load_unlabelled", "split_labelled"]

_SAMPLE = 16  # labelled files whose headers give the reference channels


def drop_labels(data: SegmentationData, ignore_label: Optional[int] = None,
                name: Optional[str] = None) -> SegmentationData:
    """``data``'s images with every mask pixel set to ``ignore_label``.

    Args:
        data: any reader's :class:`SegmentationData`.
        ignore_label: the mask value written (default ``data.ignore_label``).
        name: the new dataset's name (default ``data.name + "_unlabelled"``).

    The images, their order, ``files`` and the class metadata are kept; the
    reader still decodes its masks (so a broken mask file still fails,
    naming the file).

    Example:

    >>> from keras_sard.data import make_synthetic
    >>> data = drop_labels(make_synthetic("fragments", num_examples=3, image_size=(8, 8)))
    >>> data.name, data.num_examples, int(next(iter(data.dataset))[1].numpy().min())
    ('synthetic_fragments_unlabelled', 3, 255)
    """
    if not isinstance(data, SegmentationData):
        raise TypeError(f"data must be a SegmentationData (from a keras_sard.data reader), "
                        f"got {type(data).__name__}.")
    ignore = int(data.ignore_label if ignore_label is None else ignore_label)
    if 0 <= ignore < data.num_classes:
        raise ValueError(f"ignore_label={ignore} is a class id of '{data.name}' "
                         f"(num_classes={data.num_classes}).")
    dataset = data.dataset.map(
        lambda image, mask: (image, tf.fill(tf.shape(mask), tf.constant(ignore, mask.dtype))),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataclasses.replace(data, dataset=dataset, ignore_label=ignore,
                               name=name or f"{data.name}_unlabelled")


def split_labelled(data: SegmentationData, num_labelled: int):
    """``(labelled, unlabelled)``: the first ``num_labelled`` examples of
    ``data`` with their labels, and the rest with :func:`drop_labels`.

    The semi-supervised setting of a teacher trained on every image and a
    student that has the labels of a few. Order and ``files`` follow ``data``.

    Example:

    >>> from keras_sard.data import make_synthetic
    >>> labelled, rest = split_labelled(make_synthetic("nuclei", 10, (8, 8)), 3)
    >>> labelled.num_examples, rest.num_examples, rest.name
    (3, 7, 'synthetic_nuclei_unlabelled')
    """
    if not isinstance(data, SegmentationData):
        raise TypeError(f"data must be a SegmentationData (from a keras_sard.data reader), "
                        f"got {type(data).__name__}.")
    total = data.num_examples
    if isinstance(num_labelled, bool) or not isinstance(num_labelled, (int, np.integer)) or not (
            1 <= num_labelled < total):
        raise ValueError(f"num_labelled must be an integer in [1, {total}) for '{data.name}' "
                         f"({total} examples), got {num_labelled!r}.")
    count = int(num_labelled)
    files = data.files
    head = dataclasses.replace(data, dataset=data.dataset.take(count), num_examples=count,
                               files=files[:count])
    tail = dataclasses.replace(data, dataset=data.dataset.skip(count),
                               num_examples=total - count, files=files[count:])
    return head, drop_labels(tail)


def _is_grey(path) -> bool:
    """Whether a colour file holds a grey image (its channels all equal)."""
    array = read_array(path)
    return array.ndim == 2 or all(
        np.array_equal(array[..., 0], array[..., c]) for c in range(1, min(array.shape[-1], 3)))


def _spread(paths, limit):
    """At most ``limit`` of ``paths``, evenly spread (all for ``None``)."""
    paths = list(paths)
    if limit is not None and len(paths) > limit:
        paths = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, limit)]
    return paths


def check_channels(labelled: SegmentationData, paths: Sequence[PathLike], *,
                   limit: Optional[int] = _SAMPLE, where: str = "") -> None:
    """Raise `~keras_sard.data.errors.BadDataError` (a ``ValueError``) naming
    the file where an unlabelled image's channels differ from the labelled
    set's (grey vs colour, or page counts).

    Channels come from file headers (:func:`~keras_sard.data.decode.image_channels`)
    of up to ``limit`` of ``paths`` and of ``labelled.files``, evenly spread
    (every file for ``None``). A grey/colour mismatch is confirmed by decoding: a colour file
    whose channels are all equal counts as grey. Nothing is checked when
    ``labelled`` has no files (generated data): every image is read as RGB.

    Example:

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> from keras_sard.data import load_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "images" / "a.png")
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "a.png")
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "u.png")
    >>> check_channels(load_folder(root, num_classes=2), [root / "u.png"])
    """
    if not labelled.files or not paths:
        return
    reference = {path: image_channels(path)
                 for path in _spread((image for image, _ in labelled.files), limit)}
    expected = set(reference.values())
    grey_cache = {}

    def grey(path):
        if path not in grey_cache:
            grey_cache[path] = _is_grey(path)
        return grey_cache[path]

    for path in _spread(paths, limit):
        channels = image_channels(path)
        if channels in expected:
            continue
        # Grey stored as RGB (or the reverse) is the same image for read_image.
        if channels == 3 and 1 in expected and grey(path):
            continue
        if channels == 1 and 3 in expected and any(
                grey(p) for p, c in reference.items() if c == 3):
            continue
        first = next(p for p, c in reference.items() if c not in (channels,))
        describe = {1: "grey (1 channel)", 3: "colour (3 channels)"}
        raise BadDataError(
            path, f"unlabelled image{where} is "
            f"{describe.get(channels, f'{channels} channels')} but the labelled images "
            f"('{labelled.name}', e.g. '{first}') are "
            f"{' or '.join(describe.get(c, f'{c} channels') for c in sorted(expected))}: "
            "the student would learn from two kinds of image. Convert the unlabelled "
            "images, or pass images of the labelled kind.")


def load_unlabelled(
    folder: PathLike,
    like: Optional[SegmentationData] = None,
    *,
    recursive: bool = False,
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
    exclude_suffixes: Sequence[str] = (),
    name: str = "unlabelled",
    validate: bool = True,
) -> SegmentationData:
    """A folder of images as :class:`SegmentationData` with all-ignore masks.

    Args:
        folder: the images (sorted by path; ``.png .jpg .jpeg .tif .tiff
            .bmp`` by default).
        like: the labelled data they will be mixed with: its class names and
            ignore label are copied, and (with ``validate``) every image's
            channels are checked against its files'. Without it the data
            has one placeholder class ``"unlabelled"`` and ignore label 255.
        recursive: include sub-folders.
        suffixes, exclude_suffixes: file endings read and skipped (e.g.
            ``("_mask.png",)`` where masks share the folder).
        name: the dataset's name.
        validate: read every file's header now, so an unreadable file (or a
            channel mismatch with ``like``) fails here, naming it, and not
            in the middle of training. A file whose header reads but whose
            pixels do not still fails when read, naming it.

    Images are decoded as every reader's (:func:`~keras_sard.data.decode.read_image`:
    grey repeated to RGB, alpha dropped, 16-bit stretched per image).

    Raises:
        MissingDataError: (a ``FileNotFoundError``) no such folder, or no
            image in it, naming the folder.
        BadDataError: (a ``ValueError``) an unreadable file or channels
            that differ from ``like``'s, naming the file.

    Both are `keras_sard.data.errors.DataError`: ``str(error)`` reads
    ``<file or folder>: <what is wrong>``.

    Example:

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)).save(root / f"u{i}.jpg")
    >>> data = load_unlabelled(root)
    >>> data.num_examples, data.files[0][0].endswith("u0.jpg")
    (3, True)
    >>> image, mask = next(iter(data.dataset))
    >>> tuple(image.shape), int(mask.numpy().min()), int(mask.numpy().max())
    ((6, 8, 3), 255, 255)
    """
    if like is not None and not isinstance(like, SegmentationData):
        raise TypeError(f"like must be the labelled SegmentationData, got {type(like).__name__}.")
    folder = require_dir(folder, "Unlabelled image")
    paths = [str(p) for p in list_files(folder, suffixes, recursive=recursive,
                                        exclude_suffixes=exclude_suffixes)]
    if not paths:
        raise MissingDataError(
            folder, f"no image files ending in {list(suffixes)} in this unlabelled image "
            f"folder{' (searched recursively)' if recursive else ''}.")
    where = f" (in the unlabelled folder '{folder}')"
    if validate:
        for path in paths:
            image_channels(path)  # readable header, or an error naming the file
        if like is not None:
            check_channels(like, paths, limit=None, where=where)
    ignore = IGNORE_LABEL if like is None else int(like.ignore_label)
    class_names = ("unlabelled",) if like is None else like.class_names

    def load_example(image_path, _):
        image = read_image(image_path)
        return image, np.full(image.shape[:2], ignore, np.int32)

    return from_files(
        [(path, "") for path in paths], load_example, name=name, split="unlabelled",
        class_names=class_names, ignore_label=ignore,
        palette=None if like is None else like.palette)
