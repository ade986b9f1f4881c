"""Writers of tiny dataset files in their native formats, for the reader tests."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image


def save_image(path, array, **kwargs):
    """Save ``array`` with PIL (format from the suffix), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **kwargs)
    return path


def random_rgb(rng, height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_corrupt(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    return path


def read_all(data):
    """Every (image, mask) of a SegmentationData as NumPy arrays."""
    return [(image, mask) for image, mask in data.dataset.as_numpy_iterator()]


def raises_naming(path, exception=Exception):
    """``pytest.raises`` that also checks the message names ``path``'s file."""
    return pytest.raises(exception, match=Path(path).name.replace(".", r"\."))


def iterate_expecting_error(data, path):
    """Iterating ``data`` must fail with an error that names ``path``."""
    with pytest.raises((tf.errors.OpError, ValueError, FileNotFoundError)) as info:
        read_all(data)
    assert Path(path).name in str(info.value), str(info.value)[:500]
