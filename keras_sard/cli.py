"""The ``keras-sard`` command line.

Verbs (``keras-sard VERB --help`` for each)::

    keras-sard train-teacher --output run/teacher.keras
    keras-sard distill --teacher run/teacher.keras --method sard --output run/student.keras
    keras-sard evaluate --model run/student.keras
    keras-sard export --model run/student.keras --format tflite
    keras-sard visualize --teacher run/teacher.keras --student run/student.keras
    keras-sard run --dataset monuseg --data-dir data/monuseg --method sard
    keras-sard tables --quick

Every verb works on the synthetic data and the "small" recipe by default, so
each runs on a CPU as it is.  ``--dataset NAME --data-dir FOLDER`` points a
verb at a real dataset; without ``--data-dir`` it runs on synthetic data
standing in for it and says where to download the real one.  ``--backend``
(before or after the verb) picks Keras' backend.  Bad input ends with a
one-line error and exit code 2.

The example scripts (``examples/<dataset>.py``) are the ``run`` verb with
each dataset's defaults (`run_script`).  The work itself is done by
`keras_sard.training` and `keras_sard.tables`.
"""

import argparse
import dataclasses
import os
import subprocess
import sys

from keras_sard.data.registry import DATASET_INFO
from keras_sard.export.formats import FORMATS as EXPORT_FORMATS
from keras_sard.methods import METHOD_INFO, TABLE_METHODS, parse_method
from keras_sard.models.recipes import RECIPE_INFO, get_recipe
from keras_sard.validation import model_image_size

BACKENDS = ("tensorflow", "jax", "torch")
_REEXEC_MARK = "_KERAS_SARD_CLI_BACKEND"


class UsageError(ValueError):
    """Bad command-line input (reported in one line, exit code 2)."""


# ------------------------------------------------------------------ parser

# Help texts, from the registries of datasets, methods and recipes.
_DATASET_HELP = (
    f"{', '.join(DATASET_INFO)} (default: synthetic); case, '-' and '_' do not matter")
_METHOD_HELP = (
    "a method, or several joined by '+' (sard+kd): "
    + "; ".join(f"{m.name}: {m.description}" for m in METHOD_INFO.values()))
_RECIPE_HELP = (
    "teacher → student pair (default: small; the example scripts use the paper's on real "
    "data): " + "; ".join(f"{r.name}: {r.description}" for r in RECIPE_INFO.values()))


def _schedule_text(student, teacher):
    """One recipe's schedules in words: the student's, and where the teacher's differs."""
    accumulation = student.gradient_accumulation_steps
    text = (f"lr {student.learning_rate:g}, weight decay {student.weight_decay:g}, batch "
            f"{student.batch_size}, {accumulation if accumulation > 1 else 'no'} accumulated "
            f"steps, {student.epochs} epoch{'s' if student.epochs > 1 else ''}")
    changed = [f"{field.name.replace('_', ' ')} {getattr(teacher, field.name)}"
               for field in dataclasses.fields(teacher)
               if getattr(teacher, field.name) != getattr(student, field.name)]
    return text + (f" (teacher: {', '.join(changed)})" if changed else "")


def _schedule_help():
    by_schedule = {}
    for recipe in RECIPE_INFO.values():
        text = _schedule_text(recipe.student_schedule, recipe.teacher_schedule)
        by_schedule.setdefault(text, []).append(recipe.name)
    return "AdamW with a cosine decay; defaults: the recipe's: " + "; ".join(
        f"{', '.join(names)}: {text}" for text, names in by_schedule.items())


_SCHEDULE_HELP = _schedule_help()


def _bounded(convert, lowest, inclusive, kind):
    """An argparse `type` converting with `convert` and refusing values below
    `lowest` (or equal to it, when not `inclusive`)."""
    bound = f"{'≥' if inclusive else '>'} {lowest}"

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind} {bound}, got {text!r}") from None
        if not (value >= lowest if inclusive else value > lowest):
            raise argparse.ArgumentTypeError(f"expected {kind} {bound}, got {text!r}")
        return value

    return parse


_positive = _bounded(int, 1, True, "an integer")
_non_negative = _bounded(int, 0, True, "an integer")
_positive_float = _bounded(float, 0, False, "a number")


