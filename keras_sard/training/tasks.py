"""What a model trains and is judged on: a dataset's training and validation
splits at one crop size (`Task`), from its folder (`load_task`) or, without
one, from synthetic data standing in for it (`stand_in_task`).

>>> task = load_task("synthetic", image_size=32, num_examples=8, kind="nuclei")
>>> task.train.num_examples, task.val.num_examples, task.image_size
(8, 2, (32, 32))
"""

import dataclasses
import os
from typing import Tuple

from keras_sard.data.base import SegmentationData
from keras_sard.data.pipeline import make_pipeline, unlabelled_count
from keras_sard.data.registry import DATASET_INFO, load_dataset, resolve_dataset
from keras_sard.data.replay import rebuilt_each_iteration
from keras_sard.data.unlabelled import check_channels, load_unlabelled
from keras_sard.validation import check_image_size, check_int

__all__ = ["SYNTHETIC_IMAGE_SIZE", "Task", "load_task", "stand_in_task", "unlabelled_data",
           "unlabelled_note"]

SYNTHETIC_IMAGE_SIZE = 64
"""The crop size of synthetic data when none is given."""


@dataclasses.dataclass(frozen=True)
class Task:
    """What a model trains and is judged on.

    Attributes:
        name: the dataset (``"monuseg"``, ``"synthetic"``, ...).
        train, val: `keras_sard.data.SegmentationData` of each split.
        image_size: ``(height, width)`` of the training crops, which is the
            models' input size.
        cache: keep decoded training examples in memory (generated data).
    """

    name: str
    train: SegmentationData
    val: SegmentationData
    image_size: Tuple[int, int]
    cache: bool = False

    @property
    def num_classes(self):
        return self.train.num_classes

    def train_batches(self, batch_size, seed=0, skip=0, *, unlabelled=None,
                      unlabelled_ratio=0.5):
        """Endless training batches of `image_size` crops, augmented as the
        paper: horizontal flip, ±15° rotation, colour jitter (no rescaling).

        One sequence fixed by `seed`, whichever backend or process iterates
        it, and however often (`keras_sard.data.replay`); `skip` starts it
        after that many batches (where a resumed run left off).

        `unlabelled` (a `SegmentationData`, see `unlabelled_data`): mixed
        batches, ``round(unlabelled_ratio * batch_size)`` of its images
        (all-ignore masks) after the labelled ones
        (`keras_sard.data.make_pipeline`); the labelled part is then the
        batches of ``batch_size`` minus that many labelled images."""
        def build():
            return make_pipeline(
                self.train, batch_size, training=True, crop_size=self.image_size, seed=seed,
                repeat=True, cache=self.cache, scale_range=None, unlabelled=unlabelled,
                unlabelled_ratio=unlabelled_ratio).skip(skip)

        return rebuilt_each_iteration(build)

    def sample_images(self, count=16):
        """`count` un-augmented training crops (NumPy): what an export is
        calibrated and checked on, without touching the validation split."""
        batches = make_pipeline(self.train, count, training=True, crop_size=self.image_size,
                                scale_range=None, flip=False, rotation=None, color_jitter=False,
                                drop_remainder=False, cache=self.cache)
        return next(iter(batches))[0].numpy()


