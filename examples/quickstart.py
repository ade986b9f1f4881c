"""keras_sard quickstart: what SARD does for a small student, measured on paired seeds.

The setting is that of benchmarks/efficacy.py, scaled down to a few minutes on a
CPU: synthetic nuclei with objects large enough for the tapped strides
(object_scale=4), a teacher trained on 256 images, students with 24 labels.

1. Trains a teacher (the "small" recipe: conv pyramid 32-64-128-256 with a
   UPerNet decoder) and prints its structure report: how much SARD's weight
   map W favours object boundaries on each tapped level.
2. For each seed, trains the same student (16-32-64-128, same initial
   weights, same batches) three ways: from scratch, with uniform feature
   distillation (sard_uniform: SARD with W = 1) and with SARD.
3. Scores every model after re-estimating its BatchNorm statistics (short
   schedules leave them stale) and prints the paired differences
   SARD − sard_uniform (what W adds) and SARD − scratch, as the mean over
   seeds ± a 95 % Student's t interval.
4. Saves the last seed's SARD student (.keras) and exports it as a TensorFlow
   SavedModel, checking that the artefact gives the Keras model's outputs.

    python examples/quickstart.py                 # TensorFlow; about 5 minutes on 2 cores
    python examples/quickstart.py --backend jax --seeds 5 --output-dir /tmp/quickstart

An interval that contains 0 means "no measurable difference with this many
seeds"; docs/results.md has the full benchmark.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("scratch", "sard_uniform", "sard")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
    parser.add_argument("--seeds", type=int, default=3,
                        help="paired seeds, at least 2 for an interval (default 3).")
    parser.add_argument("--steps", type=int, default=150,
                        help="training steps of each student (default 150); the teacher "
                             "trains four times as many.")
    parser.add_argument("--image-size", type=int, default=64,
                        help="square image side, a multiple of 32 (default 64).")
    parser.add_argument("--output-dir", default="runs/quickstart",
                        help="where the SARD student is saved and exported "
                             "(default runs/quickstart).")
    # Dataset sizes; the tests shrink them to run in seconds.
    parser.add_argument("--teacher-examples", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--labelled-examples", type=int, default=24, help=argparse.SUPPRESS)
    parser.add_argument("--val-examples", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.image_size < 32 or args.image_size % 32:
        parser.error(f"--image-size must be a positive multiple of 32 (the models' stride 32); "
                     f"got {args.image_size}.")
    if args.seeds < 2:
        parser.error(f"--seeds must be ≥ 2 (an interval needs two paired differences); "
                     f"got {args.seeds}.")
    if args.steps < 1:
        parser.error(f"--steps must be ≥ 1; got {args.steps}.")
    if not args.batch_size <= args.labelled_examples <= args.teacher_examples:
        parser.error("need batch size ≤ labelled examples ≤ teacher examples; got "
                     f"{args.batch_size}, {args.labelled_examples}, {args.teacher_examples}.")
    return args


def t_interval(values):
    """Mean and half-width of the 95 % Student's t interval of the mean."""
    import numpy as np
    from scipy import stats

    values = np.asarray(values, float)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean(), half


