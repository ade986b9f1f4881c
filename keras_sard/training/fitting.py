"""Training a model on a `Task`: a segmenter on the task loss alone
(`train_segmenter`), or a student against a frozen teacher with a
distillation method (`distill`), with a `keras_sard.schedules.Schedule`.

Example::

    import keras
    from keras_sard.schedules import Schedule
    from keras_sard.training import load_task, train_segmenter

    task = load_task("synthetic", image_size=32, num_examples=4)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 1)])
    train_segmenter(model, task, Schedule(steps_per_epoch=1, batch_size=2), verbose=0)
"""

from keras_sard.distiller import Distiller
from keras_sard.losses.task import SegmentationLoss
from keras_sard.methods import distillation_losses
from keras_sard.models.levels import level_names
from keras_sard.schedules import PAPER_SCHEDULE
from keras_sard.validation import model_image_size, model_num_classes

__all__ = ["check_model_fits", "distill", "train_segmenter"]


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


def train_segmenter(model, task, schedule=PAPER_SCHEDULE, seed=0, verbose="auto", callbacks=None):
    """Train `model` on `task` with the supervised loss alone (cross-entropy +
    Dice, `keras_sard.losses.SegmentationLoss`): a teacher, or a student
    from scratch.  Returns the Keras ``History``."""
    check_model_fits(model, task, "model")
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
            ``"kd"``, ``"cwd"``, ``"dkd"``, ``"mgd"``, ``"sard"``, ...), or
            several joined by ``+``.
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
    check_model_fits(teacher, task, "teacher")
    check_model_fits(student, task, "student")
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
