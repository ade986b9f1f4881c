"""How long checking a dataset's files takes (`keras_sard.data.validate_files`,
headers only) against decoding every file, on generated image/mask pairs.

    python benchmarks/validate_data.py                 # 2000 pairs of 256x256 JPEG + PNG
    python benchmarks/validate_data.py --pairs 500 --size 1024 --format tif

Prints the seconds of each and their ratio, measured in one run (the files
are written once, then read from the page cache by both).  No Keras, no
TensorFlow: the check runs before either is needed.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_sard.data.decode import read_image, read_label_image  # noqa: E402
from keras_sard.data.validate import validate_files  # noqa: E402

SUFFIXES = {"jpg": (".jpg", ".png"), "png": (".png", ".png"), "tif": (".tif", ".tif")}


def write_pairs(root, count, size, fmt, seed=0):
    rng = np.random.default_rng(seed)
    image_suffix, mask_suffix = SUFFIXES[fmt]
    (root / "images").mkdir()
    (root / "masks").mkdir()
    pairs = []
    for index in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = (rng.random((size, size)) < 0.3).astype(np.uint8)
        image_path = root / "images" / f"{index:05d}{image_suffix}"
        mask_path = root / "masks" / f"{index:05d}{mask_suffix}"
        Image.fromarray(image).save(image_path)
        Image.fromarray(mask).save(mask_path)
        pairs.append((str(image_path), str(mask_path)))
    return pairs


def seconds(function, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--format", choices=sorted(SUFFIXES), default="jpg")
    parser.add_argument("--repeats", type=int, default=3, help="best of N")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="keras_sard_validate_"))
    try:
        pairs = write_pairs(root, args.pairs, args.size, args.format)
        megabytes = sum(os.path.getsize(p) for pair in pairs for p in pair) / 2**20
        check = seconds(lambda: validate_files(pairs), args.repeats)
        decode = seconds(lambda: [(read_image(i), read_label_image(m)) for i, m in pairs],
                         args.repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.pairs} pairs ({2 * args.pairs} files, {args.format}, {args.size}x{args.size}, "
          f"{megabytes:.0f} MB), best of {args.repeats}:")
    print(f"validate_files (headers): {check:.3f} s, {1e6 * check / (2 * args.pairs):.0f} us "
          "a file")
    print(f"decoding every file:      {decode:.3f} s")
    print(f"ratio check / decode:     {check / decode:.3f}")


if __name__ == "__main__":
    main()
