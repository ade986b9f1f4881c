"""Checking a dataset's files before training on them.

`validate_dataset` (a reader's `SegmentationData`) and `validate_files`
(``(image, annotation)`` path pairs) check every pair from the files'
headers, without decoding pixels, so thousands of files take seconds:

- the image is there and its header can be read as an image;
- an image annotation (a mask: PNG, TIFF, ...) too, and has the image's
  height and width; another annotation (MoNuSeg's XML) is a non-empty
  readable file.

Every pair is checked; the first problem is raised as a
`keras_sard.data.errors.DataError` naming the file (``path: problem``),
with how many pairs have problems and which.  An empty folder or an image
without its mask fails earlier, when the reader lists the files
(`keras_sard.data.files.pair_files`).  Readers run the same check with
``validate=True``.  Pixel data that is corrupt behind a valid header is
found when the example is decoded, with the same kind of error.

>>> import os, tempfile, numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> image, mask = os.path.join(root, "a.jpg"), os.path.join(root, "a.png")
>>> Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(image)
>>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(mask)
>>> validate_files([(image, mask)])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
keras_sard.data.errors.BadDataError: .../a.png: mask is 4x6 (HxW) but its image '...' is 4x5; ...
"""

import os

from keras_sard.data.decode import image_size
from keras_sard.data.errors import BadDataError, DataError, MissingDataError
from keras_sard.data.files import IMAGE_SUFFIXES

__all__ = ["check_pair", "find_problems", "validate_dataset", "validate_files"]

_MAX_LISTED = 3


def _is_image(path):
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def check_pair(image_path, annotation_path):
    """Raise a `DataError` for the first problem of one ``(image,
    annotation)`` pair (see the module docstring); None when it is sound."""
    height, width = image_size(image_path)
    if _is_image(annotation_path):
        mask_height, mask_width = image_size(annotation_path)
        if (mask_height, mask_width) != (height, width):
            raise BadDataError(
                annotation_path, f"mask is {mask_height}x{mask_width} (HxW) but its image "
                f"'{image_path}' is {height}x{width}; they must match.")
        return
    if not os.path.isfile(annotation_path):
        raise MissingDataError(annotation_path, "annotation file not found.")
    if not os.access(annotation_path, os.R_OK):
        raise BadDataError(annotation_path, "annotation file cannot be read (permissions).")
    if os.path.getsize(annotation_path) == 0:
        raise BadDataError(annotation_path, "annotation file is empty.")


def find_problems(pairs):
    """The `DataError` of every unsound pair of `pairs`, in their order."""
    problems = []
    for image_path, annotation_path in pairs:
        try:
            check_pair(image_path, annotation_path)
        except DataError as error:
            problems.append(error)
    return problems


def validate_files(pairs):
    """Check every ``(image, annotation)`` pair; raise the first problem.

    Returns the number of pairs checked.  The error raised is the first
    problem's type (`MissingDataError` or `BadDataError`), naming its file;
    when several pairs have problems, its message says how many and names a
    few more.
    """
    pairs = [(os.fspath(image), os.fspath(annotation)) for image, annotation in pairs]
    problems = find_problems(pairs)
    if problems:
        first = problems[0]
        problem = first.problem
        if len(problems) > 1:
            others = ", ".join(error.path for error in problems[1:1 + _MAX_LISTED])
            more = " ..." if len(problems) > 1 + _MAX_LISTED else ""
            problem += (f" ({len(problems)} of {len(pairs)} pairs have problems; the next: "
                        f"{others}{more})")
        raise type(first)(first.path, problem)
    return len(pairs)


def validate_dataset(data):
    """Check every file of a reader's `SegmentationData` (its ``files``);
    returns the number of pairs checked (0 for generated data, which has
    no files).  Raises the first problem as `validate_files` does.

    >>> from keras_sard.data import load_dataset
    >>> validate_dataset(load_dataset("synthetic", num_examples=2))
    0
    """
    return validate_files(data.files) if data.files else 0
