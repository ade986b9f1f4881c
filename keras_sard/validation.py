"""The conventions every module shares: constants and argument checks.

One home for each rule (Keras keeps its own in ``utils/argument_validation.py``):
the ignore label, the pyramid's strides and the input-size multiple they
imply, the checks that turn a bad argument into a ValueError naming the
argument, what was expected and what was given, and the one reader of a
model's declared input.  Each check returns the value, normalised (an int, a
float, a tuple), so callers write ``self.radius = check_int(radius, "radius")``.

This module imports neither Keras nor TensorFlow.

>>> check_int(3, "epochs"), check_number(0.5, "alpha", maximum=1, inclusive=False)
(3, 0.5)
>>> check_int(0, "epochs")
Traceback (most recent call last):
...
ValueError: `epochs` must be an integer ≥ 1; got 0.
"""

import math
import numbers

__all__ = [
    "IGNORE_LABEL",
    "PYRAMID_STRIDES",
    "SIZE_MULTIPLE",
    "check_choice",
    "check_ignore_label",
    "check_image_size",
    "check_int",
    "check_num_classes",
    "check_number",
    "check_rank4",
    "check_seed",
    "check_weight",
    "is_int",
    "is_number",
    "model_image_size",
    "model_inputs",
    "model_num_classes",
]

IGNORE_LABEL = 255
"""Label value excluded from losses and metrics (the convention of every reader)."""

PYRAMID_STRIDES = (4, 8, 16, 32)
"""The strides of the four feature levels every model builder exposes."""

SIZE_MULTIPLE = PYRAMID_STRIDES[-1]
"""Model inputs are multiples of the pyramid's coarsest stride."""


# ---------------------------------------------------------------- numbers


def is_int(value):
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, argument, minimum=1, allow_none=False):
    """`value` as an int ≥ `minimum` (or None where `allow_none`)."""
    if value is None and allow_none:
        return None
    if not is_int(value) or value < minimum:
        expected = f"an integer ≥ {minimum}"
        if allow_none:
            expected = "None or " + expected
        raise ValueError(f"`{argument}` must be {expected}; got {value!r}.")
    return int(value)


def check_number(value, argument, minimum=0.0, *, inclusive=True, maximum=math.inf,
                 maximum_inclusive=False):
    """`value` as a float in the range from `minimum` to `maximum` (each end
    included or not); NaN and, by default, infinity are refused.

    >>> check_number(2, "temperature", inclusive=False)
    2.0
    >>> check_number(1.0, "mask_ratio", inclusive=False, maximum=1)
    Traceback (most recent call last):
    ...
    ValueError: `mask_ratio` must be a number in (0, 1); got 1.0.
    """
    valid = is_number(value) and (value >= minimum if inclusive else value > minimum) and (
        value <= maximum if maximum_inclusive else value < maximum)
    if not valid:  # NaN too: every comparison with it is False
        if maximum == math.inf:
            expected = f"{'≥' if inclusive else '>'} {minimum:g} and finite"
        else:
            expected = (f"in {'[' if inclusive else '('}{minimum:g}, {maximum:g}"
                        f"{']' if maximum_inclusive else ')'}")
        raise ValueError(f"`{argument}` must be a number {expected}; got {value!r}.")
    return float(value)


def check_weight(value, argument):
    """A loss weight: a finite number ≥ 0, as a float."""
    return check_number(value, argument)


def check_seed(seed, argument="seed"):
    """A random seed: None or an int."""
    if seed is not None and not is_int(seed):
        raise ValueError(f"`{argument}` must be None or an integer; got {seed!r}.")
    return None if seed is None else int(seed)


# ------------------------------------------------------------------ names


def check_choice(value, choices, argument):
    """`value` if it is one of `choices`, else a ValueError naming `argument`
    (the arguments that pick a reading, a method, a padding ...)."""
    if value not in choices:
        raise ValueError(f"`{argument}` must be one of {choices}; got {value!r}.")
    return value


# ----------------------------------------------------------------- labels


