"""What ``keras-sard`` accepts: the parser of every verb, with help texts
built from the registries of datasets (`keras_sard.data.registry`), methods
(`keras_sard.methods`), recipes and their schedules
(`keras_sard.models.recipes`) and export formats
(`keras_sard.export.formats`).  No Keras import: ``--help`` is instant and
``--backend`` can still choose the backend.
"""

import argparse
import dataclasses

from keras_sard.data.registry import DATASET_INFO
from keras_sard.export.formats import FORMATS as EXPORT_FORMATS
from keras_sard.methods import METHOD_INFO, TABLE_METHODS
from keras_sard.models.recipes import RECIPE_INFO
from keras_sard.schedules import Schedule

__all__ = ["BACKENDS", "UsageError", "build_parser"]

BACKENDS = ("tensorflow", "jax", "torch")
RECALIBRATE_BN = {"auto": None, "on": True, "off": False}
"""``--recalibrate-bn``'s choices: their `Schedule.recalibrate_batchnorm`."""


class UsageError(ValueError):
    """Bad command-line input (reported in one line, exit code 2)."""


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


def _fraction(text):
    """An argparse `type`: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


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
                                          "stands in and the download instructions are shown. "
                                          "Every file is checked before training (readable, "
                                          "each mask the size of its image)")
    group.add_argument("--num-classes", type=_positive,
                       help="--dataset folder (required with --data-dir): the classes its masks "
                            "hold, as ids 0..K-1 (255: ignored)")
    group.add_argument("--image-size", type=_positive,
                       help="training crop = model input, a multiple of 32 (default: the "
                            "model's, else the dataset's usual crop; 64 for synthetic data)")
    group.add_argument("--num-examples", type=_positive, default=64,
                       help="synthetic data: training images (validation: a quarter) "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=_non_negative, default=0, help="default: %(default)s")
    group.add_argument("--object-scale", type=_positive_float,
                       help="synthetic data (no --data-dir): multiply the objects' size "
                            "(default 1: a few to ~15 px; 4: about 16-50 px, spanning several "
                            "cells at stride 4)")
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
    _batchnorm_arguments(group)
    return parent


def _batchnorm_arguments(group):
    group.add_argument("--recalibrate-bn", choices=RECALIBRATE_BN, default="auto",
                       help="re-estimate each trained model's BatchNorm statistics on training "
                            "batches before it is scored and saved: auto (default) where the "
                            "schedule is too short for the moving averages to forget their "
                            "initial values (keras_sard.batchnorm.has_stale_batchnorm), on, off")
    group.add_argument("--recalibration-batches", type=_positive,
                       help="training batches the statistics are averaged over (default: "
                            f"{Schedule().recalibration_batches})")


def _model_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("models")
    group.add_argument("--recipe", default="small", help=_RECIPE_HELP)
    group.add_argument("--tiny", action="store_true",
                       help="few-channel versions of the recipe's models (tests)")
    return parent


def _method_argument(parser, default="sard"):
    parser.add_argument("--method", default=default, help=_METHOD_HELP + " (default: %(default)s)")


def _long_run_parent():
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("long runs")
    group.add_argument("--backup-dir", metavar="FOLDER",
                       help="back the training up here after every epoch (teacher/, student/); "
                            "the same command after an interruption resumes from it and ends "
                            "with the weights of an uninterrupted run; removed when done")
    group.add_argument("--log-dir", metavar="FOLDER",
                       help="TensorBoard logs (teacher/, student/): every loss term, metric and "
                            "the learning rate per epoch; with SARD, the teacher's structure "
                            "map and the student's predictions (student/images)")
    return parent


def _unlabelled_arguments(parser):
    group = parser.add_argument_group(
        "unlabelled images", "distil on images without labels too, mixed into every student "
                             "batch (the task loss and the scores skip them; SARD, CWD and MGD "
                             "distil on them; BatchNorm is re-estimated on labelled batches)")
    group.add_argument("--unlabelled-dir", metavar="FOLDER",
                       help="a folder of images (.png .jpg .jpeg .tif .tiff .bmp), each checked "
                            "before training: readable, and grey or colour as the labelled ones")
    group.add_argument("--unlabelled-ratio", type=_fraction, metavar="R",
                       help="the unlabelled share of each batch, round(R x batch size) images "
                            "(default: 0.5)")


def _training_parents(teacher_epochs=False):
    # Fresh parents for each verb: argparse shares a parent's actions between
    # its children, so one verb's set_defaults would change another's.
    return [_backend_parent(), _data_parent(), _schedule_parent(teacher_epochs), _model_parent(),
            _long_run_parent()]


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
    _unlabelled_arguments(p)

    p = verbs.add_parser("evaluate", parents=[_backend_parent(), _data_parent()],
                         help="mIoU and bIoU of a model on the validation split",
                         description="mIoU and Boundary IoU (%%) of a model on the validation "
                                     "split, at full resolution (sliding windows where images "
                                     "are larger than the model's input).")
    p.add_argument("--model", required=True, help="the model (.keras)")
    p.add_argument("--batch-size", type=_positive, default=8, help="default: %(default)s")

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

    _diagnose_parser(verbs)

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
    _unlabelled_arguments(p)
    p.set_defaults(recipe=None, real_data_recipe="small")

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
    p.add_argument("--unlabelled-dir", action="append", default=[], metavar="DATASET=FOLDER",
                   help="a dataset's unlabelled images, mixed into every student batch of "
                        "every method (scratch too); repeat for several")
    p.add_argument("--unlabelled-ratio", type=_fraction, metavar="R",
                   help="the unlabelled share of each student batch (default: 0.5)")
    return parser


def _diagnose_parser(verbs):
    p = verbs.add_parser("diagnose", parents=[_backend_parent(), _data_parent()],
                         help="does W weight anything on this data? the structure report",
                         description=_DIAGNOSE_DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="the trained teacher (.keras)")
    p.add_argument("--levels", nargs="+", metavar="LAYER",
                   help="teacher layers to measure (default: its four level layers, "
                        "<name>_level_1..4)")
    p.add_argument("--num-images", type=_positive, default=16,
                   help="validation crops to average over (default: %(default)s)")
    group = p.add_argument_group(
        "structure map", "the StructureWeights arguments you give SARDLoss, so the report "
                         "measures the W you train with (default: StructureWeights' defaults)")
    group.add_argument("--padding", help="how E's and C's filters see past the border "
                                         "(see keras_sard.structure.StructureWeights)")
    scales = group.add_mutually_exclusive_group()
    scales.add_argument("--scales", nargs="+", type=_positive_float, metavar="SIGMA",
                        help="σ of the multi-scale E (e.g. 1 2 4 8)")
    scales.add_argument("--single-scale", action="store_true",
                        help="the single-scale E (scales=None)")
    group.add_argument("--radius", type=_positive, help="r of D's (2r+1)² window")
    group.add_argument("--density", help="how D is computed: exact or variance")


_DIAGNOSE_DESCRIPTION = """Measure, per teacher level, the structure map W SARD weights the feature loss with:
its effective pixel fraction (1.0: uniform), max/mean and, against the labels' boundary
band, its boundary concentration (1.0: ignores boundaries), the ceiling any W could
reach and the share of cells holding a boundary; then a verdict per level ("W is nearly
uniform here: SARD will behave like uniform feature distillation", ...). Images are
un-augmented crops of the validation split at the teacher's input size.

  keras-sard diagnose --teacher run/teacher.keras --object-scale 4
  keras-sard diagnose --teacher t.keras --dataset monuseg --data-dir data/MoNuSeg --radius 3
"""

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
