"""Probe (issue 15.2): why did SARD lose when unlabelled images joined the batches?

The reported run: synthetic nuclei, a teacher trained on 256 images, a student
with 24 of them labelled, 120 steps; batches of 4 labelled + 4 of the
teacher's other images (all-ignore masks) scored below batches of 8 labelled
images for SARD, not for CWD. Candidate causes, each isolated by a pair of
arms that differ in that one thing (``L``/``U`` = labelled/unlabelled images
per batch):

==========================  ==================================================
halved labelled throughput  ``4L`` − ``8L`` (same method, no unlabelled image)
unlabelled images, at a     ``4L4U`` − ``4L``: same labelled batches (the mixed
fixed labelled throughput   pipeline's labelled part *is* the ``4L`` pipeline)
BatchNorm statistics from   scratch ``4L4U`` − scratch ``4L``: the task loss
the mixed batch             ignores the unlabelled images, so only the
                            student's training-mode batch statistics differ
the issue's comparison      ``4L4U`` − ``8L`` (SARD and CWD)
more images, no loss of     SARD ``8L8U`` − ``8L`` (ratio 0.5, batch 16)
labelled throughput
what distillation gives     SARD ``8L`` − scratch ``8L``
==========================  ==================================================

Loss weights are argued, not run: the task loss is a mean over labelled pixels
and every distillation term a mean over images, so unlabelled images change
neither term's scale, only how many images each averages (see the report).

Protocol, fixed before any result was looked at: synthetic nuclei 64×64
(train seed 0), the "small" recipe (teacher widths 32–256, student 16–128);
the teacher trains on the first 256 training images (600 steps, batch 8,
AdamW 1e-3 cosine) once and is cached; each student arm trains 120 steps,
AdamW 1e-3 cosine to 0, no accumulation, flip/±15°/colour-jitter
augmentation, on the first 24 images (labelled) and images 24–255
(unlabelled, the teacher's own). Seeds 0–4 pair the arms: a seed fixes the
student's initial weights, the labelled batches' order and augmentation, and
SARD's noise. Scores: mIoU and bIoU on 64 validation images after re-estimating
the student's BatchNorm statistics on 20 augmented batches of 8 labelled
training images (the same batches for every arm; cumulative average,
momentum (k−1)/k at batch k); the scores with the BatchNorm statistics left
by training are recorded too (``raw``). Differences are paired per seed,
mean ± the 95 % t interval.

Follow-up (protocol 2), fixed after the first seed of the above showed the
unlabelled images costing *scratch* as much as SARD (scratch cannot see them
but through BatchNorm): the same arms with a student whose BatchNormalization
layers are GroupNormalization (``_gn``; groups = gcd(8, channels); everything
else as above, BatchNorm re-estimation then a no-op), seeds 0–2. Per-image
normalisation makes scratch ``4L4U`` identical to scratch ``4L`` (tested in
tests/test_mixed_batches.py), so that arm is not run; the question is whether
``4L4U`` − ``4L`` for SARD and CWD moves towards 0 or above without BatchNorm.
Added with it, BatchNorm students, seeds 0–4: CWD ``4L`` (for CWD's
``4L4U`` − ``4L``: CWD, unlike SARD, gives the unlabelled images a gradient
through the decoder, whose BatchNorm layers SARD's backbone taps never
reach).

Follow-up (protocol 3), fixed with protocol 2, before its results: if the
unlabelled images hurt through the student's BatchNorm, running the student
on the labelled and the unlabelled part of each batch as two separate
BatchNorm batches (``_split``: two student forward passes, the teacher's one
pass and every loss unchanged; a prototype, `SplitBatchDistiller` below)
should remove the harm: SARD and CWD ``4L4U_split`` − ``4L``, BatchNorm
students, seeds 0–4. (Scratch ``4L4U_split`` would be scratch ``4L`` exactly.)

Run so far (docs/unlabelled.md has the numbers): protocol 1, seeds 0–4;
``sard_4L4U_split`` and ``cwd_4L``, seeds 0–2 (a 10-minute budget; run from
the library as protocol 1 ran it, before the structure-map defaults
changed); ``cwd_4L4U_split`` and protocol 2 (GroupNorm) not run.

Each call runs some arms for some seeds and appends to
``<out>/results.jsonl`` (a run already there is skipped); ``--report``
prints the table. One seed of every arm takes ~5 min on 2 busy CPU cores
(TensorFlow).

    python benchmarks/semisup_probe.py --seeds 0 --out /tmp/semisup_probe
    python benchmarks/semisup_probe.py --report --out /tmp/semisup_probe
    python benchmarks/semisup_probe.py --quick           # smoke run, seconds
"""

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from common import add_backend_arguments, apply_quick, describe_machine, select_backend