def _backend_parent():
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--backend", choices=BACKENDS, default=argparse.SUPPRESS,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    return parent


def _data_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("data")
    group.add_argument("--dataset", default="synthetic", help=_DATASET_HELP)
    group.add_argument("--data-dir", help="the dataset's folder; without it, synthetic data "
                                          "stands in and the download instructions are shown")
    group.add_argument("--image-size", type=_positive,
                       help="training crop = model input, a multiple of 32 (default: the "
                            "model's, else the dataset's usual crop; 64 for synthetic data)")
    group.add_argument("--num-examples", type=_positive, default=64,
                       help="synthetic data: training images (validation: a quarter) "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=_non_negative, default=0, help="default: %(default)s")
    return parent


def _schedule_parent(teacher_epochs=False):
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("schedule", _SCHEDULE_HELP)
    group.add_argument("--epochs", type=_positive)
    if teacher_epochs:
        group.add_argument("--teacher-epochs", type=_positive,
                           help="epochs of the teacher (default: --epochs)")
    group.add_argument("--steps-per-epoch", type=_positive,
                       help="default: one pass over the training images")
    group.add_argument("--batch-size", type=_positive)
    group.add_argument("--learning-rate", type=_positive_float)
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--accumulation-steps", type=_positive,
                       help="gradient accumulation steps (1: none)")
    return parent


def _model_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("models")
    group.add_argument("--recipe", default="small", help=_RECIPE_HELP)
    group.add_argument("--tiny", action="store_true",
                       help="few-channel versions of the recipe's models (tests)")
    return parent


def _method_argument(parser, default="sard"):
    parser.add_argument("--method", default=default, help=_METHOD_HELP + " (default: %(default)s)")


def _training_parents(teacher_epochs=False):
    # Fresh parents for each verb: argparse shares a parent's actions between
    # its children, so one verb's set_defaults would change another's.
    return [_backend_parent(), _data_parent(), _schedule_parent(teacher_epochs), _model_parent()]


