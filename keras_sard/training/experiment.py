"""The whole workflow on one dataset (`run_experiment`): data → teacher
(trained here, or loaded from a ``.keras`` file) → student distilled with a
method → mIoU and bIoU → ``.keras`` files and exported artefacts, each step
a function of `keras_sard.training`.  The schedules are the recipe's unless
given (`keras_sard.models.recipes`).

``keras-sard run`` and the example scripts call `run_experiment`; it returns
an `ExperimentResult`:

>>> scores = {"miou": 0.5, "biou": 0.25}
>>> print(ExperimentResult("synthetic", "sard", scores, scores, "t.keras", "s.keras").summary())
            mIoU    bIoU
teacher     50.0    25.0
student     50.0    25.0
"""

import dataclasses
import os
import time
from typing import Callable, Dict

import keras

from keras_sard.models.levels import level_names
from keras_sard.models.recipes import get_recipe
from keras_sard.training.exports import export, export_path
from keras_sard.training.fitting import batchnorm_note, check_model_fits, distill, train_segmenter
from keras_sard.training.model_files import load_model, save_model
from keras_sard.training.scoring import evaluate
from keras_sard.training.tasks import (load_task, stand_in_task, unlabelled_data,
                                       unlabelled_note)

__all__ = ["ExperimentResult", "run_experiment"]


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
        """The scores of both models as a small table (%)."""
        lines = [f"{'':8}{'mIoU':>8}{'bIoU':>8}"]
        for role, scores in (("teacher", self.teacher), ("student", self.student)):
            lines.append(f"{role:8}{100 * scores['miou']:8.1f}{100 * scores['biou']:8.1f}")
        return "\n".join(lines)


