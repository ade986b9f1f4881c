"""Benchmark: one SARD training step against its floor and against keras.distillation.

The same student (`build_small_segmenter`, widths 16-32-64-128) is trained
under the same teacher (widths 32-64-128-256) on the same batch by:

- SARD: `keras_sard.Distiller` with `SARDLoss` on the four levels (strides
  4-32) and the task loss (cross-entropy + Dice), one `train_on_batch`; once
  with the defaults (exact D) and once with ``density="variance"``;
- the floor: one teacher inference plus one student training step with the
  task loss only (two separately compiled calls, times added): no
  distillation can cost less;
- keras: `keras.distillation.Distiller` with plain MSE feature distillation on
  the same four level pairs.  Its losses cannot hold trainable layers, so the
  student map is projected to the teacher's channels by a fixed random matrix
  (SARD trains that 1×1 projection); ``student_loss_weight`` 0.5;
- for the machinery alone: `keras_sard.Distiller` with that same plain MSE
  (``SARDLoss(weighting="uniform", alignment_weight=0)``).

Goals printed: SARD ≤ 1.10× the floor, SARD ≥ 1.4× faster than keras'.
Timings are medians of ``--repeats`` steps after two warm-up steps (the first
compiles), the contenders taking turns step by step; every step is compiled with XLA on TensorFlow and JAX
(``jit_compile=True``) and runs eagerly on PyTorch.

    python benchmarks/distill_step.py --quick
    python benchmarks/distill_step.py --all-backends
"""

import argparse
import sys

from common import (
    add_backend_arguments,
    apply_quick,
    compile_forward,
    compile_mode,
    describe_machine,
    interleaved_medians,
    run_all_backends,
    select_backend,
    timed,
    verdict,
)

FLOOR_GOAL = 1.10  # SARD step ≤ 1.10× (teacher inference + student step)
KERAS_GOAL = 1.4  # keras.distillation step ≥ 1.4× the SARD step
TEACHER_WIDTHS = (32, 64, 128, 256)
STUDENT_WIDTHS = (16, 32, 64, 128)
NUM_CLASSES = 3
QUICK = {"image_size": 32, "batch": 2, "repeats": 3}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128,
                        help="square input side, a multiple of 32 (default 128).")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps (median).")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 32×32, batch 2, 3 repeats (explicit flags still win).")
    args = parser.parse_args(argv)
    apply_quick(args, argv, QUICK)
    if args.image_size % 32 or args.image_size < 32:
        parser.error(f"--image-size must be a positive multiple of 32; got {args.image_size}.")
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be ≥ 1.")
    return args


def projected_feature_mse(teacher_layer, student_layer, student_channels, teacher_channels, seed):
    """keras.distillation's `FeatureDistillation("mse")` after a fixed random
    1×1 projection of the student map to the teacher's channels."""
    import keras
    import numpy as np

    matrix = np.random.default_rng(seed).normal(size=(student_channels, teacher_channels))
    matrix = (matrix / np.sqrt(student_channels)).astype("float32")

    class ProjectedFeatureMSE(keras.distillation.FeatureDistillation):
        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            projected = keras.ops.matmul(student_outputs, matrix)
            return super().compute_loss(teacher_outputs, projected, **kwargs)

    return ProjectedFeatureMSE("mse", teacher_layer, student_layer)


