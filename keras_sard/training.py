"""The experiment workflow shared by the command line, the examples and the table runner.

data → teacher (trained here, or loaded from a ``.keras`` file) → student
distilled with a method → mIoU and bIoU → ``.keras`` files and exported
artefacts.  Each step is a function; `run_experiment` chains them.

The optimiser follows the paper (spec §5) unless a recipe says otherwise:
`Schedule` (from `keras_sard.schedules`, re-exported here) holds the
settings, and each recipe of `keras_sard.models.recipes` names the schedules
of its teacher and student.

Example::

    from keras_sard import training
    from keras_sard.models import get_recipe

    task = training.load_task("synthetic", image_size=32, num_examples=8)
    teacher, student, t_layers, s_layers = get_recipe("small").build(
        task.num_classes, task.image_size, tiny=True)
    schedule = training.Schedule(steps_per_epoch=2, batch_size=4, learning_rate=1e-3)
    training.train_segmenter(teacher, task, schedule, verbose=0)
    training.distill(teacher, student, task, "sard", schedule, t_layers, s_layers, verbose=0)
    print(training.evaluate(student, task.val))  # {'miou': ..., 'biou': ...}
"""

import dataclasses
import os
import time
import zipfile
from typing import Callable, Dict, Tuple

import keras
import numpy as np

from keras_sard.data import DATASET_INFO, SegmentationData, load_dataset, make_pipeline
from keras_sard.data.registry import resolve_dataset
from keras_sard.losses import SegmentationLoss
from keras_sard.metrics import BoundaryIoU, MeanIoU
from keras_sard.schedules import (PAPER_SCHEDULE, SYNTHETIC_SCHEDULE,
                                  SYNTHETIC_TEACHER_SCHEDULE, Schedule)
from keras_sard.validation import SIZE_MULTIPLE, check_image_size, check_int, model_image_size

__all__ = [
    "ExperimentResult",
    "PAPER_SCHEDULE",
    "SYNTHETIC_SCHEDULE",
    "SYNTHETIC_TEACHER_SCHEDULE",
    "Schedule",
    "Task",
    "distill",
    "evaluate",
    "export_path",
    "load_model",
    "load_task",
    "predict",
    "run_experiment",
    "save_model",
    "stand_in_task",
    "train_segmenter",
]

SYNTHETIC_IMAGE_SIZE = 64


# --------------------------------------------------------------------- data


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

    def train_batches(self, batch_size, seed=0):
        """Endless training batches of `image_size` crops, augmented as the
        paper: horizontal flip, ±15° rotation, colour jitter (no rescaling)."""
        return make_pipeline(self.train, batch_size, training=True, crop_size=self.image_size,
                             seed=seed, repeat=True, cache=self.cache, scale_range=None)


def load_task(dataset, data_dir=None, image_size=None, *, num_examples=64, seed=0,
              **reader_kwargs):
    """The training and validation data of `dataset`, and its crop size.

    Args:
        dataset: a name of `keras_sard.data.DATASET_INFO` (``"synthetic"``,
            ``"monuseg"``, ``"cityscapes"``, ...).
        data_dir: the dataset's folder (not used for ``"synthetic"``).
        image_size: training crop, int or ``(height, width)``, multiples of
            32; default: the dataset's usual crop (64 for synthetic data).
        num_examples: synthetic data only: training images (a quarter as
            many, at least 2, for validation).
        seed: synthetic data only: the generator's seed.
        **reader_kwargs: for the dataset's reader (``kind=``,
            ``num_classes=`` for synthetic data; ``domains=`` for LoveDA ...).

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


def stand_in_task(dataset, image_size=None, *, num_examples=64, seed=0):
    """Synthetic data standing in for `dataset` when its folder is missing.

    Nuclei for the microscopy sets (MoNuSeg, CellBin), rock fragments for
    the rest; binary where the dataset is, 4 classes (fragment sizes)
    otherwise.  Returns ``(task, notice)``: the notice tells the user where
    to download the real data.

    >>> task, notice = stand_in_task("monuseg", image_size=32, num_examples=4)
    >>> task.train.name, task.num_classes, "Download:" in notice
    ('synthetic_nuclei', 2, True)
    """
    key = resolve_dataset(dataset)
    info = DATASET_INFO[key]
    kind = info.stand_in
    num_classes = 2 if info.num_classes <= 2 else 4
    task = load_task("synthetic", image_size=image_size, num_examples=num_examples, seed=seed,
                     kind=kind, num_classes=num_classes)
    if key == "synthetic":
        return task, ""
    notice = (f"No data folder given for '{key}' (--data-dir). To run on the real data:\n"
              f"{info.describe()}\n"
              f"Running on synthetic {kind} ({num_classes} classes, "
              f"{task.image_size[0]}x{task.image_size[1]}) instead.")
    return task, notice


# ------------------------------------------------------------------ models


def save_model(model, path):
    """``model.save(path)`` into a ``.keras`` file (folders created); returns the path."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"Models are saved as '.keras' files; got the path '{path}'.")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    model.save(path)
    return path