def run_experiment(dataset="synthetic", data_dir=None, *, method="sard", recipe="small",
                   teacher=None, image_size=None, object_scale=1.0, tiny=False,
                   teacher_schedule=None, student_schedule=None, seed=0, output_dir="keras_sard_run",
                   export_formats=("tflite",), num_examples=64, method_overrides=None,
                   data_options=None, backup_dir=None, log_dir=None, unlabelled=None,
                   unlabelled_ratio=0.5, log: Callable[[str], None] = print, verbose="auto"):
    """The whole workflow on one dataset.

    1. data: `load_task` (with `data_dir` and `data_options`, keywords of
       the dataset's reader: ``num_classes=`` for ``"folder"``,
       ``validate=True`` to check every file first), or `stand_in_task`
       when `data_dir` is None (the download instructions are logged; its
       synthetic objects `object_scale` times their default size);
    2. teacher: loaded from `teacher` (a ``.keras`` path), or built from
       `recipe` and trained with `teacher_schedule` (default: the recipe's),
       saved as ``output_dir/teacher.keras``;
    3. student: built from `recipe` and distilled with `method` and
       `student_schedule` (default: the recipe's), saved as
       ``output_dir/student.keras``; with `unlabelled` (a folder of images
       or a `keras_sard.data.SegmentationData`, checked in step 1, before
       any training) mixed into its batches at `unlabelled_ratio`
       (`keras_sard.training.distill`; the teacher trains on the labelled
       images alone);
    4. mIoU and bIoU of both on the validation split;
    5. the student exported in each of `export_formats` (`export_path`).

    A model trained here has its BatchNorm statistics re-estimated as its
    schedule says (`keras_sard.training.fair_batchnorm`; logged) before it
    is saved, so it is scored and exported with them.

    `backup_dir` and `log_dir` (see `keras_sard.training.fitting`): each
    model's training is backed up to (resumed from) and logged in a folder
    of its own, ``teacher/`` and ``student/``.  A teacher trained before an
    interruption is kept as ``backup_dir/teacher.keras`` until the run ends,
    so the same call after an interruption resumes where it stopped.

    Returns an `ExperimentResult`.
    """
    start = time.time()
    recipe_name, recipe = recipe, get_recipe(recipe)
    teacher_schedule = teacher_schedule or recipe.teacher_schedule
    student_schedule = student_schedule or recipe.student_schedule
    if data_dir is None:
        task, notice = stand_in_task(dataset, image_size, num_examples=num_examples, seed=seed,
                                     object_scale=object_scale)
        if notice:
            log(notice)
    elif object_scale != 1.0:
        raise ValueError(f"`object_scale` ({object_scale}) is for synthetic data (data_dir "
                         "None): real images keep their objects' size.")
    else:
        task = load_task(dataset, data_dir, image_size, num_examples=num_examples, seed=seed,
                         **(data_options or {}))
    unlabelled = unlabelled_data(unlabelled, task, student_schedule.batch_size, unlabelled_ratio)
    if unlabelled is not None:
        log(unlabelled_note(unlabelled, student_schedule.batch_size, unlabelled_ratio))
    loaded_teacher = None if teacher is None else load_model(teacher)
    if loaded_teacher is not None:
        check_model_fits(loaded_teacher, task, "teacher")
    keras.utils.set_random_seed(seed)
    os.makedirs(output_dir, exist_ok=True)
    trained_teacher = None if backup_dir is None else os.path.join(backup_dir, "teacher.keras")
    if loaded_teacher is None and trained_teacher and os.path.isfile(trained_teacher):
        log(f"Resuming: the teacher trained before the interruption, {trained_teacher}")
        teacher_model = load_model(trained_teacher)
        teacher_path = save_model(teacher_model, os.path.join(output_dir, "teacher.keras"))
        teacher_layers = recipe.teacher_layers
    elif loaded_teacher is None:
        teacher_model = recipe.build_teacher(task.num_classes, task.image_size, tiny=tiny)
        log(f"Training the teacher ({recipe_name}) on {task.train.name}: {teacher_schedule}")
        history = train_segmenter(teacher_model, task, teacher_schedule, seed=seed,
                                  verbose=verbose, backup_dir=_subfolder(backup_dir, "teacher"),
                                  log_dir=_subfolder(log_dir, "teacher"))
        log(batchnorm_note(history.recalibration, "Teacher"))
        if trained_teacher:
            save_model(teacher_model, trained_teacher)
        teacher_path = save_model(teacher_model, os.path.join(output_dir, "teacher.keras"))
        teacher_layers = recipe.teacher_layers
    else:
        teacher_path, teacher_model = os.fspath(teacher), loaded_teacher
        teacher_layers = level_names(teacher_model.name)
    teacher_scores = evaluate(teacher_model, task.val, teacher_schedule.batch_size)
    log(f"Teacher: mIoU {100 * teacher_scores['miou']:.1f}, bIoU "
        f"{100 * teacher_scores['biou']:.1f}")

    log(f"Distilling the student with '{method}': {student_schedule}")
    keras.utils.set_random_seed(seed)  # the same student whether the teacher was trained or loaded
    student = recipe.build_student(task.num_classes, task.image_size, tiny=tiny)
    history = distill(teacher_model, student, task, method, student_schedule, teacher_layers,
                      recipe.student_layers, seed=seed, verbose=verbose,
                      backup_dir=_subfolder(backup_dir, "student"),
                      log_dir=_subfolder(log_dir, "student"), unlabelled=unlabelled,
                      unlabelled_ratio=unlabelled_ratio, **(method_overrides or {}))
    log(batchnorm_note(history.recalibration, "Student"))
    student_path = save_model(student, os.path.join(output_dir, "student.keras"))
    student_scores = evaluate(student, task.val, student_schedule.batch_size)
    log(f"Student ({method}): mIoU {100 * student_scores['miou']:.1f}, bIoU "
        f"{100 * student_scores['biou']:.1f}")

    reports = []
    for format in export_formats:
        reports.append(export(student, task, format,
                              export_path(os.path.join(output_dir, "student"), format)))
        log(f"Exported {reports[-1]}")
    if trained_teacher and os.path.isfile(trained_teacher):
        os.remove(trained_teacher)  # the run is done: nothing left to resume
        if not os.listdir(backup_dir):
            os.rmdir(backup_dir)
    return ExperimentResult(task.train.name, method, teacher_scores, student_scores,
                            teacher_path, student_path, reports, time.time() - start)


def _subfolder(folder, name):
    return None if folder is None else os.path.join(folder, name)
