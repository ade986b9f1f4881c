"""keras_sard quickstart: distil a small segmenter with SARD, in minutes on a CPU.

1. Trains a teacher (a conv pyramid with a UPerNet decoder, widths
   32-64-128-256, 1.65 M parameters) on the embedded synthetic rock-fragment
   data: tens of tiny fragments per image, separated by thin background gaps.
2. Distils a student with 1/16 of its parameters (widths 8-16-32-64) from it
   with `keras_sard.Distiller` and `SARDLoss` on the four pyramid levels.
3. Trains the same student, from the same initial weights, from scratch.
4. Prints mIoU and Boundary IoU of the three on held-out images.
5. Saves the SARD student (.keras) and exports it as a TensorFlow SavedModel,
   checking that the artefact gives the Keras model's outputs.

    python examples/quickstart.py                 # TensorFlow; about 5 minutes on 2 cores
    python examples/quickstart.py --backend jax --epochs 4 --output-dir /tmp/quickstart
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEACHER_WIDTHS = (32, 64, 128, 256)
STUDENT_WIDTHS = (8, 16, 32, 64)
ZOOM = 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
    parser.add_argument("--epochs", type=int, default=12,
                        help="epochs of each student (default 12); the teacher trains "
                             "twice as many.")
    parser.add_argument("--image-size", type=int, default=64,
                        help="square image side, a multiple of 32 (default 64).")
    parser.add_argument("--output-dir", default="runs/quickstart",
                        help="where the SARD student is exported (default runs/quickstart).")
    parser.add_argument("--seed", type=int, default=0)
    # Dataset sizes; the tests shrink them to run in seconds.
    parser.add_argument("--train-examples", type=int, default=384, help=argparse.SUPPRESS)
    parser.add_argument("--val-examples", type=int, default=96, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.image_size < 32 or args.image_size % 32:
        parser.error(f"--image-size must be a positive multiple of 32 (the models' stride 32); "
                     f"got {args.image_size}.")
    if args.epochs < 1:
        parser.error(f"--epochs must be ≥ 1; got {args.epochs}.")
    if args.train_examples < args.batch_size:
        parser.error(f"--train-examples ({args.train_examples}) must be at least the batch "
                     f"size ({args.batch_size}).")
    return args


def main(argv=None):
    args = parse_args(argv)
    # Keras reads its backend when first imported: set it before.
    os.environ["KERAS_BACKEND"] = args.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if (ROOT / "keras_sard").is_dir() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run from a checkout: use its keras_sard

    import keras

    from keras_sard import Distiller
    from keras_sard.data import make_pipeline, make_synthetic
    from keras_sard.losses import SARDLoss, SegmentationLoss
    from keras_sard.metrics import BoundaryIoU, MeanIoU
    from keras_sard.models import build_small_segmenter, level_names

    start = time.perf_counter()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notes
    verbose = 1 if sys.stdout.isatty() else 2  # progress bars, or one line per epoch
    size = args.image_size
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{size}×{size} images, {args.epochs} epochs per student "
          f"({2 * args.epochs} for the teacher), seed {args.seed}")

    # ------------------------------------------------------------------ data
    # Scenes are rendered at half the model's input size and enlarged 2×, so
    # that fragments (3-15 px in the scene) and the 1-px gaps between them
    # stay resolvable by logits predicted at stride 4, as in the paper's
    # UPerNet decoders.
    scene = (size // ZOOM, size // ZOOM)
    train_data = make_synthetic("fragments", args.train_examples, scene, seed=args.seed)
    val_data = make_synthetic("fragments", args.val_examples, scene, seed=args.seed, split="val")
    num_classes = train_data.num_classes  # 2: background, fragment

    def train_batches():
        # The paper's augmentation (flip, ±15° rotation, colour jitter) after
        # the zoom.  A new pipeline per model: each sees the same batches.
        return make_pipeline(train_data, args.batch_size, training=True, crop_size=size,
                             seed=args.seed, scale_range=(ZOOM, ZOOM), cache=True)

    val = make_pipeline(val_data, args.batch_size, training=False, eval_size=size, cache=True)
    steps_per_epoch = args.train_examples // args.batch_size
    # The pipeline shuffles; Keras cannot shuffle a tf.data.Dataset.
    fit_options = dict(shuffle=False, verbose=verbose)

    def optimizer(epochs):
        schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * steps_per_epoch)
        return keras.optimizers.AdamW(schedule, weight_decay=0.01)

    def metrics():
        return [MeanIoU(num_classes), BoundaryIoU(num_classes)]

    # One output channel for binary masks: BCE + Dice, as in the paper.
    channels = 1 if num_classes == 2 else num_classes

    def segmenter(widths, name):
        keras.utils.set_random_seed(args.seed)  # both students start from the same weights
        return build_small_segmenter(channels, size, widths, name=name)

    # --------------------------------------------------------------- teacher
    print(f"\n[1/3] teacher (widths {TEACHER_WIDTHS})")
    teacher = segmenter(TEACHER_WIDTHS, "teacher")
    teacher.compile(optimizer=optimizer(2 * args.epochs), loss=SegmentationLoss(),
                    metrics=metrics())
    teacher.fit(train_batches(), epochs=2 * args.epochs, **fit_options)

    # ------------------------------------------------------------------ SARD
    print(f"\n[2/3] student (widths {STUDENT_WIDTHS}) distilled with SARD")
    sard_student = segmenter(STUDENT_WIDTHS, "student")
    distiller = Distiller(
        teacher,
        sard_student,
        distillation_losses=[
            # W, P_S and g_θ on each of the four levels (strides 4, 8, 16, 32).
            SARDLoss(level_names("teacher"), level_names("student"), seed=args.seed)
        ],
    )
    distiller.compile(optimizer=optimizer(args.epochs), metrics=metrics())
    distiller.fit(train_batches(), epochs=args.epochs, **fit_options)

    # --------------------------------------------------------------- scratch
    print("\n[3/3] the same student trained from scratch")
    scratch_student = segmenter(STUDENT_WIDTHS, "student")
    scratch_student.compile(optimizer=optimizer(args.epochs), loss=SegmentationLoss(),
                            metrics=metrics())
    scratch_student.fit(train_batches(), epochs=args.epochs, **fit_options)

    # ------------------------------------------------------------ evaluation
    sard_student.compile(loss=SegmentationLoss(), metrics=metrics())
    rows = []
    for label, model in (("teacher", teacher), ("student, scratch", scratch_student),
                         ("student, SARD", sard_student)):
        scores = model.evaluate(val, verbose=0, return_dict=True)
        rows.append((label, model.count_params(), scores["miou"], scores["biou"]))
    print(f"\nheld-out synthetic fragments ({args.val_examples} images)")
    print(f"| {'model':<17}| {'params':>9} | {'mIoU':>6} | {'bIoU':>6} |")
    print(f"|{'-' * 18}|{'-' * 11}|{'-' * 8}|{'-' * 8}|")
    for label, params, miou, biou in rows:
        print(f"| {label:<17}| {params:>9,} | {100 * miou:>6.2f} | {100 * biou:>6.2f} |")

    # ---------------------------------------------------------------- export
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras_file = output_dir / "sard_student.keras"
    sard_student.save(keras_file)  # reloads on every backend
    print(f"\nsaved {keras_file}")
    export_saved_model(sard_student, output_dir / "sard_student_savedmodel", val)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def export_saved_model(model, path, batches):
    """Export `model` as a SavedModel and check its outputs against Keras'."""
    from keras_sard.export import export_student

    images = next(iter(batches))[0].numpy()
    report = export_student(model, str(path), "saved_model", sample_inputs=images)
    print(f"exported {path} (SavedModel, endpoint 'serve'); "
          f"max |SavedModel − Keras| on a batch: {report.max_abs_diff:.2e}")


if __name__ == "__main__":
    sys.exit(main())
