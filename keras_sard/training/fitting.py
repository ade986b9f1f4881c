"""Training a model on a `Task`: a segmenter on the task loss alone
(`train_segmenter`), or a student against a frozen teacher with a
distillation method (`distill`), with a `keras_sard.schedules.Schedule`.

Both end with fair BatchNorm statistics (`fair_batchnorm`): where the
schedule is short for the model's BatchNorm momentum, much of each moving
average is still its initial value when training stops, so the model's
statistics are re-estimated on training batches before it is scored, saved
or exported (`Schedule.recalibrate_batchnorm`: None auto, True, False).

Long runs: ``backup_dir`` backs the training state up after every epoch
(``keras.callbacks.BackupAndRestore``: weights, optimizer, the SARD noise
generators, the epoch); the same call after an interruption resumes from
the last backup and ends with the weights of an uninterrupted run, as the
training batches resume where that epoch ended (the batches of the epochs
done are read again and skipped: the data stream is one seeded sequence
over all epochs).  ``log_dir`` writes TensorBoard logs: every loss term,
metric and the learning rate per epoch (``keras.callbacks.TensorBoard``)
and, for SARD, the teacher's structure map and the predictions on two
validation crops (`keras_sard.callbacks.StructureMapLogger`, in
``log_dir/images``).

Example::

    import keras
    from keras_sard.schedules import Schedule
    from keras_sard.training import load_task, train_segmenter

    task = load_task("synthetic", image_size=32, num_examples=4)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 1)])
    train_segmenter(model, task, Schedule(steps_per_epoch=1, batch_size=2), verbose=0)
"""

import json
import os
import warnings

import keras

from keras_sard.batchnorm import has_stale_batchnorm, recalibrate_batchnorm
from keras_sard.data.pipeline import make_pipeline
from keras_sard.distiller import Distiller
from keras_sard.losses.sard import SARDLoss
from keras_sard.losses.task import SegmentationLoss
from keras_sard.methods import distillation_losses
from keras_sard.models.levels import level_names
from keras_sard.schedules import PAPER_SCHEDULE
from keras_sard.training.tasks import unlabelled_data
from keras_sard.validation import model_image_size, model_num_classes

__all__ = ["BATCHNORM_SEED_OFFSET", "batchnorm_note", "check_model_fits", "distill",
           "fair_batchnorm", "train_segmenter"]

BATCHNORM_SEED_OFFSET = 1000
"""`fair_batchnorm` reads the training pipeline with the run's seed plus
this: a draw of batches of its own (not the first ones trained on), the
same for every method trained with that seed."""


def check_model_fits(model, task, role="model"):
    """A ValueError naming `role` unless `model` predicts the task's classes
    and takes its crops (where it declares an input size)."""
    classes = model_num_classes(model)
    if classes != task.num_classes:
        raise ValueError(
            f"The {role} '{model.name}' predicts {classes} classes; the data "
            f"('{task.train.name}') has {task.num_classes}.")
    size = model_image_size(model) or (None, None)
    if None not in size and tuple(size) != tuple(task.image_size):
        raise ValueError(
            f"The {role} '{model.name}' takes {size[0]}x{size[1]} images; the training crops "
            f"are {task.image_size[0]}x{task.image_size[1]} (image_size).")


def fair_batchnorm(model, task, schedule=PAPER_SCHEDULE, seed=0):
    """Re-estimate `model`'s BatchNorm statistics after training, where
    `schedule` says so; what `train_segmenter` and `distill` end with.

    ``schedule.recalibrate_batchnorm`` decides: True always, False never,
    None (auto) when `keras_sard.batchnorm.has_stale_batchnorm` finds that
    the schedule's ``epochs * steps`` training batches leave more than
    ``STALE_FRACTION_THRESHOLD`` (1 %) of a BatchNorm layer's moving
    statistics at their initial value (at Keras' momentum 0.99: under 459
    batches; the paper's schedules are far longer).  The statistics are then
    averaged (`keras_sard.batchnorm.recalibrate_batchnorm`) over the first
    ``schedule.recalibration_batches`` batches of the training pipeline
    (``task.train_batches(schedule.batch_size, seed + BATCHNORM_SEED_OFFSET)``:
    crops of the training images, augmented as in training), so every
    method trained with a seed is re-estimated on the same images.

    Returns the `keras_sard.batchnorm.Recalibration`, or None where the
    statistics were left as training made them.
    """
    recalibrate = schedule.recalibrate_batchnorm
    if recalibrate is None:
        steps = schedule.steps(task.train.num_examples) * schedule.epochs
        recalibrate = has_stale_batchnorm(model, steps)
    if not recalibrate:
        return None
    batches = task.train_batches(schedule.batch_size, seed + BATCHNORM_SEED_OFFSET)
    return recalibrate_batchnorm(model, batches, num_batches=schedule.recalibration_batches)


