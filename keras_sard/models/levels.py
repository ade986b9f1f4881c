"""The feature-pyramid contract every model builder follows.

Four levels with strides 4, 8, 16, 32 (channels_last), each the output of a
layer named ``f"{name}_level_{i}"`` (i = 1..4) that a Distiller can tap; so
the input height and width must be divisible by 32.

>>> level_names("student")
('student_level_1', 'student_level_2', 'student_level_3', 'student_level_4')
"""

import numbers

PYRAMID_STRIDES = (4, 8, 16, 32)
SIZE_MULTIPLE = 32


def level_names(name):
    """The four tappable level layers of the model (or pyramid) called `name`."""
    return tuple(f"{name}_level_{i}" for i in range(1, len(PYRAMID_STRIDES) + 1))


def normalize_image_size(image_size, allow_none=True):
    """`image_size` as a ``(height, width)`` tuple, each an int divisible by 32
    (or None where `allow_none`).

    Accepts an int (square), a pair, or None (any size: ``(None, None)``).

    >>> normalize_image_size(64)
    (64, 64)
    >>> normalize_image_size((64, 96))
    (64, 96)
    """
    if image_size is None:
        if allow_none:
            return (None, None)
        raise ValueError(
            "image_size is required here (the model is built for one input size); pass an "
            "int or a (height, width) pair, each divisible by 32."
        )
    if _is_int(image_size):
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
        if not _is_int(value) or value <= 0:
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


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
