"""What each ``keras-sard`` verb does, with `keras_sard.training`,
`keras_sard.tables` and `keras_sard.visualize`.  `keras_sard.cli.runner`
imports this module once the backend is chosen: it imports Keras.
"""

import dataclasses
import math
import os

import keras
import numpy as np

from keras_sard import tables, training
from keras_sard.cli.parser import RECALIBRATE_BN, UsageError
from keras_sard.data.pipeline import denormalize, make_pipeline, unlabelled_count
from keras_sard.data.registry import DATASET_INFO, resolve_dataset
from keras_sard.diagnostics import structure_report
from keras_sard.export.api import ExportMismatchError
from keras_sard.methods import parse_method
from keras_sard.models.levels import level_names
from keras_sard.models.recipes import get_recipe
from keras_sard.structure import StructureWeights
from keras_sard.taps import find_layer
from keras_sard.validation import model_image_size
from keras_sard.visualize import plot_predictions, plot_structure

__all__ = ["VERBS", "ExportMismatchError"]


def _say(text):
    print(text, flush=True)


def _base_schedule(recipe, teacher=False):
    """The recipe's own schedule of its teacher or student."""
    recipe = get_recipe(recipe)
    return recipe.teacher_schedule if teacher else recipe.student_schedule


def _schedule(args, base, teacher=False):
    """`base` with the schedule flags given on the command line."""
    epochs = getattr(args, "teacher_epochs", None) if teacher else None
    schedule = base.replace(
        epochs=epochs or args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, gradient_accumulation_steps=args.accumulation_steps)
    return _batchnorm_schedule(args, schedule)


def _batchnorm_schedule(args, schedule):
    """`schedule` with --recalibrate-bn and --recalibration-batches."""
    return dataclasses.replace(
        schedule, recalibrate_batchnorm=RECALIBRATE_BN[args.recalibrate_bn],
        recalibration_batches=args.recalibration_batches or schedule.recalibration_batches)


def _task(args, image_size=None):
    """The data of `args`, synthetic stand-in (with its notice) without --data-dir."""
    image_size = args.image_size or image_size
    options = _data_options(args)
    if args.data_dir is None:
        task, notice = training.stand_in_task(args.dataset, image_size,
                                              num_examples=args.num_examples, seed=args.seed,
                                              **_synthetic_options(args))
        if notice:
            _say(notice)
        return task
    _synthetic_options(args)  # refuses --object-scale with --data-dir
    _check_data_dir(args)
    return training.load_task(args.dataset, args.data_dir, image_size, seed=args.seed,
                              **options)


def _check_data_dir(args):
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir '{args.data_dir}' is not a folder.")


def _data_options(args):
    """The reader's keywords: check every file now; --num-classes for 'folder'."""
    key = resolve_dataset(args.dataset)
    if key != "folder" and args.num_classes is not None:
        classes = DATASET_INFO[key].num_classes
        raise UsageError(f"--num-classes is for --dataset folder; '{key}' has {classes} classes.")
    if key == "folder" and args.num_classes is None and args.data_dir is not None:
        raise UsageError("--dataset folder needs --num-classes K: the classes its masks hold, "
                         "as ids 0..K-1 (255: ignored).")
    options = {"validate": True}
    if key == "folder":
        options["num_classes"] = args.num_classes
    return options


def _synthetic_options(args):
    """The synthetic generator's keywords (--object-scale): for data without --data-dir."""
    if args.object_scale is None:
        return {}
    if args.data_dir is not None:
        raise UsageError("--object-scale is for synthetic data (without --data-dir): real "
                         "images keep their objects' size.")
    return {"object_scale": args.object_scale}


def _model_size(model):
    size = model_image_size(model)
    return None if size is None or None in size else size


def _scores(name, scores):
    _say(f"{name}: mIoU {100 * scores['miou']:.1f}, bIoU {100 * scores['biou']:.1f}")