ARMS = {  # name: (method, labelled per batch, unlabelled per batch)
    "scratch_8L": ("scratch", 8, 0),
    "scratch_4L": ("scratch", 4, 0),
    "scratch_4L4U": ("scratch", 4, 4),
    "sard_8L": ("sard", 8, 0),
    "sard_4L": ("sard", 4, 0),
    "sard_4L4U": ("sard", 4, 4),
    "sard_8L8U": ("sard", 8, 8),
    "cwd_8L": ("cwd", 8, 0),
    "cwd_4L4U": ("cwd", 4, 4),
    # protocol 2
    "cwd_4L": ("cwd", 4, 0),
    "scratch_8L_gn": ("scratch", 8, 0),
    "scratch_4L_gn": ("scratch", 4, 0),
    "sard_8L_gn": ("sard", 8, 0),
    "sard_4L_gn": ("sard", 4, 0),
    "sard_4L4U_gn": ("sard", 4, 4),
    "cwd_8L_gn": ("cwd", 8, 0),
    "cwd_4L4U_gn": ("cwd", 4, 4),
    # protocol 3: BatchNorm statistics of each part apart
    "sard_4L4U_split": ("sard", 4, 4),
    "cwd_4L4U_split": ("cwd", 4, 4),
}
PROTOCOL_1 = tuple(name for name in ARMS
                   if not name.endswith(("_gn", "_split")) and name != "cwd_4L")
COMPARISONS = (  # (what it isolates, arm, minus arm)
    ("halved labelled throughput, scratch", "scratch_4L", "scratch_8L"),
    ("halved labelled throughput, SARD", "sard_4L", "sard_8L"),
    ("BatchNorm batch mixed with unlabelled, scratch", "scratch_4L4U", "scratch_4L"),
    ("unlabelled images at fixed throughput, SARD", "sard_4L4U", "sard_4L"),
    ("the issue's comparison, SARD", "sard_4L4U", "sard_8L"),
    ("the issue's comparison, CWD", "cwd_4L4U", "cwd_8L"),
    ("unlabelled added, no throughput lost, SARD", "sard_8L8U", "sard_8L"),
    ("SARD vs scratch, labelled only", "sard_8L", "scratch_8L"),
    ("CWD vs scratch, labelled only", "cwd_8L", "scratch_8L"),
    ("unlabelled images at fixed throughput, CWD", "cwd_4L4U", "cwd_4L"),
    ("split BatchNorm batches: unlabelled images, SARD", "sard_4L4U_split", "sard_4L"),
    ("split BatchNorm batches: unlabelled images, CWD", "cwd_4L4U_split", "cwd_4L"),
    ("split vs shared BatchNorm batches, SARD 4L4U", "sard_4L4U_split", "sard_4L4U"),
    ("GroupNorm: halved labelled throughput, scratch", "scratch_4L_gn", "scratch_8L_gn"),
    ("GroupNorm: halved labelled throughput, SARD", "sard_4L_gn", "sard_8L_gn"),
    ("GroupNorm: unlabelled images at fixed throughput, SARD", "sard_4L4U_gn", "sard_4L_gn"),
    ("GroupNorm: the issue's comparison, SARD", "sard_4L4U_gn", "sard_8L_gn"),
    ("GroupNorm: the issue's comparison, CWD", "cwd_4L4U_gn", "cwd_8L_gn"),
    ("GroupNorm: SARD vs scratch, labelled only", "sard_8L_gn", "scratch_8L_gn"),
    ("GroupNorm vs BatchNorm, SARD 8L", "sard_8L_gn", "sard_8L"),
)
DIFFERENCES_OF_DIFFERENCES = (  # (what it isolates, (arm, minus arm), minus (arm, minus arm))
    ("what SARD's losses on the unlabelled images add, beyond BatchNorm",
     ("sard_4L4U", "sard_4L"), ("scratch_4L4U", "scratch_4L")),
    ("what CWD's loss on the unlabelled images adds, beyond BatchNorm",
     ("cwd_4L4U", "cwd_4L"), ("scratch_4L4U", "scratch_4L")),
)
SEEDS = (0, 1, 2, 3, 4)
QUICK = {"image_size": 32, "steps": 4, "teacher_steps": 4, "labelled": 8, "teacher_images": 16,
         "val_images": 4, "bn_batches": 2}
