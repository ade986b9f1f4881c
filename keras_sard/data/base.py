"""The reader contract: :class:`SegmentationData` and the tf.data builder for file pairs.

Every reader in :mod:`keras_sard.data` returns a :class:`SegmentationData` whose
``dataset`` yields ``(image, mask)``: ``image`` is ``uint8`` (H, W, 3) and ``mask``
is ``int32`` (H, W) holding class ids in ``[0, num_classes)`` or ``ignore_label``.
Normalisation to float happens in :mod:`keras_sard.data.pipeline`, never here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from keras_sard.data.errors import BadDataError, DataError
from keras_sard.data.validate import validate_files
from keras_sard.validation import IGNORE_LABEL  # the convention of every reader


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class SegmentationData:
    """A segmentation dataset and what is needed to train on it.

    Attributes:
        dataset: ``tf.data.Dataset`` of ``(image uint8 (H, W, 3), mask int32 (H, W))``.
        num_classes: number of classes (2 for binary datasets: background, foreground).
        class_names: one name per class id, ``len(class_names) == num_classes``.
        num_examples: number of ``(image, mask)`` pairs the dataset yields.
        name: dataset name, e.g. ``"monuseg"``.
        ignore_label: mask value to ignore (255).
        split: split the examples come from (``"train"``, ``"val"``, ...), if any.
        files: per example, in dataset order, the ``(image_path, annotation_path)``
            it was read from; empty for generated data.
        palette: optional RGB colour per class for visualisation.

    Example:

    >>> import tensorflow as tf
    >>> images = tf.zeros((2, 8, 8, 3), tf.uint8)
    >>> masks = tf.zeros((2, 8, 8), tf.int32)
    >>> data = SegmentationData(
    ...     dataset=tf.data.Dataset.from_tensor_slices((images, masks)),
    ...     num_classes=2, class_names=("background", "object"),
    ...     num_examples=2, name="toy")
    >>> data.num_classes, data.ignore_label
    (2, 255)
    """

    dataset: tf.data.Dataset
    num_classes: int
    class_names: Tuple[str, ...]
    num_examples: int
    name: str
    ignore_label: int = IGNORE_LABEL
    split: str = ""
    files: Tuple[Tuple[str, str], ...] = ()
    palette: Optional[Tuple[Tuple[int, int, int], ...]] = None

    def __post_init__(self):
        if not isinstance(self.dataset, tf.data.Dataset):
            raise TypeError(
                f"SegmentationData.dataset must be a tf.data.Dataset, got "
                f"{type(self.dataset).__name__}.")
        if int(self.num_classes) < 1:
            raise ValueError(
                f"SegmentationData.num_classes must be >= 1, got {self.num_classes}.")
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"SegmentationData '{self.name}': {len(self.class_names)} class_names "
                f"for num_classes={self.num_classes}; expected one name per class.")
        if 0 <= self.ignore_label < self.num_classes:
            raise ValueError(
                f"SegmentationData '{self.name}': ignore_label={self.ignore_label} is a "
                f"valid class id (num_classes={self.num_classes}); it must lie outside "
                f"[0, {self.num_classes}).")
        if self.num_examples < 0:
            raise ValueError(
                f"SegmentationData '{self.name}': num_examples={self.num_examples} < 0.")
        object.__setattr__(self, "files", tuple(tuple(f) for f in self.files))
        if self.files and len(self.files) != self.num_examples:
            raise ValueError(
                f"SegmentationData '{self.name}': {len(self.files)} files for "
                f"num_examples={self.num_examples}.")
        if self.palette is not None:
            palette = tuple(tuple(int(v) for v in c) for c in self.palette)
            if len(palette) != self.num_classes or any(len(c) != 3 for c in palette):
                raise ValueError(
                    f"SegmentationData '{self.name}': palette must hold one RGB triple "
                    f"per class ({self.num_classes}), got {len(palette)} entries.")
            object.__setattr__(self, "palette", palette)


def as_size(value, name: str) -> Tuple[int, int]:
    """``(height, width)`` from an int or a pair of positive ints; ``ValueError`` naming
    ``name`` otherwise.

    Example:

    >>> as_size(32, "crop_size"), as_size((16, 24), "window")
    ((32, 32), (16, 24))
    """
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or (height, width), got {value!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return height, width


def check_example(image: np.ndarray, mask: np.ndarray, image_path: str,
                  mask_path: str, num_classes: int,
                  ignore_label: int = IGNORE_LABEL) -> None:
    """Raise a `BadDataError` (a ``ValueError``) naming the file unless
    ``(image, mask)`` is well formed.

    Checks: image ``uint8`` (H, W, 3); mask ``int32`` (H, W) with the image's H, W;
    every mask value in ``[0, num_classes)`` or equal to ``ignore_label``.

    Example:

    >>> import numpy as np
    >>> check_example(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), np.int32),
    ...               "a.png", "a_mask.png", num_classes=2)
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise BadDataError(
            image_path, f"image decoded to {image.dtype} {image.shape}; expected uint8 "
            "(H, W, 3).")
    if mask.dtype != np.int32 or mask.ndim != 2:
        raise BadDataError(
            mask_path, f"mask decoded to {mask.dtype} {mask.shape}; expected int32 (H, W).")
    if image.shape[:2] != mask.shape:
        raise BadDataError(
            mask_path, f"mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image "
            f"'{image_path}' is {image.shape[0]}x{image.shape[1]}; they must match.")
    bad = (mask < 0) | ((mask >= num_classes) & (mask != ignore_label))
    if bad.any():
        values = np.unique(mask[bad])[:10].tolist()
        raise BadDataError(
            mask_path, f"mask holds class ids {values} outside [0, {num_classes}) that "
            f"are not the ignore label {ignore_label}.")