def _train_teacher(args):
    recipe = get_recipe(args.recipe)
    _check_output(args.output)
    task = _task(args)
    schedule = _schedule(args, _base_schedule(args.recipe, teacher=True))
    keras.utils.set_random_seed(args.seed)
    teacher = recipe.build_teacher(task.num_classes, task.image_size, tiny=args.tiny)
    _say(f"Training the teacher of '{args.recipe}' on {task.train.name}: {schedule}")
    history = training.train_segmenter(teacher, task, schedule, seed=args.seed, verbose=2,
                                       **_long_run(args, "teacher"))
    _say(training.batchnorm_note(history.recalibration, "Teacher"))
    training.save_model(teacher, args.output)
    _scores("Teacher", training.evaluate(teacher, task.val, schedule.batch_size))
    _say(f"Saved {args.output}")


def _student(args, task):
    if args.student and args.student.endswith(".keras"):
        return training.load_model(args.student)
    recipe = get_recipe(args.recipe)
    if args.student:  # a backbone name: the recipe with another student
        recipe = dataclasses.replace(recipe, student_backbone=args.student)
    return recipe.build_student(task.num_classes, task.image_size, tiny=args.tiny)


def _distill(args):
    _check_output(args.output)
    _check_method(args.method)
    schedule = _schedule(args, _base_schedule(args.recipe))
    ratio = _unlabelled_ratio(args, schedule.batch_size)
    teacher = training.load_model(args.teacher)
    task = _task(args, _model_size(teacher))
    unlabelled = training.unlabelled_data(args.unlabelled_dir, task)
    keras.utils.set_random_seed(args.seed)
    student = _student(args, task)
    _say(f"Distilling '{student.name}' from '{args.teacher}' with '{args.method}': {schedule}")
    if unlabelled is not None:
        _say(training.unlabelled_note(unlabelled, schedule.batch_size, ratio))
    history = training.distill(teacher, student, task, args.method, schedule, seed=args.seed,
                               verbose=2, unlabelled=unlabelled, unlabelled_ratio=ratio or 0.5,
                               **_long_run(args, "student"))
    _say(training.batchnorm_note(history.recalibration, "Student"))
    training.save_model(student, args.output)
    _scores(f"Student ({args.method})", training.evaluate(student, task.val, schedule.batch_size))
    _say(f"Saved {args.output}")


def _evaluate(args):
    model = training.load_model(args.model)
    task = _task(args, _model_size(model))
    _scores(f"{args.model} on {task.val.name} ({task.val.split})",
            training.evaluate(model, task.val, args.batch_size))


def _export(args):
    model = training.load_model(args.model)
    task = _task(args, _model_size(model))
    path = args.output or training.export_path(os.path.splitext(args.model)[0], args.format)
    _say(f"Exported {training.export(model, task, args.format, path)}")


def _visualize(args):
    teacher = training.load_model(args.teacher)
    students = {os.path.splitext(os.path.basename(p))[0]: training.load_model(p)
                for p in args.student}
    task = _task(args, _model_size(teacher))
    layer = level_names(teacher.name)[args.level - 1]
    models = {"teacher": teacher, **students}
    # Images at the teacher's input size (the structure map needs one forward pass).
    size = _model_size(teacher)
    batches = make_pipeline(task.val, 1, training=False, eval_size=size,
                            pad_to_multiple=None if size else 32)
    os.makedirs(args.output_dir, exist_ok=True)
    for index, (image, label) in enumerate(batches.take(args.num_images)):
        image, label = image.numpy(), label.numpy()
        predictions = {name: training.predict(model, image)[0] for name, model in models.items()}
        shown = np.asarray(denormalize(image[0]))
        structure = plot_structure(
            image[0], teacher, layer, os.path.join(args.output_dir, f"structure_{index}.png"),
            title=f"{task.val.name} #{index}: structure map of {layer}")
        compared = plot_predictions(
            shown, label[0], predictions,
            os.path.join(args.output_dir, f"predictions_{index}.png"),
            ignore_label=task.val.ignore_label, num_classes=task.num_classes,
            title=f"{task.val.name} #{index}")
        _say(f"Wrote {structure} and {compared}")