def check_num_classes(num_classes, argument="num_classes"):
    """A number of classes: an int ≥ 2 (binary segmentation is 2)."""
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(
            f"`{argument}` must be an integer ≥ 2 (binary segmentation is 2: background "
            f"and foreground); got {num_classes!r}."
        )
    return int(num_classes)


def check_ignore_label(ignore_label):
    """The label value judged nowhere: an int, or None for none."""
    if ignore_label is not None and not is_int(ignore_label):
        raise ValueError(f"`ignore_label` must be an integer or None; got {ignore_label!r}.")
    return None if ignore_label is None else int(ignore_label)


# ----------------------------------------------------------------- shapes


def check_rank4(shape, argument):
    """A channels_last (batch, height, width, channels) shape with known
    channels, as a tuple."""
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"`{argument}` must be rank-4 channels_last (batch, height, width, "
            f"channels); got shape {None if shape is None else tuple(shape)}."
        )
    if shape[-1] is None:
        raise ValueError(
            f"`{argument}` must have a known channel count; got shape {tuple(shape)}."
        )
    return tuple(shape)


def check_image_size(image_size, allow_none=True):
    """`image_size` as a ``(height, width)`` tuple, each an int divisible by
    `SIZE_MULTIPLE` (or None, any size, where `allow_none`).

    Accepts an int (square), a pair, ``(height, width, 3)``, or None
    (``(None, None)``).

    >>> check_image_size(64), check_image_size((64, 96, 3)), check_image_size(None)
    ((64, 64), (64, 96), (None, None))
    """
    if image_size is None:
        if allow_none:
            return (None, None)
        raise ValueError(
            "image_size is required here (the model is built for one input size); pass an "
            f"int or a (height, width) pair, each divisible by {SIZE_MULTIPLE}."
        )
    if is_int(image_size):
        size = (image_size, image_size)
    elif isinstance(image_size, str):
        size = ()
    else:
        try:
            size = tuple(image_size)
        except TypeError:
            size = ()
        if len(size) == 3 and size[2] == 3:  # (H, W, 3) is accepted as well
            size = size[:2]
    if len(size) != 2:
        raise ValueError(
            f"image_size must be an int or a (height, width) pair; got {image_size!r}."
        )
    checked = []
    for value in size:
        if value is None and allow_none:
            checked.append(None)
            continue
        if not is_int(value) or value <= 0:
            raise ValueError(
                f"image_size must hold positive ints (or None for any size); got {image_size!r}."
            )
        if value % SIZE_MULTIPLE:
            raise ValueError(
                f"image_size {image_size!r} is not divisible by {SIZE_MULTIPLE}: the feature "
                f"pyramid has strides {PYRAMID_STRIDES}, so height and width must be multiples "
                f"of {SIZE_MULTIPLE} (e.g. {(value // SIZE_MULTIPLE + 1) * SIZE_MULTIPLE})."
            )
        checked.append(int(value))
    return tuple(checked)


# ----------------------------------------------------------------- models


def model_inputs(model):
    """The symbolic inputs a model declares, as a list (the one reader of a
    model's input); None when it declares none (a subclassed model never
    built)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError, TypeError):
        return None
    if inputs is None:
        return None
    if isinstance(inputs, dict):
        return list(inputs.values())
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    return [inputs]


def model_image_size(model):
    """``(height, width)`` of the images a one-input model declares (None
    for a dimension it leaves free); None when its input is unknown.

    >>> class Declared:
    ...     inputs = [type("Input", (), {"shape": (None, 64, 96, 3)})()]
    >>> model_image_size(Declared())
    (64, 96)
    """
    inputs = model_inputs(model)
    if not inputs or len(inputs) != 1 or len(inputs[0].shape) != 4:
        return None
    return tuple(inputs[0].shape[1:3])


def model_num_classes(model):
    """The logit channels of a one-output segmenter (its last output axis);
    None when it declares no output."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError, TypeError):
        return None
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not outputs:
        return None
    return outputs[0].shape[-1]
