"""Draw docs/images/structure.png, the README's picture of SARD's structure map W.

Trains the small recipe's teacher (`build_small_segmenter`, widths 32-64-128-256)
for a few epochs on synthetic rock fragments, then draws with
`keras_sard.visualize.plot_structure` one held-out 256 × 256 image, the
teacher's E, C and D terms and W at its first level (stride 4, 64 × 64), and
W over the image.  A few minutes on 2 CPU cores (TensorFlow)::

    python docs/images/make_structure_png.py [--epochs 30] [--output docs/images/structure.png]
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", default=os.path.join(ROOT, "docs", "images", "structure.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.path.insert(0, ROOT)

    import keras
    import numpy as np

    from keras_sard.data import make_pipeline, make_synthetic
    from keras_sard.losses import SegmentationLoss
    from keras_sard.models import build_small_segmenter
    from keras_sard.visualize import plot_structure

    keras.utils.set_random_seed(args.seed)
    train = make_synthetic("fragments", 192, (128, 128), seed=args.seed)
    val = make_synthetic("fragments", 4, (128, 128), seed=args.seed, split="val")
    # Scenes rendered at 128 px and enlarged 2×.
    batches = make_pipeline(train, 16, training=True, crop_size=128, seed=args.seed,
                            scale_range=(2, 2), cache=True)
    teacher = build_small_segmenter(1, None, (32, 64, 128, 256), name="teacher")
    steps = args.epochs * (192 // 16)
    teacher.compile(optimizer=keras.optimizers.AdamW(
        keras.optimizers.schedules.CosineDecay(2e-3, steps), weight_decay=0.01),
        loss=SegmentationLoss())
    teacher.fit(batches, epochs=args.epochs, shuffle=False, verbose=2)

    images, _ = next(iter(make_pipeline(val, 4, training=False, eval_size=256)))
    image = np.asarray(images[0])
    path = plot_structure(image, teacher, "teacher_level_1", args.output, panel_pixels=190,
                          title="teacher level 1 (stride 4) on a held-out synthetic image")
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