# 95 % two-sided Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument("--arms", default=",".join(PROTOCOL_1),
                        help="comma-separated arm names (default: protocol 1's).")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--steps", type=int, default=120, help="student steps per arm.")
    parser.add_argument("--teacher-steps", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--labelled", type=int, default=24, help="labelled training images.")
    parser.add_argument("--teacher-images", type=int, default=256)
    parser.add_argument("--val-images", type=int, default=64)
    parser.add_argument("--bn-batches", type=int, default=20)
    parser.add_argument("--out", default="/tmp/keras_sard_semisup_probe")
    parser.add_argument("--report", action="store_true", help="print the table and stop.")
    parser.add_argument("--quick", action="store_true", help="smoke run (tiny everything).")
    args = apply_quick(parser.parse_args(argv), argv, QUICK)
    if args.quick and "--out" not in " ".join(argv):
        args.out = args.out + "_quick"
    return args


# ------------------------------------------------------------------- data


def _data(args):
    from keras_sard.data import drop_labels, make_synthetic

    size = (args.image_size, args.image_size)
    teacher_set = make_synthetic("nuclei", args.teacher_images, size, seed=0)
    # Example i depends only on (seed, split, i): the first `labelled` of the
    # teacher's images, and the rest as the unlabelled pool.
    labelled = make_synthetic("nuclei", args.labelled, size, seed=0)
    rest = dataclasses.replace(teacher_set, dataset=teacher_set.dataset.skip(args.labelled),
                               num_examples=args.teacher_images - args.labelled)
    val = make_synthetic("nuclei", args.val_images, size, seed=0, split="val")
    return teacher_set, labelled, drop_labels(rest), val


def _batches(data, batch, seed, args, unlabelled=None, unlabelled_count=0):
    from keras_sard.data import make_pipeline

    size = args.image_size
    if unlabelled_count:
        return make_pipeline(data, batch + unlabelled_count, training=True, crop_size=size,
                             seed=seed, repeat=True, cache=True, scale_range=None,
                             unlabelled=unlabelled,
                             unlabelled_ratio=unlabelled_count / (batch + unlabelled_count))
    return make_pipeline(data, batch, training=True, crop_size=size, seed=seed, repeat=True,
                         cache=True, scale_range=None)


# ----------------------------------------------------------------- models


def _optimizer(steps):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=max(1, steps))
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01)


def _teacher(args, teacher_set, val):
    import keras

    from keras_sard import training
    from keras_sard.losses import SegmentationLoss
    from keras_sard.models import get_recipe

    path = Path(args.out) / f"teacher_{args.image_size}.keras"
    if path.exists():
        return training.load_model(path)
    keras.utils.set_random_seed(1000)
    teacher = get_recipe("small").build_teacher(2, args.image_size)
    teacher.compile(optimizer=_optimizer(args.teacher_steps), loss=SegmentationLoss())
    start = time.time()
    teacher.fit(_batches(teacher_set, 8, 1000, args), steps_per_epoch=args.teacher_steps,
                epochs=1, verbose=0)
    scores = training.evaluate(teacher, val)
    print(f"teacher: {args.teacher_steps} steps in {time.time() - start:.0f} s, "
          f"val mIoU {100 * scores['miou']:.1f} bIoU {100 * scores['biou']:.1f}", flush=True)
    training.save_model(teacher, path)
    return teacher


