"""Benchmark: the cost of SARD's structure map W against the teacher's forward pass.

SARD computes W (`keras_sard.structure.StructureWeights`) on every tapped
teacher level at every training step.  Goals, each a ratio to one forward pass
of the teacher measured in the same run: the exact density D (the heaviest
term, `feature_density(radius=7)`) ≤ 3 % on all four levels together, and
W as a whole (exact D + the default multi-scale E + C) ≤ 3 % too.  This
script times every term and W on teacher feature maps of Swin-L's four levels
(strides 4, 8, 16, 32: at a 512×512 input, 128×128×192, 64×64×384,
32×32×768 and 16×16×1536, batch 2) against one forward pass of a Swin-L
(keras-hub `SwinTransformerBackbone`, swin_large hyperparameters, random
weights) on the same batch, prints each ratio with PASS/FAIL, and the peak
memory of the exact and the variance D, each measured in a fresh process.

    python benchmarks/structure_map.py --quick                 # a smoke run
    python benchmarks/structure_map.py --backend jax           # the full size
    python benchmarks/structure_map.py --all-backends --quick

Rows per level: D exact and D variance (`feature_density`), E multi-scale
(σ 1, 2, 4, 8, the default) and E single-scale (`edge_strength`), C
(`corner_strength`), and W (`StructureWeights()`, with ``density="exact"``,
the default, and ``"variance"``).  Only the rows with a goal say PASS/FAIL.
Everything runs compiled where the backend can (XLA on TensorFlow and JAX;
PyTorch runs eagerly); timings are the median of ``--repeats`` runs after two
warm-up runs, the teacher forward and the other calls taking turns run by run.

What bounds exact D: it needs ‖F(j) − μ(i)‖ for the 225 pixels j of every
window, about 2·225·C flops per pixel whatever the method: ~5 Gflop over
Swin-L's four levels at 512 px, batch 2, against roughly 700 Gflop for the
forward pass (Swin-L: ~34 G multiply-adds per 224² image, ~(512/224)² that at
512).  `feature_density` computes them as matrix products over 8×8 tiles
that do 2.15× the pairs (~11 Gflop, ~1.6 % of the forward at the same
efficiency), plus a few passes over the features (centring, window means,
gathers) that are memory-bound.
"""

import argparse
import json
import sys

from common import (
    add_backend_arguments,
    apply_quick,
    compile_fn,
    compile_forward,
    compile_mode,
    describe_machine,
    interleaved_medians,
    mib,
    peak_memory_bytes,
    run_all_backends,
    run_probe,
    select_backend,
    timed,
    verdict,
)

GOAL = 0.03  # ≤ 3 % of one teacher forward pass, all four levels together
GOALS = ("D exact", "W (D exact)")
# keras-hub's Swin presets: (embed_dim, depths, num_heads).
SWIN = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
QUICK = {"teacher": "tiny", "image_size": 224, "batch": 1, "window_size": 7, "repeats": 2}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=512,
                        help="square input side; a multiple of 32 (default 512).")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median).")
    parser.add_argument("--teacher", choices=sorted(SWIN), default="large",
                        help="Swin hyperparameters of the teacher (default large).")
    parser.add_argument("--window-size", type=int, default=12,
                        help="Swin attention window (12, as Swin-L segmentation at 512).")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory measurements.")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: Swin-T at 224×224, batch 1, window 7, 2 repeats, "
             "memory of the stride-4 map only (explicit flags still win).")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    apply_quick(args, argv, QUICK)
    return args


def level_shapes(args):
    """(batch, height, width, channels) of the teacher's four levels."""
    embed_dim = SWIN[args.teacher][0]
    side = args.image_size // 4
    return [
        (args.batch, side >> i, side >> i, embed_dim << i) for i in range(4)
    ]


def check_sizes(args):
    if args.image_size % 32:
        sys.exit(f"--image-size must be a multiple of 32 (Swin's stride); got {args.image_size}.")
    if args.image_size // 32 < args.window_size:
        # keras-hub 0.32 shrinks the window of such a stage but not its
        # attention's relative-position table, and fails.
        sys.exit(
            f"--image-size {args.image_size} gives a last Swin stage of "
            f"{args.image_size // 32}×{args.image_size // 32}, smaller than --window-size "
            f"{args.window_size}; keras-hub's Swin needs it at least as large.")
    if args.batch < 1 or args.repeats < 1:
        sys.exit("--batch and --repeats must be ≥ 1.")


def random_features(shape, seed=0):
    import keras
    import numpy as np

    values = np.random.default_rng(seed).normal(size=shape).astype("float32")
    return keras.ops.convert_to_tensor(values)