def load_task(dataset, data_dir=None, image_size=None, *, num_examples=64, seed=0,
              **reader_kwargs):
    """The training and validation data of `dataset`, and its crop size.

    Args:
        dataset: a name of `keras_sard.data.DATASET_INFO` (``"synthetic"``,
            ``"monuseg"``, ``"cityscapes"``, ...; any spelling
            `keras_sard.data.resolve_dataset` accepts, ``"ade20k-150"``).
        data_dir: the dataset's folder (not used for ``"synthetic"``).
        image_size: training crop, int or ``(height, width)``, multiples of
            32; default: the dataset's usual crop (64 for synthetic data).
        num_examples: synthetic data only: training images (a quarter as
            many, at least 2, for validation).
        seed: synthetic data only: the generator's seed.
        **reader_kwargs: for the dataset's reader (``kind=``,
            ``num_classes=``, ``object_scale=`` for synthetic data;
            ``domains=`` for LoveDA ...).

    The validation split is ``"val"``, or ``"test"`` where the dataset has
    no validation split (MoNuSeg).

    Raises:
        FileNotFoundError: `data_dir` missing, with the download instructions.
        ValueError: an unknown dataset or a crop size that is not a multiple
            of 32.
    """
    key = resolve_dataset(dataset)
    info = DATASET_INFO[key]
    if key == "synthetic":
        image_size = check_image_size(
            SYNTHETIC_IMAGE_SIZE if image_size is None else image_size, allow_none=False)
        num_examples = check_int(num_examples, "num_examples")
        splits = {split: load_dataset("synthetic", split=split, image_size=image_size, seed=seed,
                                      num_examples=count, **reader_kwargs)
                  for split, count in (("train", num_examples), ("val", max(2, num_examples // 4)))}
        return Task(key, splits["train"], splits["val"], image_size, cache=True)
    image_size = check_image_size(
        info.crop_size if image_size is None else image_size, allow_none=False)
    train = load_dataset(key, data_dir, "train", **reader_kwargs)
    val = load_dataset(key, data_dir, info.validation_split, **reader_kwargs)
    return Task(key, train, val, image_size)


def stand_in_task(dataset, image_size=None, *, num_examples=64, seed=0, object_scale=1.0):
    """Synthetic data standing in for `dataset` when its folder is missing.

    The dataset's `stand_in` kind (`keras_sard.data.DATASET_INFO`): nuclei
    for the microscopy sets (MoNuSeg, CellBin), rock fragments for the rest;
    binary where the dataset is, 4 classes (fragment sizes) otherwise.
    `object_scale` multiplies the size of the synthetic objects
    (`keras_sard.data.synthetic`; ``OBJECT_SCALE_LARGE``, 4: objects
    spanning several cells at stride 4).  Returns ``(task, notice)``: the
    notice tells the user where to download the real data.

    >>> task, notice = stand_in_task("monuseg", image_size=32, num_examples=4)
    >>> task.train.name, task.num_classes, "Download:" in notice
    ('synthetic_nuclei', 2, True)
    """
    key = resolve_dataset(dataset)
    info = DATASET_INFO[key]
    num_classes = 2 if info.num_classes <= 2 else 4
    task = load_task("synthetic", image_size=image_size, num_examples=num_examples, seed=seed,
                     kind=info.stand_in, num_classes=num_classes, object_scale=object_scale)
    if key == "synthetic":
        return task, ""
    notice = (f"No data folder given for '{key}' (--data-dir). To run on the real data:\n"
              f"{info.describe()}\n"
              f"Running on synthetic {info.stand_in} ({num_classes} classes, "
              f"{task.image_size[0]}x{task.image_size[1]}) instead.")
    return task, notice


def unlabelled_data(unlabelled, task, batch_size=None, unlabelled_ratio=0.5):
    """`unlabelled` as the `SegmentationData` to mix into `task`'s training
    batches, checked before any training: None stays None; a folder is read
    with `keras_sard.data.load_unlabelled` (every file's header read, its
    channels compared with every labelled file's, the task's class names and
    ignore label); any reader's data (the teacher's own training images,
    say: `keras_sard.data.split_labelled`) is taken as it is, its labels
    dropped when batched, its channels checked against the labelled files'.
    With `batch_size`, a ratio leaving no labelled or no unlabelled image in
    a batch is refused too.

    Raises `keras_sard.data.errors.DataError` naming the folder or file (an
    empty folder, an unreadable file, other channels), ValueError for the
    ratio, TypeError for anything else.

    >>> task = load_task("synthetic", image_size=32, num_examples=4)
    >>> extra = load_task("synthetic", image_size=32, num_examples=8, seed=1).train
    >>> unlabelled_data(extra, task, batch_size=4).num_examples
    8
    """
    if unlabelled is None:
        return None
    if isinstance(unlabelled, (str, os.PathLike)):
        unlabelled = load_unlabelled(unlabelled, like=task.train)
    elif isinstance(unlabelled, SegmentationData):
        check_channels(task.train, [image for image, _ in unlabelled.files])
    else:
        raise TypeError(f"unlabelled must be a folder of images or a SegmentationData "
                        f"(keras_sard.data.load_unlabelled, drop_labels, split_labelled), "
                        f"got {type(unlabelled).__name__}.")
    if unlabelled.num_examples < 1:
        raise ValueError(f"The unlabelled data '{unlabelled.name}' holds no image.")
    if batch_size is not None:
        unlabelled_count(batch_size, unlabelled_ratio)
    return unlabelled


def unlabelled_note(unlabelled, batch_size, unlabelled_ratio=0.5):
    """One line for a log: how many unlabelled images go into each batch.

    >>> task = load_task("synthetic", image_size=32, num_examples=4)
    >>> unlabelled_note(task.val, 8, 0.25)
    'Unlabelled images: 2 (synthetic_fragments), 2 in each batch of 8 beside 6 labelled ones'
    """
    count = unlabelled_count(batch_size, unlabelled_ratio)
    return (f"Unlabelled images: {unlabelled.num_examples} ({unlabelled.name}), {count} in each "
            f"batch of {batch_size} beside {batch_size - count} labelled ones")
