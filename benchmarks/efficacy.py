"""Efficacy benchmark: what SARD does for a student, as a paired experiment (issue 14 item 5).

Pre-registered protocol (fixed on 2026-12-02, before any result of this benchmark was seen;
only the step counts were sized from timings of the models, never from scores)

Question
    In a CPU regime where W concentrates on object boundaries at the tapped strides, does SARD's
    structure weighting help a student beyond uniform feature distillation (SARD − sard_uniform,
    the primary comparison), and how does SARD compare with CWD and with training from scratch?
    With --unlabelled: does adding unlabelled images help scratch (a control: nothing to gain),
    CWD and SARD?

Regime
    Data      synthetic nuclei (keras_sard.data.synthetic, kind="nuclei", 2 classes),
              object_scale=OBJECT_SCALE_LARGE (objects about 15-40 px), 128x128 images.
              Teacher set: train split images 0..255 (256, labelled).
              Student labelled set: train images 0..23 (24).
              Unlabelled set (--unlabelled only): train images 24..255, labels dropped,
              mixed into every student batch at ratio 0.5 (4 labelled + 4 unlabelled images).
              Validation: val split images 0..63 at full resolution.
    Models    recipe "small" (random initial weights): teacher widths 32-64-128-256,
              student widths 16-32-64-128, UPerNet decoders; feature methods tap the four
              levels (strides 4, 8, 16, 32).
    Teacher   trained once (seed 0) on its 256 images: 1200 steps of batch 8, AdamW lr 1e-3,
              weight decay 0.01, cosine decay, the paper's augmentation (flip, ±15° rotation,
              colour jitter); then its BatchNorm statistics re-estimated as below.
    Students  methods scratch, cwd, sard_uniform, sard with the library's defaults
              (keras_sard.methods; SARD: edge-repeating padding, multi-scale E, r = 7,
              β = (2, 1, 1), λf = 1, λd = 0.5). Equal budget: 300 steps of batch 8, AdamW
              lr 1e-3, weight decay 0.01, cosine decay, no accumulation, same augmentation.
              Seeds 0, 1, 2: for seed s every method starts from the same initial student
              weights (keras.utils.set_random_seed(s) before building) and sees the same
              batches (pipeline seed s). With --unlabelled, scratch, cwd and sard are trained
              again on the mixed batches (same seeds, same step budget: the labelled images
              per step are halved, as a user who adds unlabelled images at ratio 0.5 gets).
    Fair BN   every model's BatchNorm statistics are re-estimated before scoring
              (keras_sard.batchnorm.recalibrate_batchnorm) on 16 batches of 8 from the
              labelled training pipeline of its own training set (teacher: its 256 images;
              students: the 24 labelled images, augmented, pipeline seed 1000 + s), the same
              batches for every method of a seed, whatever the arm.
    Scoring   mIoU and Boundary IoU (keras_sard.training.evaluate) on the 64 val images.

Printed, in this order
    1. keras_sard.diagnostics.structure_report of the trained teacher, levels 1-4, on the 64
       val images with labels, using the exact StructureWeights SARD trains with. The regime
       qualifies when level 1's boundary concentration is >= 1.3; the benchmark reports it
       either way and is not re-run with another regime after seeing method scores.
    2. Per seed: every method's mIoU and bIoU.
    3. Paired differences per seed and their mean ± 95 % interval (Student's t,
       t(0.975, n-1)·sd/sqrt(n), n = number of seeds), in mIoU and bIoU points:
       SARD − sard_uniform (primary), SARD − CWD, SARD − scratch; with --unlabelled also
       (method + unlabelled) − (method) for scratch, CWD and SARD.
    Conclusions are drawn from these intervals only (an interval that contains 0 is "no
    measurable difference at this n"). Nothing is tuned after seeing them.

Budget: <= 30 min on 2 CPU cores for the labelled-only comparison (measured per-step:
teacher 0.21 s, scratch 0.14 s, CWD 0.28 s, sard_uniform 0.18 s, SARD 0.52 s on TensorFlow,
2 shared cores); --unlabelled adds 9 student runs. --quick runs the same code on tiny
settings for the tests (numbers meaningless).

Clarifications (added with the runner, before the first full run; no score of the protocol's
regime had been seen, only --quick smoke runs of tiny models; nothing above is changed, these
fix what the text leaves open, each in the way that depends least on results)
    - Every synthetic set uses the generator's seed 0; train and val are disjoint streams.
      The student's 24 labelled images are the teacher's train images 0..23 (the same
      arrays: example i depends only on (seed, split, i)).
    - The teacher's BatchNorm re-estimation uses pipeline seed 1000 (1000 + its seed 0).
    - "The paper's augmentation" is keras_sard.training.Task.train_batches: flip, ±15°
      rotation, colour jitter, no random rescale.
    - Mixed batches (--unlabelled) come from the library's make_pipeline(unlabelled=,
      unlabelled_ratio=0.5): per batch 4 labelled images (the batches of the labelled
      pipeline with seed s) and 4 unlabelled images from their own seeded stream, augmented
      alike; students are re-estimated on the labelled pipeline, as in the labelled arm.
    - SARD's heads (P_S, g_θ) are initialised from the global seed set before the student is
      built, so sard and sard_uniform of a seed also start from the same heads.
    - Run order: per seed, the labelled arm's methods in the order above, then the mixed arm.
      An --unlabelled run trains the teacher and the labelled arm again, so (method +
      unlabelled) − (method) is paired within one run; training on a CPU is not bit-for-bit
      reproducible, so the labelled-only numbers of two runs are two replications.
    - The library's defaults are those of the checkout the run uses; the script prints
      SARD's settings and refuses a full run unless W has the protocol's edge-repeating
      padding and multi-scale E.  Training compiles as Keras does by default.

    python benchmarks/efficacy.py                          # labelled only, TensorFlow
    python benchmarks/efficacy.py --unlabelled --json out.json
    python benchmarks/efficacy.py --quick --seeds 0,1      # smoke run, any --backend
"""

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import sys
import time