def probe(spec, jit):
    """In a fresh process: print the peak memory of D for one map and method."""
    from keras_sard.structure import feature_density

    shape, method = spec.rsplit(",", 1)
    shape = tuple(int(v) for v in shape.split("x"))
    features = random_features(shape)
    density = compile_fn(lambda f: feature_density(f, 7, method), jit)
    peak, how = peak_memory_bytes(density, features)
    print(json.dumps({"peak": peak, "how": how}))


def main(argv):
    args = parse_args(argv)
    if args.all_backends:
        return run_all_backends(__file__, argv)
    backend = select_backend(args)
    jit = not args.no_jit
    if args.probe:
        probe(args.probe, jit)
        return 0
    check_sizes(args)

    import keras
    import keras_hub
    import numpy as np

    from keras_sard.structure import (
        StructureWeights,
        corner_strength,
        edge_strength,
        feature_density,
    )

    embed_dim, depths, num_heads = SWIN[args.teacher]
    print(f"structure_map benchmark: backend {backend}, {compile_mode(jit)}; {describe_machine()}")
    print(
        f"teacher: Swin-{args.teacher[0].upper()} (keras-hub SwinTransformerBackbone, "
        f"embed {embed_dim}, depths {depths}, heads {num_heads}, window {args.window_size}), "
        f"random weights, input {args.batch}×{args.image_size}×{args.image_size}×3")
    keras.utils.set_random_seed(0)
    teacher = keras_hub.models.SwinTransformerBackbone(
        image_shape=(args.image_size, args.image_size, 3),
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=args.window_size,
    )
    images = keras.ops.convert_to_tensor(
        np.random.default_rng(0).random((args.batch, args.image_size, args.image_size, 3), "float32"))
    shapes = level_shapes(args)
    features = [random_features(shape, seed=level) for level, shape in enumerate(shapes)]
    terms = {
        "D exact": lambda f: feature_density(f, 7, "exact"),
        "D variance": lambda f: feature_density(f, 7, "variance"),
        "E multi-scale": edge_strength,
        "E single-scale": lambda f: edge_strength(f, scales=None),
        "C": corner_strength,
        "W (D exact)": StructureWeights(),
        "W (D variance)": StructureWeights(density="variance"),
    }
    calls = {"forward": timed(compile_forward(teacher, jit), images)}
    for name, term in terms.items():
        compiled = compile_fn(term, jit)
        for level, level_features in enumerate(features):
            calls[level, name] = timed(compiled, level_features)
    t = interleaved_medians(calls, args.repeats)
    forward = t["forward"]
    print(f"teacher forward: {forward * 1e3:.1f} ms (median of {args.repeats})")

    print(f"\nper teacher level, ratio to the teacher forward; goals: D exact ≤ {GOAL:.0%} and "
          f"W (D exact) ≤ {GOAL:.0%}, all four levels together")
    print(f"{'level':<17}{'map (B×H×W×C)':<22}{'term':<16}{'ms':>10}{'ratio':>9}  goal")

    def row(level, shape, name, seconds, goal):
        ratio = seconds / forward
        mark = verdict(ratio <= GOAL) if goal else "-"
        print(f"{level:<17}{shape:<22}{name:<16}{seconds * 1e3:>10.2f}{ratio:>9.2%}  {mark}")

    for level, shape in enumerate(shapes):
        for name in terms:
            row(f"stride {4 << level}", "×".join(map(str, shape)), name, t[level, name], False)
    for name in terms:
        total = sum(t[level, name] for level in range(len(shapes)))
        row("all four levels", "", name, total, name in GOALS)

    if args.no_memory:
        return 0
    print("\npeak memory of D (radius 7), one fresh process per measurement, "
          "above the memory live before the call")
    print(f"{'map (B×H×W×C)':<22}{'input MiB':>10}{'exact MiB':>11}{'variance MiB':>14}  measured by")
    for shape in shapes[:1] if args.quick else shapes:
        spec = "x".join(map(str, shape))
        peaks, how = {}, ""
        for method in ("exact", "variance"):
            extra = ["--no-jit"] if args.no_jit else []
            result = json.loads(run_probe(__file__, backend, ["--probe", f"{spec},{method}", *extra]))
            peaks[method], how = result["peak"], result["how"]
        size = 4 * int(np.prod(shape))
        print(f"{'×'.join(map(str, shape)):<22}{mib(size):>10.1f}{mib(peaks['exact']):>11.1f}"
              f"{mib(peaks['variance']):>14.1f}  {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
