"""The pyramid contract: level names and the image_size check."""

import numpy as np
import pytest

from keras_sard.models import level_names
from keras_sard.models.levels import normalize_image_size


def test_level_names():
    assert level_names("t") == ("t_level_1", "t_level_2", "t_level_3", "t_level_4")


def test_image_sizes():
    assert normalize_image_size(64) == (64, 64)
    assert normalize_image_size((np.int64(96), 32)) == (96, 32)
    assert normalize_image_size((64, 96, 3)) == (64, 96)
    assert normalize_image_size(None) == (None, None)
    assert normalize_image_size((None, 64)) == (None, 64)


@pytest.mark.parametrize(
    "image_size, message",
    [
        (48, r"image_size 48 is not divisible by 32.*e\.g\. 64"),
        ((64, 40), r"image_size \(64, 40\) is not divisible by 32"),
        ((64,), "an int or a \\(height, width\\) pair"),
        ("64", "an int or a \\(height, width\\) pair"),
        ((64, -32), "positive ints"),
        ((64, 32.0), "positive ints"),
        (True, "an int or a \\(height, width\\) pair"),
    ],
)
def test_bad_image_sizes(image_size, message):
    with pytest.raises(ValueError, match=message):
        normalize_image_size(image_size)
    with pytest.raises(ValueError, match="image_size is required"):
        normalize_image_size(None, allow_none=False)