def build_parser(prog="keras-sard"):
    """The argparse parser of every verb."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Structure-Aware Representation Distillation (SARD) for "
                               "tiny-dense segmentation, in Keras 3.",
        epilog="Run 'keras-sard VERB --help' for a verb's options.")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    parser.verb_parsers = verbs.choices  # {verb: its parser}, for `run_script`

    p = verbs.add_parser("train-teacher", parents=_training_parents(),
                         help="train the recipe's teacher, save it as .keras",
                         description="Train the recipe's teacher on the task loss and save it.")
    p.add_argument("--output", default="keras_sard_run/teacher.keras",
                   help="the .keras file to write (default: %(default)s)")
    p.set_defaults(run=_train_teacher)

    p = verbs.add_parser("distill", parents=_training_parents(),
                         help="distil a student from a trained teacher",
                         description="Distil a student from a trained teacher (.keras) with "
                                     "a method, save the student, print its mIoU and bIoU.")
    p.add_argument("--teacher", required=True, help="the trained teacher (.keras)")
    _method_argument(p)
    p.add_argument("--student",
                   help="the student: a backbone name of keras_sard.models.build_segmenter "
                        "(small, resnet50, swin_tiny, ...) or a .keras file to start from "
                        "(default: the recipe's student)")
    p.add_argument("--output", default="keras_sard_run/student.keras",
                   help="the .keras file to write (default: %(default)s)")
    p.set_defaults(run=_distill)

    p = verbs.add_parser("evaluate", parents=[_backend_parent(), _data_parent()],
                         help="mIoU and bIoU of a model on the validation split",
                         description="mIoU and Boundary IoU (%%) of a model on the validation "
                                     "split, at full resolution (sliding windows where images "
                                     "are larger than the model's input).")
    p.add_argument("--model", required=True, help="the model (.keras)")
    p.add_argument("--batch-size", type=_positive, default=8, help="default: %(default)s")
    p.set_defaults(run=_evaluate)

    p = verbs.add_parser("export", parents=[_backend_parent(), _data_parent()],
                         help="export a model (TFLite, ONNX, SavedModel) and check it",
                         description="Export a model and compare the artefact's outputs with "
                                     "the Keras model's on training crops (which also "
                                     "calibrate tflite_int8).")
    p.add_argument("--model", required=True, help="the model (.keras)")
    p.add_argument("--format", default="tflite", choices=EXPORT_FORMATS,
                   help="default: %(default)s")
    p.add_argument("--output", help="the file (a folder for saved_model) to write (default: "
                                    "beside the model, e.g. student.tflite)")
    p.set_defaults(run=_export)

    p = verbs.add_parser("visualize", parents=[_backend_parent(), _data_parent()],
                         help="PNG figures of the structure map and of predictions",
                         description="Draw, for validation images, the teacher's structure "
                                     "map (E, C, D, W) at one level, and the predictions of "
                                     "the teacher and students with their boundary errors.")
    p.add_argument("--teacher", required=True, help="the teacher (.keras)")
    p.add_argument("--student", action="append", default=[],
                   help="a student (.keras); repeat to compare several")
    p.add_argument("--level", type=int, choices=(1, 2, 3, 4), default=1,
                   help="the teacher level whose structure map is drawn (default: 1, stride 4)")
    p.add_argument("--num-images", type=_positive, default=2, help="default: %(default)s")
    p.add_argument("--output-dir", default="keras_sard_figures", help="default: %(default)s")
    p.set_defaults(run=_visualize)

    p = verbs.add_parser("run", parents=_training_parents(teacher_epochs=True),
                         help="the whole workflow: teacher, distillation, scores, export",
                         description=_RUN_DESCRIPTION)
    p.add_argument("--teacher", help="a trained teacher (.keras); default: train one")
    _method_argument(p)
    p.add_argument("--export", nargs="*", default=["tflite"], choices=EXPORT_FORMATS,
                   metavar="FORMAT", help=f"formats of the student: {', '.join(EXPORT_FORMATS)} "
                                          "(default: tflite; none: give no format)")
    p.add_argument("--output-dir", default="keras_sard_run",
                   help="where the models and exports go (default: %(default)s)")
    p.set_defaults(run=_run, recipe=None, real_data_recipe="small")

    p = verbs.add_parser("tables",
                         parents=[_backend_parent(), _schedule_parent(True), _model_parent()],
                         help="the paper's tables: methods × datasets × seeds",
                         description=_TABLES_DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+",
                   help="columns (default: synthetic:fragments synthetic:nuclei); a dataset "
                        "without --data-dir runs on synthetic data standing in for it")
    p.add_argument("--data-dir", action="append", default=[], metavar="DATASET=FOLDER",
                   help="a dataset's folder; repeat for several")
    p.add_argument("--teacher", action="append", default=[], metavar="DATASET=FILE",
                   help="a dataset's trained teacher (.keras) instead of training one")
    p.add_argument("--methods", nargs="+",
                   help="rows under the teacher, each a method as for --method (default: "
                        f"{' '.join(TABLE_METHODS)})")
    p.add_argument("--seeds", nargs="+", type=_non_negative, help="default: 0 1 2")
    p.add_argument("--image-size", type=_positive, help="training crop (default: the "
                                                        "dataset's; 64 for synthetic data)")
    p.add_argument("--num-examples", type=_positive,
                   help="synthetic data: training images (default: 64)")
    p.add_argument("--quick", action="store_true",
                   help="check the plumbing in minutes: tiny models, 32×32 images, 8 "
                        "images, 2 steps per model, seed 0 (the scores mean nothing)")
    p.add_argument("--output-dir", default="keras_sard_tables",
                   help="where table.md, table.csv and runs.csv go (default: %(default)s)")
    p.set_defaults(run=_tables)
    return parser


_RUN_DESCRIPTION = (
    "Train the teacher (or load --teacher), distil the student with --method, print the mIoU "
    "and bIoU of both, save both as .keras and export the student.")

_TABLES_DESCRIPTION = """\
Reproduce the layout of the paper's Tables 6-7: one teacher per dataset, a student per
method and seed, mIoU and bIoU (%) as mean ± std over seeds, and Δ vs CWD. Writes
table.md, table.csv and runs.csv (every run) into --output-dir.

  keras-sard tables                          # synthetic data, 3 seeds (< 25 min, 2 cores)
  keras-sard tables --datasets monuseg loveda --data-dir monuseg=data/MoNuSeg \\
      --data-dir loveda=data/LoveDA --recipe swin_l->swin_t --epochs 40
