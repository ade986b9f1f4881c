"""The paper's comparison tables (Tables 6 and 7): methods × datasets × seeds.

`run_grid` trains one teacher per dataset, then distils a student with every
method and seed (`keras_sard.training`), evaluating each on the validation
split; `format_markdown` and `format_csv` lay the results out as the paper
does: rows Teacher, Student (scratch), Vanilla KD, CWD, DKD, MGD, SARD and
Δ vs CWD, two columns (mIoU, bIoU) per dataset, mean ± std over seeds in %.

``run_grid(["synthetic"], seeds=[0], **QUICK)`` trains such a grid in
minutes (tiny models, two steps each); the layout of two seeds' runs:

Example::

    from keras_sard import tables

    runs = [tables.Run("synthetic:nuclei", method, seed, miou, 0.5)
            for seed in (0, 1) for method, miou in (("cwd", 0.60), ("sard", 0.62))]
    print(tables.format_markdown(runs))  # rows CWD, SARD, Δ vs CWD

A dataset without a data folder runs on synthetic data standing in for it
(`keras_sard.training.stand_in_task`); its column is marked with ``*``.
``"synthetic:nuclei"`` names the synthetic data of one kind directly.
"""

import csv
import dataclasses
import io
import os
import time
from typing import Callable

import keras
import numpy as np

from keras_sard import training
from keras_sard.data.registry import DATASET_INFO, resolve_dataset
from keras_sard.methods import METHOD_INFO, TABLE_METHODS, method_label, parse_method
from keras_sard.models.recipes import get_recipe

__all__ = [
    "DEFAULT_DATASETS",
    "DEFAULT_METHODS",
    "QUICK",
    "Run",
    "format_csv",
    "format_markdown",
    "run_grid",
    "write_tables",
]

DEFAULT_METHODS = TABLE_METHODS
"""The rows of Tables 6–7 under the teacher (`keras_sard.methods.TABLE_METHODS`)."""

DEFAULT_DATASETS = ("synthetic:fragments", "synthetic:nuclei")
"""Two synthetic tiny-dense sets: what runs without any download."""

ROW_LABELS = {"teacher": "Teacher", **{name: m.label for name, m in METHOD_INFO.items()}}
"""The row label of each method (`keras_sard.methods.METHOD_INFO`), and the teacher's."""

METRICS = (("miou", "mIoU"), ("biou", "bIoU"))

_QUICK_SCHEDULE = training.Schedule(steps_per_epoch=2, batch_size=4, learning_rate=1e-3,
                                    recalibration_batches=2)
QUICK = dict(tiny=True, image_size=32, num_examples=8, teacher_schedule=_QUICK_SCHEDULE,
             student_schedule=_QUICK_SCHEDULE)
"""Settings of a run that only checks the plumbing (tests, ``--quick``):
tiny models, 32×32 images, 8 training images, two steps per model,
BatchNorm statistics re-estimated on two batches."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained model's scores (fractions in [0, 1]); `batchnorm_recalibrated`:
    whether its BatchNorm statistics were re-estimated before it was scored
    (`keras_sard.training.fair_batchnorm`)."""

    dataset: str
    method: str
    seed: int
    miou: float
    biou: float
    seconds: float = 0.0
    stand_in: bool = False
    batchnorm_recalibrated: bool = False


def _split_kind(dataset):
    """``"synthetic:nuclei"`` → ``("synthetic", "nuclei")``; other names → (key, "")."""
    name, _, kind = dataset.partition(":")
    key = resolve_dataset(name)
    if kind and key != "synthetic":
        raise ValueError(f"Dataset {dataset!r}: only synthetic data has kinds "
                         "('synthetic:fragments', 'synthetic:nuclei').")
    return key, kind