def main(argv):
    args = parse_args(argv)
    if args.all_backends:
        return run_all_backends(__file__, argv)
    backend = select_backend(args)
    jit = not args.no_jit

    import keras
    import numpy as np

    from keras_sard import Distiller
    from keras_sard.losses import SARDLoss, SegmentationLoss
    from keras_sard.models import build_small_segmenter, level_names

    jit_compile = jit and backend != "torch"
    print(f"distill_step benchmark: backend {backend}, "
          f"{compile_mode(jit) if backend != 'torch' else 'eager (jit_compile=False)'}; "
          f"{describe_machine()}")
    print(f"teacher widths {TEACHER_WIDTHS}, student widths {STUDENT_WIDTHS}, "
          f"{NUM_CLASSES} classes, batch {args.batch}×{args.image_size}×{args.image_size}×3, "
          f"AdamW, median of {args.repeats} steps")

    keras.utils.set_random_seed(0)
    size = args.image_size
    teacher = build_small_segmenter(NUM_CLASSES, size, TEACHER_WIDTHS, name="teacher")

    def student():
        keras.utils.set_random_seed(1)
        return build_small_segmenter(NUM_CLASSES, size, STUDENT_WIDTHS, name="student")

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, size, size, 3), dtype="float32")
    y = rng.integers(0, NUM_CLASSES, (args.batch, size, size)).astype("int32")
    teacher_levels, student_levels = level_names("teacher"), level_names("student")

    optimizer = lambda: keras.optimizers.AdamW(1e-4)  # noqa: E731
    plain = student()
    plain.compile(optimizer=optimizer(), loss=SegmentationLoss(), jit_compile=jit_compile)

    def distiller(**options):
        loss = SARDLoss(teacher_levels, student_levels, seed=0, **options)
        model = Distiller(teacher, student(), [loss])
        model.compile(optimizer=optimizer(), jit_compile=jit_compile)
        return model

    losses = [
        projected_feature_mse(t, s, STUDENT_WIDTHS[i], TEACHER_WIDTHS[i], seed=i)
        for i, (t, s) in enumerate(zip(teacher_levels, student_levels))
    ]
    reference = keras.distillation.Distiller(teacher, student(), losses)
    reference.compile(optimizer=optimizer(), loss=SegmentationLoss(), jit_compile=jit_compile)

    steps = {
        "teacher": timed(compile_forward(teacher, jit), keras.ops.convert_to_tensor(x)),
        "student": lambda: plain.train_on_batch(x, y),
        "sard": lambda m=distiller(): m.train_on_batch(x, y),
        "variance": lambda m=distiller(density="variance"): m.train_on_batch(x, y),
        # The same plain MSE as keras' below, with a trained 1×1 projection.
        "mse": lambda m=distiller(weighting="uniform", alignment_weight=0.0): m.train_on_batch(x, y),
        "keras": lambda: reference.train_on_batch(x, y),
    }
    t = interleaved_medians(steps, args.repeats)  # train_on_batch returns host floats: synced
    floor = t["teacher"] + t["student"]
    rows = [
        ("teacher inference", t["teacher"]),
        ("student step, task loss only", t["student"]),
        ("floor (the two above)", floor),
        ("SARD: keras_sard.Distiller + SARDLoss() (exact D)", t["sard"]),
        ('SARD with density="variance"', t["variance"]),
        ("keras_sard.Distiller, plain MSE on 4 levels", t["mse"]),
        ("keras.distillation.Distiller, plain MSE on 4 levels", t["keras"]),
    ]
    print(f"\n{'one training step':<56}{'ms':>10}")
    for label, seconds in rows:
        print(f"{label:<56}{seconds * 1e3:>10.2f}")
    print()
    for label, seconds in (("SARD", t["sard"]), ("SARD variance D", t["variance"])):
        ratio = seconds / floor
        print(f"ratio {label} / floor: {ratio:.2f}× (goal ≤ {FLOOR_GOAL:.2f}×) "
              f"{verdict(ratio <= FLOOR_GOAL)}")
    ratio = t["keras"] / t["sard"]
    print(f"ratio keras.distillation / SARD: {ratio:.2f}× (goal ≥ {KERAS_GOAL:.1f}×) "
          f"{verdict(ratio >= KERAS_GOAL)}")
    print(f"ratio keras.distillation / keras_sard, same plain MSE: {t['keras'] / t['mse']:.2f}× "
          "(the cost of the machinery alone; no goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
