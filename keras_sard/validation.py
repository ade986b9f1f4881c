"""The conventions every module shares: constants and argument checks.

One home for each rule (Keras keeps its own in ``utils/argument_validation.py``):
the ignore label, the pyramid's strides and the input-size multiple they
imply, and the checks that turn a bad argument into a ValueError naming the
argument, what was expected and what was given.  Each check returns the value
(normalised: an int, a float, a tuple) so callers write
``self.radius = check_int(radius, "radius")``.

This module imports neither Keras nor TensorFlow.

>>> check_int(3, "epochs")
3
>>> check_int(0, "epochs")
Traceback (most recent call last):
...
ValueError: `epochs` must be an integer ≥ 1; got 0.
"""

import numbers

__all__ = ["check_int", "is_int"]


def is_int(value):
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