"""


# ---------------------------------------------------------------- handlers


def _say(text):
    print(text, flush=True)


def _base_schedule(recipe, teacher=False):
    """The recipe's own schedule of its teacher or student."""
    recipe = get_recipe(recipe)
    return recipe.teacher_schedule if teacher else recipe.student_schedule


def _schedule(args, base, teacher=False):
    """`base` with the schedule flags given on the command line."""
    epochs = getattr(args, "teacher_epochs", None) if teacher else None
    return base.replace(
        epochs=epochs or args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, gradient_accumulation_steps=args.accumulation_steps)


def _task(args, image_size=None):
    """The data of `args`, synthetic stand-in (with its notice) without --data-dir."""
    from keras_sard import training

    image_size = args.image_size or image_size
    if args.data_dir is None:
        task, notice = training.stand_in_task(args.dataset, image_size,
                                              num_examples=args.num_examples, seed=args.seed)
        if notice:
            _say(notice)
        return task
    if not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir '{args.data_dir}' is not a folder.")
    return training.load_task(args.dataset, args.data_dir, image_size, seed=args.seed)


def _model_size(model):
    size = model_image_size(model)
    return None if size is None or None in size else size


def _scores(name, scores):
    _say(f"{name}: mIoU {100 * scores['miou']:.1f}, bIoU {100 * scores['biou']:.1f}")


def _train_teacher(args):
    import keras

    from keras_sard import training

    recipe = get_recipe(args.recipe)
    _check_output(args.output)
    task = _task(args)
    schedule = _schedule(args, _base_schedule(args.recipe, teacher=True))
    keras.utils.set_random_seed(args.seed)
    teacher = recipe.build_teacher(task.num_classes, task.image_size, tiny=args.tiny)
    _say(f"Training the teacher of '{args.recipe}' on {task.train.name}: {schedule}")
    training.train_segmenter(teacher, task, schedule, seed=args.seed, verbose=2)
    training.save_model(teacher, args.output)
    _scores("Teacher", training.evaluate(teacher, task.val, schedule.batch_size))
    _say(f"Saved {args.output}")


def _student(args, task):
    from keras_sard.training import load_model

    if args.student and args.student.endswith(".keras"):
        return load_model(args.student)
    recipe = get_recipe(args.recipe)
    if args.student:  # a backbone name: the recipe with another student
        recipe = dataclasses.replace(recipe, student_backbone=args.student)
    return recipe.build_student(task.num_classes, task.image_size, tiny=args.tiny)


def _distill(args):
    import keras

    from keras_sard import training

    _check_output(args.output)
    _check_method(args.method)
    teacher = training.load_model(args.teacher)
    task = _task(args, _model_size(teacher))
    keras.utils.set_random_seed(args.seed)
    student = _student(args, task)
    schedule = _schedule(args, _base_schedule(args.recipe))
    _say(f"Distilling '{student.name}' from '{args.teacher}' with '{args.method}': {schedule}")
    training.distill(teacher, student, task, args.method, schedule, seed=args.seed, verbose=2)
    training.save_model(student, args.output)
    _scores(f"Student ({args.method})", training.evaluate(student, task.val, schedule.batch_size))
    _say(f"Saved {args.output}")


def _evaluate(args):
    from keras_sard import training

    model = training.load_model(args.model)
    task = _task(args, _model_size(model))
    _scores(f"{args.model} on {task.val.name} ({task.val.split})",
            training.evaluate(model, task.val, args.batch_size))


def _export(args):
    from keras_sard import training

    model = training.load_model(args.model)
    task = _task(args, _model_size(model))
    path = args.output or training.export_path(os.path.splitext(args.model)[0], args.format)
    _say(f"Exported {training.export(model, task, args.format, path)}")


def _visualize(args):
    import numpy as np

    from keras_sard import training
    from keras_sard.data import denormalize, make_pipeline
    from keras_sard.models import level_names
    from keras_sard.visualize import plot_predictions, plot_structure

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