def batchnorm_note(recalibration, role="model"):
    """One line for a log saying which BatchNorm statistics `role` is scored
    with (`recalibration`: what `fair_batchnorm` returned)."""
    if recalibration is None or not recalibration.layers:
        return f"{role}: BatchNorm statistics as training left them (not re-estimated)"
    layers, batches = len(recalibration.layers), recalibration.batches
    return (f"{role}: BatchNorm statistics re-estimated ({layers} layer"
            f"{'s' if layers > 1 else ''}, {batches} training batch{'es' if batches > 1 else ''}, "
            f"{recalibration.examples} crops)")


def train_segmenter(model, task, schedule=PAPER_SCHEDULE, seed=0, verbose="auto", callbacks=None,
                    backup_dir=None, log_dir=None):
    """Train `model` on `task` with the supervised loss alone (cross-entropy +
    Dice, `keras_sard.losses.SegmentationLoss`): a teacher, or a student
    from scratch; then `fair_batchnorm`.  `backup_dir`, `log_dir`: see the
    module docstring.

    Returns the Keras ``History``, with ``history.recalibration`` what
    `fair_batchnorm` returned (None: statistics not re-estimated).
    """
    check_model_fits(model, task, "model")
    return _train_segmenter(model, task, schedule, seed, verbose, callbacks, backup_dir, log_dir)


def _train_segmenter(model, task, schedule, seed, verbose, callbacks, backup_dir, log_dir,
                     mix=None):
    steps = schedule.steps(task.train.num_examples)
    model.compile(optimizer=schedule.optimizer(steps * schedule.epochs),
                  loss=SegmentationLoss(ignore_label=task.train.ignore_label))
    history = _fit(model, task, schedule, seed, verbose, callbacks, backup_dir, log_dir, mix)
    history.recalibration = fair_batchnorm(model, task, schedule, seed)
    return history


def distill(teacher, student, task, method="sard", schedule=PAPER_SCHEDULE, teacher_layers=None,
            student_layers=None, seed=0, verbose="auto", callbacks=None, backup_dir=None,
            log_dir=None, unlabelled=None, unlabelled_ratio=0.5, **method_overrides):
    """Train `student` against the frozen `teacher` with a distillation method.

    Args:
        teacher, student: segmenters taking the same images.
        task: the data (`load_task`).
        method: a name of `keras_sard.methods.METHODS` (``"scratch"``,
            ``"kd"``, ``"cwd"``, ``"dkd"``, ``"mgd"``, ``"sard"``, ...), or
            several joined by ``+``.
        schedule: a `Schedule`.
        teacher_layers, student_layers: the levels to tap (feature methods);
            default ``keras_sard.models.level_names(model.name)``.
        seed: seeds the batches' order and augmentation.
        backup_dir, log_dir: back up and resume; TensorBoard logs (see the
            module docstring).
        unlabelled: images without labels to mix into every training
            batch: a folder of images, or a `keras_sard.data.SegmentationData`
            (`keras_sard.data.load_unlabelled`, `drop_labels`, the teacher's
            own images with `split_labelled`); checked before training
            (`keras_sard.training.unlabelled_data`).  Their masks are all
            the ignore label: the task loss, the metrics and KD/DKD skip
            them, SARD, CWD and MGD distil on them.
        unlabelled_ratio: their share of each batch (``round(ratio *
            batch_size)`` images, the rest labelled).
        **method_overrides: the method's loss arguments (e.g. ``radius=3``
            for SARD).

    A method without distillation losses (``"scratch"``) trains the student
    on the task loss alone, without running the teacher.  The student is
    trained in place, then its BatchNorm statistics re-estimated where
    `schedule` says so (`fair_batchnorm`: the same batches for every method
    of a seed).  Returns the Keras ``History``, with
    ``history.recalibration`` what `fair_batchnorm` returned.

    With `unlabelled`, the steps per epoch are still the schedule's for the
    labelled images (each step reads fewer of them), ``"scratch"`` trains
    on the same mixed batches (the unlabelled images reach it only through
    BatchNorm's batch statistics: the control of a comparison), and the
    BatchNorm statistics are re-estimated on labelled batches alone, as
    without (the images the student is judged like).

    Example::

        from keras_sard.data import drop_labels, make_synthetic
        from keras_sard.models import get_recipe
        from keras_sard.training import Schedule, distill, load_task

        task = load_task("synthetic", image_size=32, num_examples=4)
        extra = drop_labels(make_synthetic("fragments", 4, (32, 32), split="test"))
        teacher, student, _, _ = get_recipe("small").build(2, 32, tiny=True)
        schedule = Schedule(steps_per_epoch=1, batch_size=4, recalibration_batches=1)
        distill(teacher, student, task, "cwd", schedule,
                unlabelled=extra, unlabelled_ratio=0.5, verbose=0)
    """
    check_model_fits(teacher, task, "teacher")
    check_model_fits(student, task, "student")
    mix = unlabelled_data(unlabelled, task, schedule.batch_size, unlabelled_ratio)
    mix = None if mix is None else (mix, unlabelled_ratio)
    losses = distillation_losses(
        method,
        tuple(teacher_layers or level_names(teacher.name)),
        tuple(student_layers or level_names(student.name)),
        **method_overrides,
    )
    if not losses:
        return _train_segmenter(student, task, schedule, seed, verbose, callbacks, backup_dir,
                                log_dir, mix)
    distiller = Distiller(teacher, student, losses,
                          task_loss=SegmentationLoss(ignore_label=task.train.ignore_label))
    steps = schedule.steps(task.train.num_examples)
    distiller.compile(optimizer=schedule.optimizer(steps * schedule.epochs))
    callbacks = list(callbacks or ())
    if log_dir is not None and any(isinstance(loss, SARDLoss) for loss in losses):
        callbacks += _structure_logger(task, losses, os.path.join(log_dir, "images"))
    history = _fit(distiller, task, schedule, seed, verbose, callbacks, backup_dir, log_dir, mix)
    history.recalibration = fair_batchnorm(student, task, schedule, seed)
    return history