def dataset_from_files(
    pairs: Sequence[Tuple[str, str]],
    load_example: Callable[[str, str], Tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    ignore_label: int = IGNORE_LABEL,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` reading ``load_example(image_path, annotation_path)`` lazily.

    ``load_example`` is plain Python/NumPy (PIL, XML, ...) returning
    ``(uint8 (H, W, 3), int32 (H, W))``; each result goes through
    :func:`check_example`, so a corrupt file, a size mismatch or an unknown
    class id stops iteration with an error naming the file instead of yielding
    fewer or wrong examples: a `keras_sard.data.errors.DataError`, whose
    ``path: problem`` line the TensorFlow error carries
    (`keras_sard.data.errors.data_error_message` finds it). Order follows
    ``pairs`` (deterministic).

    Example:

    >>> import numpy as np
    >>> def load(image_path, mask_path):
    ...     return np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32)
    >>> ds = dataset_from_files([("a.png", "a_mask.png")], load, num_classes=2)
    >>> [tuple(x.shape) for x in next(iter(ds))]
    [(4, 4, 3), (4, 4)]
    """
    pairs = [(str(i), str(m)) for i, m in pairs]
    if not pairs:
        raise ValueError("dataset_from_files got no (image, annotation) pairs.")

    def _load_numpy(image_path, mask_path):
        image_path = image_path.decode("utf-8")
        mask_path = mask_path.decode("utf-8")
        try:
            image, mask = load_example(image_path, mask_path)
            check_example(image, mask, image_path, mask_path, num_classes, ignore_label)
        except DataError:
            raise
        except Exception as error:  # a reader's own check: name the file it names
            raise _naming_a_file(error, image_path, mask_path) from error
        return image, mask

    def _load(image_path, mask_path):
        image, mask = tf.numpy_function(
            _load_numpy, [image_path, mask_path], [tf.uint8, tf.int32],
            stateful=False)
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        return image, mask

    images, masks = zip(*pairs)
    dataset = tf.data.Dataset.from_tensor_slices((list(images), list(masks)))
    return dataset.map(_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _naming_a_file(error, image_path, mask_path):
    """`error` as a `BadDataError` on the file its message names first (the
    image when it names neither)."""
    message = f"{type(error).__name__}: {error}"
    found = [(message.find(path), path) for path in (image_path, mask_path) if path in message]
    if found:
        return BadDataError(min(found)[1], message)
    return BadDataError(image_path, f"reading it with '{mask_path}' failed: {message}")


def from_files(
    pairs: Sequence[Tuple[str, str]],
    load_example: Callable[[str, str], Tuple[np.ndarray, np.ndarray]],
    *,
    name: str,
    split: str,
    class_names: Sequence[str],
    ignore_label: int = IGNORE_LABEL,
    palette=None,
    validate: bool = False,
) -> SegmentationData:
    """:class:`SegmentationData` over file pairs read by ``load_example``.

    With ``validate=True`` every pair is checked now from the files' headers
    (`keras_sard.data.validate.validate_files`), so missing or unreadable
    files and size mismatches fail before training starts; otherwise they
    fail, naming the file, when the example is read.

    Example:

    >>> import numpy as np
    >>> def load(image_path, mask_path):
    ...     return np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32)
    >>> data = from_files([("a.png", "a.xml")], load, name="toy", split="train",
    ...                   class_names=("background", "object"))
    >>> data.num_examples, data.files[0]
    (1, ('a.png', 'a.xml'))
    """
    pairs = [(str(i), str(m)) for i, m in pairs]
    if validate:
        validate_files(pairs)
    class_names = tuple(class_names)
    dataset = dataset_from_files(pairs, load_example, len(class_names), ignore_label)
    return SegmentationData(
        dataset=dataset, num_classes=len(class_names), class_names=class_names,
        num_examples=len(pairs), name=name, ignore_label=ignore_label, split=split,
        files=tuple(pairs), palette=palette)