def main(argv=None):
    args = parse_args(argv)
    # Keras reads its backend when first imported: set it before.
    os.environ["KERAS_BACKEND"] = args.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if (ROOT / "keras_sard").is_dir() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run from a checkout: use its keras_sard

    import keras

    from keras_sard.data import make_pipeline
    from keras_sard.data.synthetic import OBJECT_SCALE_LARGE, make_synthetic
    from keras_sard.diagnostics import structure_report
    from keras_sard.models import get_recipe
    from keras_sard.training import (Schedule, Task, distill, evaluate, save_model,
                                     train_segmenter)

    start = time.perf_counter()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notes
    size = (args.image_size, args.image_size)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{size[0]}×{size[1]} images, {args.seeds} seeds, {args.steps} steps per student")

    # ------------------------------------------------------------------ data
    # Nuclei of about 15-40 px: objects span several cells at stride 4, so
    # the teacher's features can show their boundaries (the paper's premise).
    def nuclei(count, split):
        return make_synthetic("nuclei", count, size, seed=0, split=split,
                              object_scale=OBJECT_SCALE_LARGE)

    val = nuclei(args.val_examples, "val")
    teacher_task = Task("nuclei", nuclei(args.teacher_examples, "train"), val, size, cache=True)
    # The students' 24 labelled images are the first of the teacher's.
    student_task = Task("nuclei", nuclei(args.labelled_examples, "train"), val, size, cache=True)

    def schedule(steps):
        # recalibrate_batchnorm=True: fair BatchNorm. A few hundred steps
        # leave part of the moving statistics at their initial values, so
        # training ends by re-estimating them on 16 training batches (drawn
        # with the seed: the same batches for every model of a seed).
        return Schedule(steps_per_epoch=steps, batch_size=args.batch_size, learning_rate=1e-3,
                        gradient_accumulation_steps=1, recalibrate_batchnorm=True)

    def score(model):
        scores = evaluate(model, val, args.batch_size)
        return 100 * scores["miou"], 100 * scores["biou"]

    recipe = get_recipe("small")

    # --------------------------------------------------------------- teacher
    print(f"\n[1/2] teacher: {4 * args.steps} steps on {args.teacher_examples} labelled images")
    keras.utils.set_random_seed(0)
    teacher = recipe.build_teacher(2, size, tiny=args.tiny)
    train_segmenter(teacher, teacher_task, schedule(4 * args.steps), verbose=0)
    miou, biou = score(teacher)
    print(f"teacher: mIoU {miou:.2f}, bIoU {biou:.2f}")
    report = structure_report(teacher, recipe.teacher_layers,
                              make_pipeline(val, args.batch_size, training=False))
    print(report)

    # -------------------------------------------------------------- students
    print(f"\n[2/2] students: {args.steps} steps on {args.labelled_examples} labelled images")
    print(f"{'seed':<6}{'method':<14}{'mIoU':>7}{'bIoU':>8}")
    results = {}  # (method, seed) -> (mIoU, bIoU)
    for seed in range(args.seeds):
        for method in METHODS:
            keras.utils.set_random_seed(seed)  # same initial student (and SARD heads) per seed
            student = recipe.build_student(2, size, tiny=args.tiny)
            # distill wraps keras_sard.Distiller with the method's losses on the
            # four levels (strides 4-32); "scratch" trains on the labels alone.
            distill(teacher, student, student_task, method, schedule(args.steps),
                    recipe.teacher_layers, recipe.student_layers, seed=seed, verbose=0)
            results[method, seed] = score(student)
            print(f"{seed:<6}{method:<14}{results[method, seed][0]:>7.2f}"
                  f"{results[method, seed][1]:>8.2f}", flush=True)
    sard_student = student  # the last one trained: SARD, last seed

    # ------------------------------------------------ paired differences
    print(f"\npaired differences (points), mean ± 95 % t interval over {args.seeds} seeds")
    for other in ("sard_uniform", "scratch"):
        for index, metric in enumerate(("mIoU", "bIoU")):
            diffs = [results["sard", s][index] - results[other, s][index]
                     for s in range(args.seeds)]
            mean, half = t_interval(diffs)
            verdict = ("SARD better" if mean - half > 0 else f"{other} better"
                       if mean + half < 0 else "no measurable difference")
            print(f"SARD − {other:<13}{metric}  {mean:+6.2f} ± {half:5.2f}  "
                  f"[{mean - half:+.2f}, {mean + half:+.2f}]  {verdict}")

    # ---------------------------------------------------------------- export
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras_file = save_model(sard_student, output_dir / "sard_student.keras")
    print(f"\nsaved {keras_file} (any backend: keras_sard.training.load_model(path))")
    export_saved_model(sard_student, output_dir / "sard_student_savedmodel", student_task)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def export_saved_model(model, path, task):
    """Export `model` as a SavedModel and check its outputs against Keras'."""
    from keras_sard.export import export_student

    report = export_student(model, str(path), "saved_model", sample_inputs=task.sample_images(8))
    print(f"exported {path} (SavedModel, endpoint 'serve'); "
          f"max |SavedModel − Keras| on a batch: {report.max_abs_diff:.2e}")


if __name__ == "__main__":
    sys.exit(main())
