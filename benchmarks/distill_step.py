"""Benchmark: one distillation step per method against its floor, on a recipe's pair.

A recipe (`keras_sard.models.get_recipe`: ``swin_l->swin_t``, the paper's
pair, ``swin_b->swin_s``, ``swin_l->resnet50`` or ``small``, a plain-conv
pair) gives the teacher and the student, random weights.  On one batch this
times, each as one call:

- teacher inference: the whole teacher (decoder included), and the teacher
  only as far as its tapped levels (what the Distiller runs for SARD and MGD);
- the student's training step on the task loss alone (cross-entropy + Dice);
- the floor: those two whole-teacher and student times added — a
  distillation step that runs the whole teacher cannot cost less;
- `keras_sard.Distiller` training steps: ``scratch`` (no distillation loss,
  the machinery alone), SARD (`distillation_losses("sard")`, exact D), SARD
  with ``density="variance"``, and the baselines KD, CWD, DKD and MGD, each
  with the paper's defaults (`keras_sard.methods`);
- on the small pair, `keras.distillation.Distiller` with plain MSE on the four
  levels (its losses cannot hold trainable layers: the student maps are
  projected to the teacher's channels by fixed random matrices).

It prints each time, its ratio to the floor, the peak memory each call adds
(CPU: the process's resident high-water mark, reset before the call; GPU: the
backend allocator's peak; TensorFlow on CPU keeps memory it freed, so its
later calls show less than they use), and the goals as ratios: on the paper
pair (and the other Swin-teacher recipes) SARD ≤ 0.85× the floor and every
baseline ≤ 1.0×; on the small pair SARD ≤ 1.5×.  Each contender is called
``--warmup`` times (the first compiles), then ``--repeats`` times, the
contenders taking turns call by call; the ratios use the fastest call of
each (noise on a shared machine only adds time), the median is printed
beside it.  Every step is compiled with XLA on TensorFlow and JAX
(``jit_compile=True``) and runs eagerly on PyTorch.  All Distillers train
the same student object (each with its own optimizer), so memory holds one
student.  A run stopped by SIGTERM (``timeout``) prints the calls that
ended.

    python benchmarks/distill_step.py --quick                       # small pair, smoke run
    python benchmarks/distill_step.py --recipe "swin_l->swin_t" --all-backends
    python benchmarks/distill_step.py --recipe "swin_l->swin_t" --tiny --quick
"""

import argparse
import os
import signal
import statistics
import sys

from common import (
    PROBE_ENV,
    add_backend_arguments,
    apply_quick,
    compile_forward,
    compile_mode,
    describe_machine,
    interleaved_times,
    mib,
    run_all_backends,
    select_backend,
    step_peak_memory,
    timed,
    verdict,
)