def _fit(model, task, schedule, seed, verbose, callbacks, backup_dir, log_dir, mix=None):
    """`model.fit` on the task's training batches (mixed with the unlabelled
    images of `mix`, ``(data, ratio)``, when given), backed up to
    `backup_dir` (resuming from it) and logged to `log_dir` when given."""
    steps = schedule.steps(task.train.num_examples)
    callbacks = list(callbacks or ())
    done = 0
    if backup_dir is not None:
        # BackupAndRestore restores the model and the epoch; the data
        # stream restarts with the iterator, so skip what was trained on.
        done = _backed_up_epochs(backup_dir)
        callbacks.insert(0, keras.callbacks.BackupAndRestore(os.fspath(backup_dir)))
    unlabelled, ratio = mix or (None, 0.5)
    batches = task.train_batches(schedule.batch_size, seed, skip=done * steps,
                                 unlabelled=unlabelled, unlabelled_ratio=ratio)
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(log_dir), write_graph=False))
    return model.fit(batches, epochs=schedule.epochs, steps_per_epoch=steps, verbose=verbose,
                     callbacks=callbacks, shuffle=False)  # the pipeline shuffles


def _backed_up_epochs(backup_dir):
    """The epochs a ``keras.callbacks.BackupAndRestore`` backup in
    `backup_dir` holds (0 without one): where a resumed `fit` starts."""
    path = os.path.join(backup_dir, "training_metadata.json")  # Keras' record of the epoch
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as file:
        return int(json.load(file)["epoch"])


def _structure_logger(task, losses, log_dir, count=2):
    """[StructureMapLogger] of the first SARD level on `count` validation
    crops, or [] (with a warning) without matplotlib, which draws them."""
    try:
        import matplotlib  # noqa: F401  (the viz extra)
    except ImportError:
        warnings.warn("No structure-map images in TensorBoard: they are drawn with matplotlib "
                      "(pip install keras-sard[viz]).", stacklevel=3)
        return []
    from keras_sard.callbacks import StructureMapLogger  # imports matplotlib

    layer = next(loss for loss in losses if isinstance(loss, SARDLoss)).teacher_layers[0]
    crops = make_pipeline(task.val, count, training=True, crop_size=task.image_size,
                          shuffle=False, scale_range=None, flip=False, rotation=None,
                          color_jitter=False, drop_remainder=False)
    images, labels = (x.numpy() for x in next(iter(crops)))
    return [StructureMapLogger(images, layer, log_dir=log_dir, labels=labels,
                               ignore_label=task.val.ignore_label, num_classes=task.num_classes)]
