"""The feature-pyramid contract every model builder follows.

Four levels with strides 4, 8, 16, 32 (channels_last), each the output of a
layer named ``f"{name}_level_{i}"`` (i = 1..4) that a Distiller can tap; so
the input height and width must be divisible by 32.  The strides, the size
multiple and `normalize_image_size` (the image-size check) live in
`keras_sard.validation`, the home of every shared rule.

>>> level_names("student")
('student_level_1', 'student_level_2', 'student_level_3', 'student_level_4')
"""

from keras_sard.validation import PYRAMID_STRIDES, SIZE_MULTIPLE  # noqa: F401  (re-exported)
from keras_sard.validation import check_image_size as normalize_image_size  # noqa: F401


def level_names(name):
    """The four tappable level layers of the model (or pyramid) called `name`."""
    return tuple(f"{name}_level_{i}" for i in range(1, len(PYRAMID_STRIDES) + 1))