def _task(dataset, data_dir, image_size, num_examples, seed, log):
    name, kind = _split_kind(dataset)
    if name == "synthetic":
        task = training.load_task("synthetic", image_size=image_size, num_examples=num_examples,
                                  seed=seed, kind=kind or "fragments")
        return task, False
    if data_dir is None:
        task, notice = training.stand_in_task(name, image_size, num_examples=num_examples,
                                              seed=seed)
        log(notice)
        return task, True
    return training.load_task(name, data_dir, image_size, seed=seed), False


def _check_names(datasets, methods, seeds):
    if not datasets:
        raise ValueError("`datasets` is empty: name at least one dataset.")
    for dataset in datasets:
        _split_kind(dataset)
    for name in methods:
        parse_method(name, "methods")
    if not seeds or not all(isinstance(s, (int, np.integer)) and s >= 0 for s in seeds):
        raise ValueError(f"`seeds` must be integers ≥ 0, at least one; got {list(seeds)!r}.")


def run_grid(datasets=DEFAULT_DATASETS, methods=DEFAULT_METHODS, seeds=(0, 1, 2), *,
             data_dirs=None, teachers=None, recipe="small", tiny=False, image_size=None,
             num_examples=64, teacher_schedule=None, student_schedule=None,
             method_overrides=None, unlabelled_dirs=None, unlabelled_ratio=0.5, output_dir=None,
             log: Callable[[str], None] = print):
    """Train and score every (dataset, method, seed).

    Args:
        datasets: dataset names (`keras_sard.data.DATASET_INFO`), or
            ``"synthetic:fragments"`` / ``"synthetic:nuclei"``.
        methods: names of `keras_sard.methods.METHODS` (or combinations
            such as ``"sard+kd"``), one row each.
        seeds: each student is trained once per seed (weights, batch order,
            augmentation); the teacher once per dataset, with the first seed.
        data_dirs: ``{dataset: folder}``; a dataset without one runs on its
            synthetic stand-in.
        teachers: ``{dataset: ".keras path"}`` of teachers trained already.
        recipe: a recipe name (`keras_sard.models.get_recipe`) or any object
            with `keras_sard.models.Recipe`'s ``build_teacher(num_classes,
            image_size, tiny=...)``, ``build_student(...)`` (models),
            ``teacher_layers``, ``student_layers`` (the tapped layer names)
            and, unless both schedules are given, ``teacher_schedule`` and
            ``student_schedule``.
        tiny, image_size, num_examples: the models and data
            (`keras_sard.training.load_task`).
        teacher_schedule, student_schedule: `keras_sard.schedules.Schedule`;
            None: the recipe's.  Each trained model's BatchNorm statistics
            are re-estimated as its schedule says before it is scored
            (`keras_sard.training.fair_batchnorm`: by default where the
            schedule is short; every method of a seed on the same batches),
            recorded in `Run.batchnorm_recalibrated`.
        method_overrides: ``{method: {argument: value}}`` for a method's loss.
        unlabelled_dirs: ``{dataset: folder}`` of images without labels,
            mixed into every student batch of that dataset at
            `unlabelled_ratio`, for every method (``"scratch"`` too: they
            reach it through BatchNorm only); each folder is checked
            (`keras_sard.training.unlabelled_data`) when its dataset is
            loaded, before its teacher trains.  Teachers train on the
            labelled images.
        output_dir: where to save each dataset's teacher (``.keras``).
        log: called with one line per trained model.

    Returns:
        a list of `Run` (the teacher's with ``method="teacher"``).
    """
    datasets, methods, seeds = list(datasets), list(methods), [int(s) for s in seeds]
    _check_names(datasets, methods, seeds)
    data_dirs, teachers = dict(data_dirs or {}), dict(teachers or {})
    unlabelled_dirs = dict(unlabelled_dirs or {})
    unused = sorted(set(unlabelled_dirs) - set(datasets))
    if unused:
        raise ValueError(f"`unlabelled_dirs` names {unused}, which are not in `datasets` "
                         f"{datasets}.")
    method_overrides = dict(method_overrides or {})
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    teacher_schedule = teacher_schedule or recipe.teacher_schedule
    student_schedule = student_schedule or recipe.student_schedule
    runs = []
    for dataset in datasets:
        task, stand_in = _task(dataset, data_dirs.get(dataset), image_size, num_examples,
                               seeds[0], log)
        unlabelled = training.unlabelled_data(unlabelled_dirs.get(dataset), task,
                                              student_schedule.batch_size, unlabelled_ratio)
        if unlabelled is not None:
            note = training.unlabelled_note(unlabelled, student_schedule.batch_size,
                                            unlabelled_ratio)
            log(f"{dataset}: {note}")

        def record(method, seed, scores, start, recalibration):
            recalibrated = bool(recalibration and recalibration.layers)
            runs.append(Run(dataset, method, seed, scores["miou"], scores["biou"],
                            time.time() - start, stand_in, recalibrated))
            log(f"{dataset:>20} {method:>12} seed {seed}: mIoU {100 * scores['miou']:5.1f}  "
                f"bIoU {100 * scores['biou']:5.1f}  ({time.time() - start:.0f} s"
                f"{', BN re-estimated' if recalibrated else ''})")

        start = time.time()
        if dataset in teachers:
            teacher = training.load_model(teachers[dataset])
            teacher_layers = None  # level_names(teacher.name)
            recalibration = None  # scored with the statistics it was saved with
        else:
            keras.utils.set_random_seed(seeds[0])
            teacher = recipe.build_teacher(task.num_classes, task.image_size, tiny=tiny)
            teacher_layers = recipe.teacher_layers
            recalibration = training.train_segmenter(
                teacher, task, teacher_schedule, seed=seeds[0], verbose=0).recalibration
            if output_dir is not None:
                safe = dataset.replace(":", "_")
                training.save_model(teacher, os.path.join(output_dir, f"teacher_{safe}.keras"))
        record("teacher", seeds[0], training.evaluate(teacher, task.val), start, recalibration)
        for seed in seeds:
            for method in methods:
                start = time.time()
                keras.utils.set_random_seed(seed)
                student = recipe.build_student(task.num_classes, task.image_size, tiny=tiny)
                history = training.distill(teacher, student, task, method, student_schedule,
                                           teacher_layers, recipe.student_layers, seed=seed,
                                           verbose=0, unlabelled=unlabelled,
                                           unlabelled_ratio=unlabelled_ratio,
                                           **method_overrides.get(method, {}))
                record(method, seed, training.evaluate(student, task.val), start,
                       history.recalibration)
    return runs