def _diagnose(args):
    teacher = training.load_model(args.teacher)
    levels = list(args.levels or level_names(teacher.name))
    for layer in levels:
        try:
            find_layer(teacher, layer, "teacher")
        except ValueError as error:
            hint = "" if args.levels else " Name the layers to measure with --levels."
            raise UsageError(f"{error}{hint}") from None
    structure = _structure_weights(args)
    task = _task(args, _model_size(teacher))
    training.check_model_fits(teacher, task, "teacher")
    # Crops as the teacher trained on (its input size, no resizing), without augmentation.
    crops = make_pipeline(task.val, args.num_images, training=True, crop_size=task.image_size,
                          seed=args.seed, scale_range=None, flip=False, rotation=None,
                          color_jitter=False, drop_remainder=False)
    images, labels = (t.numpy() for t in next(iter(crops)))
    report = structure_report(teacher, levels, images, labels, structure,
                              ignore_label=task.val.ignore_label)
    scales = "single-scale" if structure.scales is None else \
        "scales " + ", ".join(f"{s:g}" for s in structure.scales)
    _say(f"Structure map W of '{args.teacher}' on {len(images)} {task.val.name} "
         f"({task.val.split}) crops of {task.image_size[0]}x{task.image_size[1]}: padding "
         f"{structure.padding}, E {scales}, radius {structure.radius}, density "
         f"{structure.density}")
    _say(report.format())


_STRUCTURE_OPTIONS = {"padding": "--padding", "scales": "--scales", "radius": "--radius",
                      "density": "--density"}


def _structure_weights(args):
    """The `StructureWeights` of diagnose's structure-map options (its defaults elsewhere)."""
    given = {name: getattr(args, name) for name in _STRUCTURE_OPTIONS
             if getattr(args, name) is not None}
    if args.single_scale:
        given["scales"] = None
    try:
        return StructureWeights(**given)
    except ValueError as error:
        message = str(error)
        for name, option in _STRUCTURE_OPTIONS.items():
            message = message.replace(f"`{name}`", option)
        raise UsageError(message) from None


def _run(args):
    if args.recipe is None:
        args.recipe = args.real_data_recipe if args.data_dir else "small"
    _say(f"keras_sard: {args.recipe} on {args.dataset}, Keras {keras.__version__} on "
         f"{keras.backend.backend()}")
    _check_method(args.method)
    _check_data_dir(args)
    data_options = _data_options(args)
    student_schedule = _schedule(args, _base_schedule(args.recipe))
    ratio = _unlabelled_ratio(args, student_schedule.batch_size)
    result = training.run_experiment(
        args.dataset, args.data_dir, method=args.method, recipe=args.recipe,
        teacher=args.teacher, image_size=args.image_size, **_synthetic_options(args),
        tiny=args.tiny,
        teacher_schedule=_schedule(args, _base_schedule(args.recipe, True), teacher=True),
        student_schedule=student_schedule, seed=args.seed,
        output_dir=args.output_dir, export_formats=args.export,
        num_examples=args.num_examples, data_options=data_options, backup_dir=args.backup_dir,
        log_dir=args.log_dir, unlabelled=args.unlabelled_dir, unlabelled_ratio=ratio or 0.5,
        log=_say, verbose=2)
    _say(result.summary())
    _say(f"Saved {result.teacher_path} and {result.student_path} in {result.seconds:.0f} s")