def _run(args):
    import keras

    from keras_sard import training

    if args.recipe is None:
        args.recipe = args.real_data_recipe if args.data_dir else "small"
    _say(f"keras_sard: {args.recipe} on {args.dataset}, Keras {keras.__version__} on "
         f"{keras.backend.backend()}")
    _check_method(args.method)
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir '{args.data_dir}' is not a folder.")
    result = training.run_experiment(
        args.dataset, args.data_dir, method=args.method, recipe=args.recipe,
        teacher=args.teacher, image_size=args.image_size, tiny=args.tiny,
        teacher_schedule=_schedule(args, _base_schedule(args.recipe, True), teacher=True),
        student_schedule=_schedule(args, _base_schedule(args.recipe)), seed=args.seed,
        output_dir=args.output_dir, export_formats=args.export,
        num_examples=args.num_examples, log=_say, verbose=2)
    _say(result.summary())
    _say(f"Saved {result.teacher_path} and {result.student_path} in {result.seconds:.0f} s")


def _tables(args):
    from keras_sard import tables

    for method in args.methods or ():
        _check_method(method, "--methods")
    data_dirs = _pairs(args.data_dir, "--data-dir", "FOLDER", os.path.isdir, "is not a folder")
    teachers = _pairs(args.teacher, "--teacher", "FILE", os.path.isfile, "is not a file")
    datasets = args.datasets or list(tables.DEFAULT_DATASETS)
    for option, given in (("--data-dir", data_dirs), ("--teacher", teachers)):
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
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    runs = tables.run_grid(datasets, args.methods or tables.DEFAULT_METHODS, seeds,
                           data_dirs=data_dirs, teachers=teachers, output_dir=args.output_dir,
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


def _check_output(path):
    if not path.endswith(".keras"):
        raise UsageError(f"--output must name a .keras file; got '{path}'.")


def _check_method(method, option="--method"):
    try:
        parse_method(method, option)
    except ValueError as error:
        raise UsageError(str(error)) from None


# ------------------------------------------------------------------ backend


def _use_backend(backend, argv_given):
    """Make Keras run on `backend`: set KERAS_BACKEND if Keras is not imported
    yet; otherwise (``import keras_sard`` imports it) rerun this command in a
    new process with it set.  Returns that process's exit code, or None."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        return None
    import keras

    current = keras.backend.backend()
    if current == backend:
        return None
    if argv_given or os.environ.get(_REEXEC_MARK) == backend:
        raise UsageError(f"--backend {backend}: Keras already runs on {current} in this "
                         f"process; set KERAS_BACKEND={backend} before Python starts instead.")
    env = dict(os.environ, KERAS_BACKEND=backend, **{_REEXEC_MARK: backend})
    return subprocess.call([sys.executable, *sys.orig_argv[1:]], env=env)


def _execute(parser, argv):
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) or a usage error argparse printed (2)
        return exit.code
    label = parser.prog
    if hasattr(parser, "verb_parsers"):
        label += f" {args.verb}"
    try:
        if getattr(args, "backend", None):
            code = _use_backend(args.backend, argv is not None)
            if code is not None:
                return code
        args.run(args)
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError) as error:
        message = str(error).strip() or type(error).__name__
        print(f"{label}: error: {message}", file=sys.stderr, flush=True)
        return 2
    except RuntimeError as error:
        from keras_sard.export import ExportMismatchError

        if not isinstance(error, ExportMismatchError):
            raise
        print(f"{label}: error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv=None):
    """Run ``keras-sard`` with `argv` (default: the command line); returns
    the exit code (0, 1 for an export that disagrees with Keras, 2 for bad
    input)."""
    return _execute(build_parser(), argv)


def run_script(verb, argv=None, *, description=None, **defaults):
    """One verb as a script of its own (the example scripts): its options,
    with `defaults` replacing the verb's, and `description` as its help."""
    parser = build_parser().verb_parsers[verb]
    parser.prog = os.path.basename(sys.argv[0]) if argv is None else verb
    parser.description = description or parser.description
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(verb=verb, **defaults)
    return _execute(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