# ----------------------------------------------------------------- layout


def _dataset_title(dataset):
    """The column title: the registry's label (``"MoNuSeg"``), with the
    synthetic kind (``"Synthetic nuclei"``)."""
    try:
        name, kind = _split_kind(dataset)
    except ValueError:
        return dataset
    label = DATASET_INFO[name].label or name
    return f"{label} {kind}" if kind else label


def _column_title(runs, dataset):
    title = _dataset_title(dataset)
    return title + "*" if any(r.stand_in for r in runs if r.dataset == dataset) else title


def _ordered(values, first=()):
    seen = [v for v in first if v in values]
    return seen + [v for v in dict.fromkeys(values) if v not in seen]


def _summary(runs):
    """{(method, dataset, metric): (mean, std, n)} in %, std over seeds (ddof 0)."""
    cells = {}
    for run in runs:
        for metric, _ in METRICS:
            cells.setdefault((run.method, run.dataset, metric), []).append(
                100.0 * getattr(run, metric))
    return {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in cells.items()}


def _row_label(method):
    if method == "teacher":
        return ROW_LABELS["teacher"]
    try:
        return method_label(method)
    except ValueError:  # runs of a method no longer in the registry
        return method


def _layout(runs):
    if not runs:
        raise ValueError("No runs to lay out.")
    methods = _ordered([r.method for r in runs], first=("teacher",) + DEFAULT_METHODS)
    datasets = _ordered([r.dataset for r in runs])
    return methods, datasets, _summary(runs)