PAPER_PAIR = "swin_l->swin_t"
SMALL_GOAL = 1.5  # small pair: SARD step ≤ 1.5× its floor
SARD_GOAL = 0.85  # Swin teachers: SARD step ≤ 0.85× the whole-teacher floor
BASELINE_GOAL = 1.0  # Swin teachers: every baseline's step ≤ the floor
BASELINES = ("kd", "cwd", "dkd", "mgd")
# Every contender, in printing order: name -> label.
CONTENDERS = {
    "teacher": "teacher inference, whole teacher",
    "teacher_cut": "teacher inference, up to its tapped levels",
    "student": "student step, task loss only",
    "scratch": "scratch: Distiller, no distillation loss",
    "sard": "SARD (exact D)",
    "sard_variance": 'SARD, density="variance"',
    "kd": "KD (logits)",
    "cwd": "CWD (logits)",
    "dkd": "DKD (logits, labels)",
    "mgd": "MGD (last level)",
    "keras": "keras.distillation.Distiller, plain MSE, 4 levels",
}
QUICK = {"repeats": 2, "warmup": 1, "batch": 2}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument("--recipe", default="small",
                        help=f"a recipe name (default small; the paper's pair is {PAPER_PAIR!r}).")
    parser.add_argument("--tiny", action="store_true",
                        help="the recipe's few-block, few-channel models (smoke runs; Swin needs "
                             "--image-size ≥ 64).")
    parser.add_argument("--image-size", type=int, default=None,
                        help="square input side, a multiple of 32 (default 128 for small, 224 "
                             "for the Swin recipes; 64 with --tiny).")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per step (default 8 for small, 2 for the Swin recipes).")
    parser.add_argument("--classes", type=int, default=19,
                        help="segmentation classes (default 19, Cityscapes').")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls each (the fastest gives the ratios).")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed calls each before timing (the first compiles).")
    parser.add_argument("--methods", default=None,
                        help="comma-separated contenders to time (default: all of "
                             f"{', '.join(CONTENDERS)}; 'keras' on the small pair only). The "
                             "floor's teacher and student are always timed.")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory column.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 2, 1 warm-up, 2 repeats, 32×32 on the small "
                             "pair (explicit flags still win).")
    args = parser.parse_args(argv)
    apply_quick(args, argv, QUICK)
    small = args.recipe.strip().lower() == "small"
    if args.image_size is None:
        args.image_size = (32 if args.quick else 128) if small else (64 if args.tiny else 224)
    if args.batch is None:
        args.batch = 8 if small else 2
    if args.image_size % 32 or args.image_size < 32:
        parser.error(f"--image-size must be a positive multiple of 32; got {args.image_size}.")
    if min(args.batch, args.repeats, args.classes) < 1 or args.warmup < 0:
        parser.error("--batch, --repeats and --classes must be ≥ 1, --warmup ≥ 0.")
    if args.methods is None:
        args.methods = [m for m in CONTENDERS if m != "keras" or small]
    else:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = sorted(set(args.methods) - set(CONTENDERS))
        if unknown:
            parser.error(f"--methods: unknown {unknown}; known: {list(CONTENDERS)}.")
    args.methods = list(dict.fromkeys(["teacher", "student", *args.methods]))
    return args


def goals(recipe):
    """{contender: the most its step may cost, in floors}."""
    if recipe == "small":
        return {"sard": SMALL_GOAL}
    return {"sard": SARD_GOAL, **dict.fromkeys(BASELINES, BASELINE_GOAL)}


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


def build_steps(args, jit):
    """{contender: zero-argument call of one step that waits for its results}."""
    import keras
    import numpy as np

    from keras_sard import Distiller
    from keras_sard.losses import SegmentationLoss
    from keras_sard.methods import distillation_losses
    from keras_sard.models import get_recipe
    from keras_sard.taps import FeatureTaps

    backend = keras.backend.backend()
    jit_compile = jit and backend != "torch"
    recipe = get_recipe(args.recipe)
    keras.utils.set_random_seed(0)
    teacher, student, teacher_levels, student_levels = recipe.build(
        args.classes, args.image_size, tiny=args.tiny)
    rng = np.random.default_rng(0)
    size = args.image_size
    x = rng.random((args.batch, size, size, 3), dtype="float32")
    y = rng.integers(0, args.classes, (args.batch, size, size)).astype("int32")
    images = keras.ops.convert_to_tensor(x)
    optimizer = lambda: keras.optimizers.AdamW(1e-4)  # noqa: E731

    student.compile(optimizer=optimizer(), loss=SegmentationLoss(), jit_compile=jit_compile)
    steps = {
        "teacher": timed(compile_forward(teacher, jit), images),
        "student": lambda: student.train_on_batch(x, y),
    }
    cut = FeatureTaps(teacher, teacher_levels, "teacher").truncated_model()
    if "teacher_cut" in args.methods and cut is not None:
        steps["teacher_cut"] = timed(compile_forward(cut, jit), images)

    def distiller_step(losses):
        model = Distiller(teacher, student, losses)
        model.compile(optimizer=optimizer(), jit_compile=jit_compile)
        return lambda: model.train_on_batch(x, y)

    for method in args.methods:
        if method in ("teacher", "teacher_cut", "student"):
            continue
        if method == "keras":
            channels = [teacher.get_layer(n).output.shape[-1] for n in teacher_levels]
            student_channels = [student.get_layer(n).output.shape[-1] for n in student_levels]
            losses = [
                projected_feature_mse(t, s, student_channels[i], channels[i], seed=i)
                for i, (t, s) in enumerate(zip(teacher_levels, student_levels))
            ]
            reference = keras.distillation.Distiller(teacher, student, losses)
            reference.compile(optimizer=optimizer(), loss=SegmentationLoss(), jit_compile=jit_compile)
            steps["keras"] = lambda m=reference: m.train_on_batch(x, y)
            continue
        if method == "sard_variance":
            losses = distillation_losses("sard", teacher_levels, student_levels, seed=0,
                                         density="variance")
        elif method in ("sard", "mgd"):
            losses = distillation_losses(method, teacher_levels, student_levels, seed=0)
        else:
            losses = distillation_losses(method, teacher_levels, student_levels)
        steps[method] = distiller_step(losses)
    description = (f"recipe {args.recipe}{' (tiny)' if args.tiny else ''}: teacher "
                   f"{teacher.count_params() / 1e6:.2f} M parameters "
                   f"({'none' if cut is None else f'{cut.count_params() / 1e6:.2f} M'} up to its "
                   f"levels), student {student.count_params() / 1e6:.2f} M")
    return steps, description