def with_group_norm(model):
    """`model` with every BatchNormalization replaced by a GroupNormalization
    (groups = gcd(8, channels)), same names; fresh weights for those layers."""
    import keras

    class GroupNorm(keras.layers.GroupNormalization):
        def call(self, inputs, training=None, mask=None):  # BatchNorm's call signature
            return super().call(inputs)

    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.input.shape[-1]
            return GroupNorm(groups=math.gcd(8, channels), name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def split_batch_distiller(labelled_per_batch):
    """A prototype `Distiller` whose student runs the first `labelled_per_batch`
    images of a training batch and the rest as two BatchNorm batches. It
    repeats `Distiller.compute_distillation` with two student passes (and so
    reads the Distiller's taps, which a library version would not need)."""
    from keras import ops

    from keras_sard import Distiller
    from keras_sard.backend import steps
    from keras_sard.losses.task import prepare_labels

    class SplitBatchDistiller(Distiller):
        def compute_distillation(self, x, y=None, sample_weight=None, training=False):
            if not training or sample_weight is not None:
                return super().compute_distillation(x, y, sample_weight, training)
            with steps.inference_scope(), self._teacher_taps.record() as teacher_features:
                teacher_logits = self.teacher(x, training=False)
            teacher_logits = ops.stop_gradient(teacher_logits)
            teacher_features = {k: ops.stop_gradient(v) for k, v in teacher_features.items()}
            parts = []
            for part in (x[:labelled_per_batch], x[labelled_per_batch:]):
                with self._student_taps.record() as features:
                    logits = self.student(part, training=True)
                parts.append((logits, features))
            student_logits = ops.concatenate([parts[0][0], parts[1][0]], axis=0)
            student_features = {k: ops.concatenate([parts[0][1][k], parts[1][1][k]], axis=0)
                                for k in parts[0][1]}
            labels = None if y is None else prepare_labels(y)
            terms = {}
            if labels is not None:
                terms["task_loss"] = self.task_loss_weight * ops.cast(
                    self.task_loss(labels, student_logits), "float32")
            for loss in self.distillation_losses:
                if loss.teacher_layers is None:
                    teacher_outputs, student_outputs = [teacher_logits], [student_logits]
                else:
                    teacher_outputs = [teacher_features[n] for n in loss.teacher_layers]
                    student_outputs = [student_features[n] for n in loss.student_layers]
                terms.update(loss(teacher_outputs, student_outputs, labels=labels))
            return sum(terms.values()), terms, student_logits

    return SplitBatchDistiller


def reestimate_batchnorm(model, batches, count):
    """Cumulative-average BatchNorm statistics over `count` batches: the moving
    statistics become the mean of the per-batch ones (momentum (k−1)/k at
    batch k), then the momenta are restored."""
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for k, (images, _) in enumerate(batches.take(count), start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k
            model(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)


def run_arm(name, seed, args, teacher, data):
    import keras

    from keras_sard import Distiller, training
    from keras_sard.losses import SegmentationLoss
    from keras_sard.methods import distillation_losses
    from keras_sard.models import get_recipe

    _, labelled, unlabelled, val = data
    method, labelled_count, unlabelled_count = ARMS[name]
    recipe = get_recipe("small")
    keras.utils.set_random_seed(seed)
    student = recipe.build_student(2, args.image_size)
    if name.endswith("_gn"):
        student = with_group_norm(student)
    batches = _batches(labelled, labelled_count, seed, args, unlabelled, unlabelled_count)
    start = time.time()
    if method == "scratch":
        student.compile(optimizer=_optimizer(args.steps), loss=SegmentationLoss())
        history = student.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=0)
    else:
        overrides = {"seed": seed} if method == "sard" else {}
        losses = distillation_losses(method, recipe.teacher_layers, recipe.student_layers,
                                     **overrides)
        kind = split_batch_distiller(labelled_count) if name.endswith("_split") else Distiller
        model = kind(teacher, student, losses)
        model.compile(optimizer=_optimizer(args.steps))
        history = model.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.time() - start
    raw = training.evaluate(student, val)
    bn_batches = _batches(labelled, 8, 12345, args)  # the same for every arm
    reestimate_batchnorm(student, bn_batches, args.bn_batches)
    fair = training.evaluate(student, val)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    return {"arm": name, "seed": seed, "miou": fair["miou"], "biou": fair["biou"],
            "miou_raw": raw["miou"], "biou_raw": raw["biou"], "seconds": round(seconds, 1),
            "last_logs": logs, "steps": args.steps, "image_size": args.image_size}


# ----------------------------------------------------------------- report


def _load(out):
    path = Path(out) / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _interval(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T95.get(n - 1, 1.96) * sd / math.sqrt(n)


def report(out):
    rows = _load(out)
    if not rows:
        print(f"No results in {out}.")
        return
    by = {(r["arm"], r["seed"]): r for r in rows}
    print(f"{'arm':14s} {'n':>2s} {'mIoU':>12s} {'bIoU':>12s} {'mIoU raw BN':>12s} {'s/run':>6s}")
    for arm in ARMS:
        runs = [r for r in rows if r["arm"] == arm]
        if not runs:
            continue
        cells = []
        for key in ("miou", "biou", "miou_raw"):
            mean, half = _interval([100 * r[key] for r in runs])
            cells.append(f"{mean:5.1f} ± {half:4.1f}")
        seconds = sum(r["seconds"] for r in runs) / len(runs)
        print(f"{arm:14s} {len(runs):2d} {cells[0]:>12s} {cells[1]:>12s} {cells[2]:>12s} "
              f"{seconds:6.0f}")
    print("\nPaired differences (points, mean ± 95 % t interval over seeds):")
    for label, arm, base in COMPARISONS:
        seeds = sorted(s for (a, s) in by if a == arm and (base, s) in by)
        if not seeds:
            continue
        cells = []
        for key in ("miou", "biou", "miou_raw"):
            mean, half = _interval([100 * (by[arm, s][key] - by[base, s][key]) for s in seeds])
            cells.append(f"{mean:+5.1f} ± {half:4.1f}")
        print(f"  {arm} − {base} (n={len(seeds)}): mIoU {cells[0]}, bIoU {cells[1]}, "
              f"raw-BN mIoU {cells[2]}   [{label}]")
    for label, (a, b), (c, d) in DIFFERENCES_OF_DIFFERENCES:
        seeds = sorted(s for (arm, s) in by if arm == a and all((x, s) in by for x in (b, c, d)))
        if not seeds:
            continue
        cells = []
        for key in ("miou", "biou"):
            mean, half = _interval([100 * (by[a, s][key] - by[b, s][key] - by[c, s][key]
                                           + by[d, s][key]) for s in seeds])
            cells.append(f"{mean:+5.1f} ± {half:4.1f}")
        print(f"  ({a} − {b}) − ({c} − {d}) (n={len(seeds)}): mIoU {cells[0]}, "
              f"bIoU {cells[1]}   [{label}]")


def main(argv):
    args = parse_args(argv)
    if args.report:
        report(args.out)
        return 0
    select_backend(args)
    unknown = [a for a in args.arms.split(",") if a not in ARMS]
    if unknown:
        sys.exit(f"Unknown arms {unknown}; known: {list(ARMS)}.")
    import keras

    print(f"semisup probe on {keras.backend.backend()}, {describe_machine()} (shared machine)",
          flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    data = _data(args)
    teacher = _teacher(args, data[0], data[3])
    done = {(r["arm"], r["seed"]) for r in _load(args.out)}
    with open(Path(args.out) / "results.jsonl", "a") as results:
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm in args.arms.split(","):
                if (arm, seed) in done:
                    continue
                row = run_arm(arm, seed, args, teacher, data)
                row["backend"] = keras.backend.backend()
                results.write(json.dumps(row) + "\n")
                results.flush()
                print(f"{arm:14s} seed {seed}: mIoU {100 * row['miou']:.1f} bIoU "
                      f"{100 * row['biou']:.1f} (raw BN {100 * row['miou_raw']:.1f}) "
                      f"{row['seconds']:.0f} s", flush=True)
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