def _delta(summary, dataset, metric):
    sard, cwd = summary.get(("sard", dataset, metric)), summary.get(("cwd", dataset, metric))
    if sard is None or cwd is None:
        return None
    return sard[0] - cwd[0]


def format_markdown(runs):
    """The table as Markdown: mean ± std (%) over seeds, then Δ vs CWD
    (SARD's mean minus CWD's), one column per dataset and metric."""
    methods, datasets, summary = _layout(runs)
    header = ["Method"] + [f"{_column_title(runs, d)} {label}" for d in datasets
                           for _, label in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(
        [":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for method in methods:
        cells = []
        for dataset in datasets:
            for metric, _ in METRICS:
                value = summary.get((method, dataset, metric))
                if value is None:
                    cells.append("—")
                elif value[2] == 1:
                    cells.append(f"{value[0]:.1f}")
                else:
                    cells.append(f"{value[0]:.1f} ± {value[1]:.1f}")
        lines.append("| " + " | ".join([_row_label(method)] + cells) + " |")
    deltas = [_delta(summary, d, m) for d in datasets for m, _ in METRICS]
    if any(d is not None for d in deltas):
        cells = ["—" if d is None else f"{d:+.1f}" for d in deltas]
        lines.append("| " + " | ".join(["Δ vs CWD"] + cells) + " |")
    notes = []
    if any(r.stand_in for r in runs):
        notes.append("\\* synthetic data standing in for the dataset (no data folder given).")
    seeds = sorted({r.seed for r in runs if r.method != "teacher"})
    notes.append(f"mIoU and bIoU in %, mean ± std over seeds {seeds}; the teacher is "
                 "trained once per dataset.")
    recalibrated = sum(r.batchnorm_recalibrated for r in runs)
    if recalibrated:
        notes.append(f"BatchNorm statistics re-estimated on training batches before scoring: "
                     f"{recalibrated} of {len(runs)} models (runs.csv: batchnorm_recalibrated).")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def format_csv(runs):
    """The table as CSV: one row per method (and Δ vs CWD), for each dataset
    and metric a mean and a std column (%), and the number of seeds."""
    methods, datasets, summary = _layout(runs)
    header = ["method"]
    for dataset in datasets:
        for _, label in METRICS:
            header += [f"{dataset} {label}", f"{dataset} {label} std"]
    header.append("seeds")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for method in methods:
        row, counts = [_row_label(method)], set()
        for dataset in datasets:
            for metric, _ in METRICS:
                value = summary.get((method, dataset, metric))
                row += ["", ""] if value is None else [f"{value[0]:.2f}", f"{value[1]:.2f}"]
                if value is not None:
                    counts.add(value[2])
        writer.writerow(row + [max(counts) if counts else 0])
    deltas = [_delta(summary, d, m) for d in datasets for m, _ in METRICS]
    if any(d is not None for d in deltas):
        row = ["Δ vs CWD"]
        for d in deltas:
            row += ["" if d is None else f"{d:+.2f}", ""]
        writer.writerow(row + [""])
    return out.getvalue()


_RUN_FIELDS = [f.name for f in dataclasses.fields(Run)]


def write_tables(runs, output_dir):
    """Write ``table.md``, ``table.csv`` and ``runs.csv`` (every run) into
    `output_dir`; returns the three paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, name) for name in ("table.md", "table.csv", "runs.csv")]
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write(format_markdown(runs))
    with open(paths[1], "w", encoding="utf-8", newline="") as f:
        f.write(format_csv(runs))
    with open(paths[2], "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, _RUN_FIELDS, lineterminator="\n")
        writer.writeheader()
        for run in runs:
            writer.writerow(dataclasses.asdict(run))
    return paths