def _tables(args):
    for method in args.methods or ():
        _check_method(method, "--methods")
    data_dirs = _pairs(args.data_dir, "--data-dir", "FOLDER", os.path.isdir, "is not a folder")
    teachers = _pairs(args.teacher, "--teacher", "FILE", os.path.isfile, "is not a file")
    unlabelled_dirs = _pairs(args.unlabelled_dir, "--unlabelled-dir", "FOLDER", os.path.isdir,
                             "is not a folder")
    datasets = args.datasets or list(tables.DEFAULT_DATASETS)
    for option, given in (("--data-dir", data_dirs), ("--teacher", teachers),
                          ("--unlabelled-dir", unlabelled_dirs)):
        unused = sorted(set(given) - set(datasets))
        if unused:
            raise UsageError(f"{option} names {unused}, which are not in --datasets {datasets}.")
    quick = tables.QUICK if args.quick else {}
    settings = dict(
        recipe=args.recipe, tiny=args.tiny or quick.get("tiny", False),
        image_size=args.image_size or quick.get("image_size"),
        num_examples=args.num_examples or quick.get("num_examples", 64),
        teacher_schedule=_schedule(
            args, quick.get("teacher_schedule") or _base_schedule(args.recipe, True),
            teacher=True),
        student_schedule=_schedule(
            args, quick.get("student_schedule") or _base_schedule(args.recipe)))
    ratio = _unlabelled_ratio(args, settings["student_schedule"].batch_size)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    runs = tables.run_grid(datasets, args.methods or tables.DEFAULT_METHODS, seeds,
                           data_dirs=data_dirs, teachers=teachers, output_dir=args.output_dir,
                           unlabelled_dirs=unlabelled_dirs, unlabelled_ratio=ratio or 0.5,
                           log=_say, **settings)
    paths = tables.write_tables(runs, args.output_dir)
    _say("")
    _say(tables.format_markdown(runs))
    _say(f"Wrote {', '.join(paths)}")


def _pairs(items, option, what, exists, problem):
    """{dataset: path} from DATASET=PATH items, each path checked with `exists`."""
    pairs = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"{option} takes DATASET={what}; got '{item}'.")
        if not exists(path):
            raise UsageError(f"{option} {name}='{path}' {problem}.")
        pairs[name] = path
    return pairs


def _unlabelled_ratio(args, batch_size):
    """The unlabelled share of a batch (--unlabelled-ratio, default 0.5;
    None without --unlabelled-dir, which the ratio needs), refused where it
    leaves a batch of `batch_size` without a labelled or an unlabelled image."""
    if not args.unlabelled_dir:
        if args.unlabelled_ratio is not None:
            raise UsageError("--unlabelled-ratio needs --unlabelled-dir: the images to mix in.")
        return None
    ratio = 0.5 if args.unlabelled_ratio is None else args.unlabelled_ratio
    try:
        unlabelled_count(batch_size, ratio)
    except ValueError:
        count = math.floor(ratio * batch_size + 0.5)
        raise UsageError(
            f"--unlabelled-ratio {ratio:g} of a batch of {batch_size} gives {count} unlabelled "
            f"and {batch_size - count} labelled images; each needs at least 1 (change "
            "--unlabelled-ratio or --batch-size).") from None
    return ratio


def _long_run(args, role):
    """--backup-dir and --log-dir of one model: a sub-folder named after its role."""
    return {option: None if folder is None else os.path.join(folder, role)
            for option, folder in (("backup_dir", args.backup_dir), ("log_dir", args.log_dir))}


def _check_output(path):
    if not path.endswith(".keras"):
        raise UsageError(f"--output must name a .keras file; got '{path}'.")


def _check_method(method, option="--method"):
    try:
        parse_method(method, option)
    except ValueError as error:
        raise UsageError(str(error)) from None


VERBS = {
    "train-teacher": _train_teacher,
    "distill": _distill,
    "evaluate": _evaluate,
    "export": _export,
    "visualize": _visualize,
    "diagnose": _diagnose,
    "run": _run,
    "tables": _tables,
}
"""The handler of each verb: ``VERBS[verb](args)``."""