def load_model(path):
    """A model saved with `save_model` (or any ``.keras`` file), uncompiled."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"Expected a '.keras' model file; got '{path}'.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at '{path}'.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"'{path}' is not a Keras model file (the zip archive model.save "
                         "writes).")
    import keras_sard.models  # noqa: F401  (registers the models' layers for loading)

    return keras.saving.load_model(path, compile=False)


def _input_size(model):
    return model_image_size(model) or (None, None)


def _num_outputs(model):
    return model.outputs[0].shape[-1]


def _check_model_fits(model, task, role):
    classes = _num_outputs(model)
    if classes != task.num_classes:
        raise ValueError(
            f"The {role} '{model.name}' predicts {classes} classes; the data "
            f"('{task.train.name}') has {task.num_classes}.")
    size = _input_size(model)
    if None not in size and tuple(size) != tuple(task.image_size):
        raise ValueError(
            f"The {role} '{model.name}' takes {size[0]}x{size[1]} images; the training crops "
            f"are {task.image_size[0]}x{task.image_size[1]} (image_size).")


# ---------------------------------------------------------------- training


def train_segmenter(model, task, schedule=PAPER_SCHEDULE, seed=0, verbose="auto", callbacks=None):
    """Train `model` on `task` with the supervised loss alone (cross-entropy +
    Dice, `keras_sard.losses.SegmentationLoss`): a teacher, or a student
    from scratch.  Returns the Keras ``History``."""
    _check_model_fits(model, task, "model")
    steps = schedule.steps(task.train.num_examples)
    model.compile(optimizer=schedule.optimizer(steps * schedule.epochs),
                  loss=SegmentationLoss(ignore_label=task.train.ignore_label))
    return model.fit(task.train_batches(schedule.batch_size, seed), epochs=schedule.epochs,
                     steps_per_epoch=steps, verbose=verbose, callbacks=callbacks,
                     shuffle=False)  # the pipeline shuffles


def distill(teacher, student, task, method="sard", schedule=PAPER_SCHEDULE, teacher_layers=None,
            student_layers=None, seed=0, verbose="auto", callbacks=None, **method_overrides):
    """Train `student` against the frozen `teacher` with a distillation method.

    Args:
        teacher, student: segmenters taking the same images.
        task: the data (`load_task`).
        method: a name of `keras_sard.methods.METHODS` (``"scratch"``,
            ``"kd"``, ``"cwd"``, ``"dkd"``, ``"mgd"``, ``"sard"``, ...).
        schedule: a `Schedule`.
        teacher_layers, student_layers: the levels to tap (feature methods);
            default ``keras_sard.models.level_names(model.name)``.
        seed: seeds the batches' order and augmentation.
        **method_overrides: the method's loss arguments (e.g. ``radius=3``
            for SARD).

    A method without distillation losses (``"scratch"``) trains the student
    on the task loss alone, without running the teacher.  The student is
    trained in place; returns the Keras ``History``.
    """
    from keras_sard.distiller import Distiller
    from keras_sard.methods import distillation_losses
    from keras_sard.models import level_names

    _check_model_fits(teacher, task, "teacher")
    _check_model_fits(student, task, "student")
    losses = distillation_losses(
        method,
        tuple(teacher_layers or level_names(teacher.name)),
        tuple(student_layers or level_names(student.name)),
        **method_overrides,
    )
    if not losses:
        return train_segmenter(student, task, schedule, seed=seed, verbose=verbose,
                               callbacks=callbacks)
    distiller = Distiller(teacher, student, losses,
                          task_loss=SegmentationLoss(ignore_label=task.train.ignore_label))
    steps = schedule.steps(task.train.num_examples)
    distiller.compile(optimizer=schedule.optimizer(steps * schedule.epochs))
    return distiller.fit(task.train_batches(schedule.batch_size, seed), epochs=schedule.epochs,
                         steps_per_epoch=steps, verbose=verbose, callbacks=callbacks,
                         shuffle=False)  # the pipeline shuffles


# -------------------------------------------------------------- evaluation


def predict(model, images, stride_ratio=2 / 3):
    """Full-resolution logits (NumPy) of `model` for a batch of same-size images.

    Images of the model's input size go through it whole; others through
    `keras_sard.data.sliding_window_predict` with windows of the input size
    and a stride of `stride_ratio` of it; a model of any input size sees the
    images zero-padded to a multiple of 32, its logits cropped back.
    """
    from keras_sard.data import sliding_window_predict

    def call(batch):
        return keras.ops.convert_to_numpy(model(batch, training=False))

    images = np.asarray(images, np.float32)
    height, width = images.shape[1:3]
    size = _input_size(model)
    if None in size:
        pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
        padded = np.pad(images, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)])
        return call(padded)[:, :height, :width]
    if (height, width) == tuple(size):
        return call(images)
    stride = tuple(max(1, int(round(s * stride_ratio))) for s in size)
    return sliding_window_predict(call, images, window=size, stride=stride,
                                  num_classes=_num_outputs(model))


def evaluate(model, data, batch_size=8, stride_ratio=2 / 3):
    """mIoU and bIoU of `model` over the whole of `data`, at full resolution.

    Args:
        model: a segmenter (logits of ``data.num_classes`` channels).
        data: a `keras_sard.data.SegmentationData` (e.g. ``task.val``).
        batch_size: images per call where all images have one size (else 1).
        stride_ratio: sliding-window stride as a fraction of the window.

    The logits come from `predict` (sliding windows where images and model
    input differ in size).  The metrics are `keras_sard.metrics`' `MeanIoU`
    and `BoundaryIoU`, accumulated over every image.

    Returns:
        ``{"miou": float, "biou": float}``, fractions in [0, 1].
    """
    if not isinstance(data, SegmentationData):
        raise TypeError(f"`data` must be a keras_sard.data.SegmentationData; got "
                        f"{type(data).__name__}.")
    num_classes = data.num_classes
    if _num_outputs(model) != num_classes:
        raise ValueError(
            f"The model '{model.name}' predicts {_num_outputs(model)} classes; the data "
            f"('{data.name}') has {num_classes}.")
    if not 0 < stride_ratio <= 1:
        raise ValueError(f"`stride_ratio` must be in (0, 1]; got {stride_ratio!r}.")
    image_shape = tuple(data.dataset.element_spec[0].shape)
    same_size = None not in image_shape[:2]
    metrics = (MeanIoU(num_classes, ignore_label=data.ignore_label),
               BoundaryIoU(num_classes, ignore_label=data.ignore_label))
    batches = make_pipeline(data, int(batch_size) if same_size else 1, training=False)
    for images, masks in batches:
        logits = predict(model, images.numpy(), stride_ratio)
        for metric in metrics:
            metric.update_state(masks.numpy(), logits)
    return {"miou": float(metrics[0].result()), "biou": float(metrics[1].result())}


# ------------------------------------------------------------------ export


_EXPORT_SUFFIXES = {
    "saved_model": "_saved_model",
    "tflite": ".tflite",
    "tflite_float16": "_float16.tflite",
    "tflite_dynamic_int8": "_dynamic_int8.tflite",
    "tflite_int8": "_int8.tflite",
    "onnx": ".onnx",
}


def export_path(stem, format):
    """Where `run_experiment` writes `format`: ``student.tflite``,
    ``student_int8.tflite``, ``student_saved_model`` (a folder) ...

    >>> export_path("out/student", "tflite_float16")
    'out/student_float16.tflite'
    """
    if format not in _EXPORT_SUFFIXES:
        raise ValueError(f"Unknown export format {format!r}; expected one of "
                         f"{list(_EXPORT_SUFFIXES)}.")
    return os.fspath(stem) + _EXPORT_SUFFIXES[format]


def _sample_images(task, count=16):
    """Validation-free calibration images: un-augmented training crops."""
    batches = make_pipeline(task.train, count, training=True, crop_size=task.image_size,
                            scale_range=None, flip=False, rotation=None, color_jitter=False,
                            drop_remainder=False, cache=task.cache)
    return next(iter(batches))[0].numpy()


def export(model, task, format, path):
    """`keras_sard.export.export_student` into `path`, calibrated (int8) and
    checked on training crops of `task`; returns its `ExportReport`."""
    from keras_sard.export import export_student

    input_shape = (*task.image_size, 3) if None in _input_size(model) else None
    return export_student(model, path, format, input_shape=input_shape,
                          representative_data=_sample_images(task))


# -------------------------------------------------------------- experiment


@dataclasses.dataclass
class ExperimentResult:
    """What `run_experiment` measured and wrote."""

    dataset: str
    method: str
    teacher: Dict[str, float]
    student: Dict[str, float]
    teacher_path: str
    student_path: str
    exports: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def summary(self):
        lines = [f"{'':8}{'mIoU':>8}{'bIoU':>8}"]
        for role, scores in (("teacher", self.teacher), ("student", self.student)):
            lines.append(f"{role:8}{100 * scores['miou']:8.1f}{100 * scores['biou']:8.1f}")
        return "\n".join(lines)


def run_experiment(dataset="synthetic", data_dir=None, *, method="sard", recipe="small",
                   teacher=None, image_size=None, tiny=False, teacher_schedule=None,
                   student_schedule=None, seed=0, output_dir="keras_sard_run",
                   export_formats=("tflite",), num_examples=64, method_overrides=None,
                   log: Callable[[str], None] = print, verbose="auto"):
    """The whole workflow on one dataset.

    1. data: `load_task` (with `data_dir`), or `stand_in_task` when
       `data_dir` is None (the download instructions are logged);
    2. teacher: loaded from `teacher` (a ``.keras`` path), or built from
       `recipe` and trained with `teacher_schedule` (default: the recipe's),
       saved as ``output_dir/teacher.keras``;
    3. student: built from `recipe` and distilled with `method` and
       `student_schedule` (default: the recipe's), saved as
       ``output_dir/student.keras``;
    4. mIoU and bIoU of both on the validation split;
    5. the student exported in each of `export_formats` (`export_path`).

    Returns an `ExperimentResult`.
    """
    from keras_sard.models import get_recipe

    start = time.time()
    recipe_name, recipe = recipe, get_recipe(recipe)
    teacher_schedule = teacher_schedule or recipe.teacher_schedule
    student_schedule = student_schedule or recipe.student_schedule
    if data_dir is None:
        task, notice = stand_in_task(dataset, image_size, num_examples=num_examples, seed=seed)
        if notice:
            log(notice)
    else:
        task = load_task(dataset, data_dir, image_size, num_examples=num_examples, seed=seed)
    loaded_teacher = None if teacher is None else load_model(teacher)
    if loaded_teacher is not None:
        _check_model_fits(loaded_teacher, task, "teacher")
    keras.utils.set_random_seed(seed)
    os.makedirs(output_dir, exist_ok=True)
    if loaded_teacher is None:
        teacher_model = recipe.build_teacher(task.num_classes, task.image_size, tiny=tiny)
        log(f"Training the teacher ({recipe_name}) on {task.train.name}: {teacher_schedule}")
        train_segmenter(teacher_model, task, teacher_schedule, seed=seed, verbose=verbose)
        teacher_path = save_model(teacher_model, os.path.join(output_dir, "teacher.keras"))
        teacher_layers = recipe.teacher_layers
    else:
        from keras_sard.models import level_names

        teacher_path, teacher_model = os.fspath(teacher), loaded_teacher
        teacher_layers = level_names(teacher_model.name)
    teacher_scores = evaluate(teacher_model, task.val, teacher_schedule.batch_size)
    log(f"Teacher: mIoU {100 * teacher_scores['miou']:.1f}, bIoU "
        f"{100 * teacher_scores['biou']:.1f}")

    log(f"Distilling the student with '{method}': {student_schedule}")
    keras.utils.set_random_seed(seed)  # the same student whether the teacher was trained or loaded
    student = recipe.build_student(task.num_classes, task.image_size, tiny=tiny)
    distill(teacher_model, student, task, method, student_schedule, teacher_layers,
            recipe.student_layers, seed=seed, verbose=verbose, **(method_overrides or {}))
    student_path = save_model(student, os.path.join(output_dir, "student.keras"))
    student_scores = evaluate(student, task.val, student_schedule.batch_size)
    log(f"Student ({method}): mIoU {100 * student_scores['miou']:.1f}, bIoU "
        f"{100 * student_scores['biou']:.1f}")

    reports = []
    for format in export_formats:
        reports.append(export(student, task, format,
                              export_path(os.path.join(output_dir, "student"), format)))
        log(f"Exported {reports[-1]}")
    return ExperimentResult(task.train.name, method, teacher_scores, student_scores,
                            teacher_path, student_path, reports, time.time() - start)
