"""keras_sard.validation: the shared constants and argument checks, and the
layout rules they serve (one home per rule, no module importing another's
private names)."""

import ast
import math
import os

import numpy as np
import pytest

from keras_sard import validation
from keras_sard.validation import (IGNORE_LABEL, PYRAMID_STRIDES, SIZE_MULTIPLE, check_choice,
                                   check_ignore_label, check_image_size, check_int,
                                   check_num_classes, check_number, check_rank4, check_seed,
                                   check_weight, model_image_size, model_inputs)

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_sard")


def test_constants():
    assert IGNORE_LABEL == 255 and PYRAMID_STRIDES == (4, 8, 16, 32) and SIZE_MULTIPLE == 32
    from keras_sard.data import IGNORE_LABEL as data_ignore_label
    from keras_sard.models.levels import SIZE_MULTIPLE as levels_multiple

    assert data_ignore_label is IGNORE_LABEL and levels_multiple is SIZE_MULTIPLE


def test_checks_return_normalised_values():
    assert check_int(np.int64(3), "epochs") == 3 and type(check_int(np.int64(3), "e")) is int
    assert check_int(None, "steps", allow_none=True) is None
    assert check_number(np.float32(0.5), "alpha", inclusive=False, maximum=1.0) == 0.5
    assert check_weight(0, "weight") == 0.0
    assert check_seed(None) is None and check_seed(np.int32(4)) == 4
    assert check_choice("mean", ("mean", "sum"), "channel_reduction") == "mean"
    assert check_num_classes(np.int64(2)) == 2
    assert check_ignore_label(None) is None and check_ignore_label(np.uint8(255)) == 255
    assert check_rank4([2, None, None, 8], "features") == (2, None, None, 8)
    assert check_image_size((np.int64(96), 32)) == (96, 32)


@pytest.mark.parametrize("call, message", [
    (lambda: check_int(True, "epochs"), "`epochs` must be an integer ≥ 1; got True"),
    (lambda: check_int(2.0, "epochs"), "`epochs` must be an integer ≥ 1; got 2.0"),
    (lambda: check_int(-1, "teacher_channels", allow_none=True),
     "`teacher_channels` must be None or an integer ≥ 1"),
    (lambda: check_int(32, "panel_pixels", minimum=64), "`panel_pixels` must be an integer ≥ 64"),
    (lambda: check_number(0, "learning_rate", inclusive=False),
     "`learning_rate` must be a number > 0 and finite; got 0"),
    (lambda: check_number(math.inf, "weight"), "`weight` must be a number ≥ 0 and finite"),
    (lambda: check_number(math.nan, "weight"), "`weight`.*got nan"),
    (lambda: check_number("1", "temperature"), "`temperature`.*got '1'"),
    (lambda: check_number(True, "temperature"), "`temperature`.*got True"),
    (lambda: check_number(1.0, "alpha", inclusive=False, maximum=1.0),
     r"`alpha` must be a number in \(0, 1\); got 1.0"),
    (lambda: check_seed(1.5), "`seed` must be None or an integer; got 1.5"),
    (lambda: check_choice("max", ("mean", "sum"), "channel_reduction"),
     r"`channel_reduction` must be one of \('mean', 'sum'\); got 'max'"),
    (lambda: check_num_classes(1), "`num_classes` must be an integer ≥ 2 \\(binary"),
    (lambda: check_ignore_label("255"), "`ignore_label` must be an integer or None"),
    (lambda: check_rank4((2, 8, 8), "student_features"), "`student_features` must be rank-4"),
    (lambda: check_rank4((2, 8, 8, None), "features"), "known channel count"),
    (lambda: check_image_size(48), r"image_size 48 is not divisible by 32.*e\.g\. 64"),
])
def test_bad_values_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_reader_of_a_models_input():
    import keras

    model = keras.Sequential([keras.Input((32, 48, 3)), keras.layers.Conv2D(2, 1)])
    assert model_image_size(model) == (32, 48)
    assert [tuple(t.shape) for t in model_inputs(model)] == [(None, 32, 48, 3)]
    free = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    assert model_image_size(free) == (None, None)

    class Unbuilt(keras.Model):
        def call(self, x):
            return x

    assert model_inputs(Unbuilt()) is None and model_image_size(Unbuilt()) is None


def _imports(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_sard"):
            yield node.module, [alias.name for alias in node.names]


def _package_files():
    for root, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def test_no_module_imports_another_modules_private_names():
    private = [f"{os.path.relpath(path, PACKAGE)}: from {module} import {name}"
               for path in _package_files() for module, names in _imports(path)
               for name in names if name.startswith("_")]
    assert not private, private


def test_the_shared_checks_module_imports_neither_keras_nor_tensorflow():
    assert not [module for module, _ in _imports(validation.__file__)]
    with open(validation.__file__, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"math", "numbers"}, imported