def main(argv):
    args = parse_args(argv)
    if args.all_backends:
        return run_all_backends(__file__, argv)
    if not args.no_memory and any(os.environ.get(k) != v for k, v in PROBE_ENV.items()):
        # glibc reads these at start: run again with them (see common.PROBE_ENV).
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **PROBE_ENV))
    backend = select_backend(args)
    from keras_sard.models import get_recipe

    try:
        args.recipe = get_recipe(args.recipe).name
    except ValueError as error:
        sys.exit(f"--recipe: {error}")
    jit = not args.no_jit
    mode = compile_mode(jit) if backend != "torch" else "eager (jit_compile=False)"
    print(f"distill_step benchmark: backend {backend}, {mode}; {describe_machine()}")
    steps, description = build_steps(args, jit)
    print(f"{description}; {args.classes} classes, batch {args.batch}×{args.image_size}×"
          f"{args.image_size}×3, AdamW, {args.repeats} timed calls each after {args.warmup}",
          flush=True)

    def log(name, seconds):
        print(f"  warm-up {name}: {seconds:.1f} s", flush=True)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # `timeout` stops a run: report what ran
    runs, memory, how = {}, {}, None
    try:
        interleaved_times(steps, args.repeats, warmup=args.warmup, log=log, times=runs)
        if not args.no_memory:
            for name, call in steps.items():
                memory[name], how = step_peak_memory(call)
    except KeyboardInterrupt:
        print(f"\nINTERRUPTED: the timed calls that ended before it "
              f"({min(len(runs.get(name, [])) for name in steps)} whole rounds)", flush=True)
    # Noise on a shared machine only adds time: the fastest call is the
    # closest to the cost itself, and the ratios use it.
    times = {name: min(r) for name, r in runs.items() if r}
    medians = {name: statistics.median(r) for name, r in runs.items() if r}
    floor = times["teacher"] + times["student"] if {"teacher", "student"} <= set(times) else None
    if floor is not None:
        medians["floor"] = medians["teacher"] + medians["student"]
        times["floor"] = floor

    print(f"\n{'one call':<52}{'fastest ms':>12}{'median ms':>11}{'× floor':>9}{'peak MiB':>10}")
    names = [n for n in CONTENDERS if n in times]
    if floor is not None:
        names.insert(names.index("student") + 1, "floor")
    for name in names:
        label = "floor: whole teacher + student step" if name == "floor" else CONTENDERS[name]
        ratio = f"{times[name] / floor:>8.2f}×" if floor else f"{'-':>9}"
        peak = f"{mib(memory[name]):>10.1f}" if memory.get(name) is not None else f"{'-':>10}"
        print(f"{label:<52}{times[name] * 1e3:>12.1f}{medians[name] * 1e3:>11.1f}{ratio}{peak}")
    if how:
        print(f"(peak memory: {how})")
    if floor is None:
        return 1
    print()
    for name, goal in goals(args.recipe).items():
        if name in runs and runs[name]:
            ratio = times[name] / floor
            print(f"ratio {name} / floor: {ratio:.2f}× (goal ≤ {goal:.2f}×) {verdict(ratio <= goal)}")
    if "keras" in times and "sard" in times:
        print(f"ratio keras.distillation / SARD: {times['keras'] / times['sard']:.2f}× (no goal)")
    if args.tiny or args.recipe not in (PAPER_PAIR, "small"):
        print(f"(the goals are set for the full-size pairs, the paper's {PAPER_PAIR} at 224 px "
              "and the small pair; a tiny or other run only smoke-tests them)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