from common import BACKENDS, describe_machine, select_backend

LABELLED_METHODS = ("scratch", "cwd", "sard_uniform", "sard")
UNLABELLED_METHODS = ("scratch", "cwd", "sard")
COMPARISONS = (("sard", "sard_uniform"), ("sard", "cwd"), ("sard", "scratch"))  # primary first
PROTOCOL_SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
TEACHER_SEED = 0
RECALIBRATION_SEED_OFFSET = 1000
METRICS = (("miou", "mIoU"), ("biou", "bIoU"))


@dataclasses.dataclass(frozen=True)
class Settings:
    """The sizes of one run: the protocol's, or --quick's tiny ones."""

    image_size: int
    teacher_images: int
    labelled_images: int
    val_images: int
    teacher_steps: int
    student_steps: int
    batch_size: int
    recalibration_batches: int
    tiny: bool = False
    unlabelled_ratio: float = 0.5
    learning_rate: float = 1e-3
    weight_decay: float = 0.01


PROTOCOL = Settings(image_size=128, teacher_images=256, labelled_images=24, val_images=64,
                    teacher_steps=1200, student_steps=300, batch_size=8,
                    recalibration_batches=16)
QUICK = Settings(image_size=64, teacher_images=12, labelled_images=4, val_images=4,
                 teacher_steps=2, student_steps=2, batch_size=4, recalibration_batches=2,
                 tiny=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated student seeds (default: the protocol's 0,1,2; "
                             "--quick: 0,1).")
    parser.add_argument("--unlabelled", action="store_true",
                        help="also train scratch, cwd and sard with unlabelled images mixed "
                             "into every batch, and report (method + unlabelled) − (method).")
    parser.add_argument("--quick", action="store_true",
                        help="tiny models, images and steps: a smoke run of the same code "
                             "(numbers meaningless).")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write every score and time to this JSON file.")
    args = parser.parse_args(argv)
    default = QUICK_SEEDS if args.quick else PROTOCOL_SEEDS
    try:
        seeds = default if args.seeds is None else tuple(
            int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers; got {args.seeds!r}.")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        parser.error(f"--seeds must list distinct integers >= 0; got {args.seeds!r}.")
    args.seeds = seeds
    return args


# ----------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------


def t_quantile(n):
    """t(0.975, n - 1): the 95 % two-sided quantile for a mean of n values."""
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def t_interval(values):
    """``(mean, half_width)`` of the 95 % Student's t interval of the mean of
    `values`, t(0.975, n-1)·sd/sqrt(n) (half_width NaN for fewer than 2 values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t_quantile(n) * sd / math.sqrt(n)


def conclusion(mean, half, first, second, n):
    """What the interval says (the protocol: an interval containing 0 is "no
    measurable difference at this n")."""
    if math.isnan(half):
        return "one seed: no interval"
    if mean - half > 0:
        return f"{first} better"
    if mean + half < 0:
        return f"{second} better"
    return f"no measurable difference at n = {n}"


# ----------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------


def weights_checksum(model):
    import keras
    import numpy as np

    return float(sum(np.abs(keras.ops.convert_to_numpy(w)).sum() for w in model.weights))


def schedule_for(settings, steps):
    from keras_sard.training import Schedule

    # recalibrate_batchnorm=False: the protocol's own re-estimation
    # (`recalibrate`, on the labelled pipeline in both arms) is the only one;
    # training's automatic one would read the mixed batches in the
    # unlabelled arm, and run twice in the labelled one.
    return Schedule(epochs=1, steps_per_epoch=steps, batch_size=settings.batch_size,
                    learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
                    gradient_accumulation_steps=1, recalibrate_batchnorm=False)


def recalibrate(model, task, settings, seed):
    """Fair BatchNorm: re-estimate on the labelled training pipeline of `task`."""
    from keras_sard.batchnorm import recalibrate_batchnorm

    batches = task.train_batches(settings.batch_size, seed=RECALIBRATION_SEED_OFFSET + seed)
    return recalibrate_batchnorm(model, batches, num_batches=settings.recalibration_batches)


def train_student(teacher, recipe, task, method, settings, seed, unlabelled=None):
    """One student of `method` for `seed`: built from the seed, distilled
    (with `unlabelled` images mixed into every batch, if given), BatchNorm
    re-estimated on `task`'s labelled batches, scored.  Returns its record."""
    import keras

    from keras_sard.training import distill, evaluate

    keras.utils.set_random_seed(seed)
    student = recipe.build_student(task.num_classes, task.image_size, tiny=settings.tiny)
    checksum = weights_checksum(student)
    start = time.perf_counter()
    distill(teacher, student, task, method, schedule_for(settings, settings.student_steps),
            recipe.teacher_layers, recipe.student_layers, seed=seed, verbose=0,
            unlabelled=unlabelled, unlabelled_ratio=settings.unlabelled_ratio)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    recalibrate(student, task, settings, seed)
    scores = evaluate(student, task.val, settings.batch_size)
    score_seconds = time.perf_counter() - start
    del student
    gc.collect()
    return dict(seed=seed, method=method, miou=100 * scores["miou"], biou=100 * scores["biou"],
                train_seconds=train_seconds,
                seconds_per_step=train_seconds / settings.student_steps,
                score_seconds=score_seconds, init_checksum=checksum)


def print_row(arm, record):
    print(f"{record['seed']:<6}{record['method']:<14}{arm:<22}{record['miou']:>7.2f}"
          f"{record['biou']:>8.2f}{record['train_seconds']:>10.1f}"
          f"{record['seconds_per_step']:>9.3f}{record['score_seconds']:>9.1f}", flush=True)


def differences(pairs, records, seeds):
    """Per comparison ``(label, first, second, {metric: [per-seed]})``."""
    rows = []
    for label, (first_arm, first), (second_arm, second) in pairs:
        per_metric = {}
        for metric, _ in METRICS:
            per_metric[metric] = [records[first_arm, first, s][metric]
                                  - records[second_arm, second, s][metric] for s in seeds]
        rows.append((label, per_metric))
    return rows


def print_differences(title, rows, seeds):
    n = len(seeds)
    t_note = "" if n < 2 else f", t(0.975, {n - 1}) = {t_quantile(n):.3f}"
    print(f"\n{title}: points, per seed and mean ± 95 % t interval "
          f"(n = {n}{t_note})")
    seed_cols = "".join(f"{'seed ' + str(s):>9}" for s in seeds)
    print(f"{'comparison':<34}{'metric':<7}{seed_cols}{'mean ± half':>17}{'interval':>19}  "
          "conclusion")
    summary = []
    for label, per_metric in rows:
        for metric, name in METRICS:
            values = per_metric[metric]
            mean, half = t_interval(values)
            first, second = label.split(" − ")
            text = conclusion(mean, half, first, second, n)
            interval = "-" if math.isnan(half) else f"[{mean - half:+.2f}, {mean + half:+.2f}]"
            spread = f"{mean:+.2f}" + ("" if math.isnan(half) else f" ± {half:.2f}")
            cols = "".join(f"{v:>+9.2f}" for v in values)
            print(f"{label:<34}{name:<7}{cols}{spread:>17}{interval:>19}  {text}")
            summary.append(dict(comparison=label, metric=metric, per_seed=values, mean=mean,
                                half_width=half, conclusion=text))
    return summary


def check_protocol_defaults(structure, quick):
    """The protocol names the library's SARD defaults: edge-repeating padding
    and the multi-scale E.  A full run on other defaults would not be the
    pre-registered experiment."""
    padding, scales = structure.padding, structure.scales
    ok = padding == "symmetric" and scales is not None and tuple(scales) == (1, 2, 4, 8)
    if not ok and not quick:
        sys.exit(f"benchmarks/efficacy.py: the library's StructureWeights defaults are "
                 f"padding={padding!r}, scales={scales!r}; the protocol needs edge-repeating "
                 f"padding ('symmetric') and the multi-scale E (1, 2, 4, 8). Run it on a "
                 f"checkout that has them (or use --quick for a smoke run).")
    return ok


def quick_compiling(backend):
    """--quick: compile less, since two training steps per model cost nothing
    next to compiling them (tens of seconds per model on two cores).

    TensorFlow runs eagerly (no graph tracing; the compiled training is
    tested by the library's own tests).  JAX stays compiled (op by op it
    compiles every operation, slower still) but through a compilation cache
    of this run, so the models of the second seed, identical programs, reuse
    the first's.  PyTorch runs eagerly anyway."""
    if backend == "tensorflow":
        import warnings

        import tensorflow as tf

        tf.config.run_functions_eagerly(True)
        warnings.filterwarnings("ignore", "Even though the `tf.config.experimental_run")
    elif backend == "jax":
        import atexit
        import shutil
        import tempfile

        import jax

        cache = tempfile.mkdtemp(prefix="keras_sard_efficacy_jax_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv):
    args = parse_args(argv)
    backend = select_backend(args)
    settings = QUICK if args.quick else PROTOCOL
    wall_start = time.perf_counter()
    if args.quick:
        quick_compiling(backend)

    import keras

    from keras_sard.data import make_pipeline
    from keras_sard.data.synthetic import OBJECT_SCALE_LARGE, make_synthetic
    from keras_sard.diagnostics import BOUNDARY_CONCENTRATION_GOAL, structure_report
    from keras_sard.methods import distillation_losses
    from keras_sard.models import get_recipe
    from keras_sard.training import Task, evaluate, train_segmenter

    recipe = get_recipe("small")
    sard = distillation_losses("sard", recipe.teacher_layers, recipe.student_layers)[0]
    defaults_ok = check_protocol_defaults(sard.structure, args.quick)

    size = (settings.image_size, settings.image_size)
    print("efficacy benchmark (benchmarks/efficacy.py; protocol in its docstring)"
          + ("  --quick: tiny settings, numbers meaningless" if args.quick else ""))
    print(f"machine: {describe_machine()}; {platform.platform()}; python "
          f"{platform.python_version()}; load average at start "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine: times are noisy)")
    print(f"backend {backend}, keras {keras.__version__}; seeds {list(args.seeds)}; "
          f"arms: labelled only{' + unlabelled' if args.unlabelled else ''}")
    print(f"settings: {dataclasses.asdict(settings)}")
    structure_config = {k: v for k, v in sard.structure.get_config().items()
                        if k not in ("name", "trainable", "dtype")}
    print(f"SARD: {structure_config}, hidden_channels={sard.hidden_channels}, "
          f"feature_weight={sard.feature_weight}, alignment_weight={sard.alignment_weight}"
          + ("" if defaults_ok else "  (NOT the protocol's W defaults)"))

    # ------------------------------------------------------------------ data
    def synthetic(count, split):
        return make_synthetic("nuclei", count, size, num_classes=2, seed=0, split=split,
                              object_scale=OBJECT_SCALE_LARGE)

    teacher_data = synthetic(settings.teacher_images, "train")
    val = synthetic(settings.val_images, "val")
    teacher_task = Task("synthetic", teacher_data, val, size, cache=True)
    labelled = synthetic(settings.labelled_images, "train")  # images 0..n-1 of teacher_data
    students = dataclasses.replace(teacher_task, train=labelled)
    arms = {"labelled only": None}  # arm -> the unlabelled images mixed in
    if args.unlabelled:
        from keras_sard.data.unlabelled import split_labelled

        _, arms["labelled + unlabelled"] = split_labelled(teacher_data,
                                                          settings.labelled_images)
        print(f"unlabelled: train images {settings.labelled_images}..."
              f"{settings.teacher_images - 1}, labels dropped, ratio "
              f"{settings.unlabelled_ratio} of each batch")

    # --------------------------------------------------------------- teacher
    keras.utils.set_random_seed(TEACHER_SEED)
    teacher = recipe.build_teacher(2, size, tiny=settings.tiny)
    start = time.perf_counter()
    train_segmenter(teacher, teacher_task, schedule_for(settings, settings.teacher_steps),
                    seed=TEACHER_SEED, verbose=0)
    teacher_seconds = time.perf_counter() - start
    start = time.perf_counter()
    recalibrate(teacher, teacher_task, settings, TEACHER_SEED)
    teacher_scores = evaluate(teacher, val, settings.batch_size)
    print(f"\nteacher: {settings.teacher_steps} steps in {teacher_seconds:.0f} s "
          f"({teacher_seconds / settings.teacher_steps:.3f} s/step); BatchNorm re-estimated and "
          f"scored in {time.perf_counter() - start:.0f} s; val mIoU "
          f"{100 * teacher_scores['miou']:.2f}, bIoU {100 * teacher_scores['biou']:.2f}")

    # -------------------------------------------------- 1. structure report
    print(f"\n1. Structure report: the trained teacher's W (SARD's StructureWeights) on the "
          f"{settings.val_images} val images")
    start = time.perf_counter()
    report = structure_report(teacher, recipe.teacher_layers,
                              make_pipeline(val, settings.batch_size, training=False),
                              structure=sard.structure)
    print(report)
    print(f"({time.perf_counter() - start:.0f} s)")
    level_1 = report.levels[0].concentration
    qualifies = level_1 >= BOUNDARY_CONCENTRATION_GOAL
    print(f"level 1 boundary concentration {level_1:.2f}: the regime "
          f"{'qualifies' if qualifies else 'does NOT qualify'} (goal >= "
          f"{BOUNDARY_CONCENTRATION_GOAL}); reported either way, not re-run", flush=True)

    # ------------------------------------------------------ 2. per-seed runs
    print("\n2. Per seed: val mIoU / bIoU (%) after BatchNorm re-estimation; seconds to train "
          "(compiling included) and to re-estimate BatchNorm and score")
    print(f"{'seed':<6}{'method':<14}{'arm':<22}{'mIoU':>7}{'bIoU':>8}{'train s':>10}"
          f"{'s/step':>9}{'score s':>9}", flush=True)
    records, checksums = {}, {}
    for seed in args.seeds:
        for arm, unlabelled in arms.items():
            methods = LABELLED_METHODS if arm == "labelled only" else UNLABELLED_METHODS
            for method in methods:
                record = train_student(teacher, recipe, students, method, settings, seed,
                                       unlabelled)
                record["arm"] = arm
                records[arm, method, seed] = record
                checksums.setdefault(seed, set()).add(round(record["init_checksum"], 3))
                print_row(arm, record)
    same_init = all(len(c) == 1 for c in checksums.values())
    sums = ", ".join(f"{s}: {', '.join(f'{v:.3f}' for v in sorted(c))}"
                     for s, c in sorted(checksums.items()))
    print(f"same initial student weights for every method of a seed: "
          f"{'yes' if same_init else 'NO'} (sum |w| per seed: {sums})")
    print("\nmeans over seeds (mIoU / bIoU):")
    for arm in arms:
        methods = LABELLED_METHODS if arm == "labelled only" else UNLABELLED_METHODS
        for method in methods:
            values = [records[arm, method, s] for s in args.seeds]
            print(f"  {method:<14}{arm:<22}{sum(r['miou'] for r in values) / len(values):>7.2f}"
                  f"{sum(r['biou'] for r in values) / len(values):>8.2f}")

    # ------------------------------------------------- 3. paired differences
    labelled_arm = "labelled only"
    pairs = [(f"{a} − {b}", (labelled_arm, a), (labelled_arm, b)) for a, b in COMPARISONS]
    summary = print_differences("3. Paired differences, labelled only (primary: sard − "
                                "sard_uniform)", differences(pairs, records, args.seeds),
                                args.seeds)
    if args.unlabelled:
        mixed = "labelled + unlabelled"
        unlabelled_pairs = [(f"{m}+unlabelled − {m}", (mixed, m), (labelled_arm, m))
                            for m in UNLABELLED_METHODS]
        summary += print_differences("   Paired differences, unlabelled images added",
                                     differences(unlabelled_pairs, records, args.seeds),
                                     args.seeds)

    wall = time.perf_counter() - wall_start
    train_total = teacher_seconds + sum(r["train_seconds"] for r in records.values())
    print(f"\ntime: {wall:.0f} s wall in all ({wall / 60:.1f} min), of which training "
          f"{train_total:.0f} s; load average at end "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(settings=dataclasses.asdict(settings), seeds=list(args.seeds),
                           backend=backend, machine=describe_machine(),
                           teacher=dict(teacher_scores, seconds=teacher_seconds),
                           structure_report=report.rows(), qualifies=bool(qualifies),
                           records=list(records.values()), differences=summary,
                           same_init=same_init, wall_seconds=wall), f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
