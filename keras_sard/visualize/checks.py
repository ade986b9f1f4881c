"""The inputs of the figures, checked: images, label maps, feature maps,
paths, panel sizes, and a batch against a model's declared input; and
matplotlib, the optional ``viz`` extra, imported on first use."""

import os

import numpy as np
from keras import ops

from keras_sard.validation import check_int, model_inputs

__all__ = ["MIN_PANEL_PIXELS", "as_numpy", "check_image", "check_label", "check_model_input",
           "check_panel_pixels", "check_path", "require_matplotlib", "single_feature_map"]

MIN_PANEL_PIXELS = 64
"""The smallest panel side a figure is drawn with."""


def require_matplotlib():
    """matplotlib (with its ``figure`` module), imported on first use: it is
    the optional ``viz`` extra, and the error says how to install it."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401  (the Agg-backed Figure class)
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "keras_sard.visualize draws with matplotlib; install it with "
            "`pip install keras-sard[viz]` (or `pip install matplotlib`)."
        ) from error
    return matplotlib


def as_numpy(x):
    """`x` (an array or a tensor of any backend) as a NumPy array."""
    return np.asarray(ops.convert_to_numpy(x)) if not isinstance(x, np.ndarray) else x

def check_image(image, argument="image"):
    """A single image (H, W) or (H, W, C) as a NumPy array."""
    image = as_numpy(image)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(
            f"`{argument}` must be one image of shape (height, width) or "
            f"(height, width, channels); got shape {image.shape}."
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise ValueError(f"`{argument}` must be numeric; got dtype {image.dtype}.")
    return image

def check_label(label, argument="label"):
    """An integer class map (H, W); a trailing channel of 1 is dropped."""
    label = as_numpy(label)
    if label.ndim == 3 and label.shape[-1] == 1:
        label = label[..., 0]
    if label.ndim != 2:
        raise ValueError(
            f"`{argument}` must be an integer class map of shape (height, width) "
            f"or (height, width, 1); got shape {label.shape}."
        )
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(
            f"`{argument}` must hold integer class ids; got dtype {label.dtype}."
        )
    return label.astype("int64")

def check_path(path):
    """A figure's path: a string or path ending in .png."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a file path ending in .png; got {path!r}.")
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"`path` must end in .png (the figure is a PNG); got {path!r}.")
    return path

def check_panel_pixels(panel_pixels):
    """A panel side: an int ≥ `MIN_PANEL_PIXELS`."""
    return check_int(panel_pixels, "panel_pixels", minimum=MIN_PANEL_PIXELS)

def check_model_input(model, inputs, role):
    """Compare a batch with the model's declared input, where it declares one."""
    declared = model_inputs(model)
    if declared is None or len(declared) != 1:
        return
    expected = tuple(declared[0].shape)
    if len(expected) != len(inputs.shape) or any(
        e is not None and e != a for e, a in zip(expected[1:], inputs.shape[1:])
    ):
        raise ValueError(
            f"The {role} ({model.name!r}) expects inputs of shape {expected} (batch "
            f"first, None = any size); got a batch of shape {tuple(inputs.shape)}."
        )

def single_feature_map(features, argument):
    """(h, w, C) float32 from (h, w, C) or (1, h, w, C)."""
    if not hasattr(features, "shape"):
        raise ValueError(
            f"`{argument}` must be one feature map (height, width, channels); got "
            f"{type(features).__name__} (a layer with several outputs cannot be drawn)."
        )
    features = as_numpy(features)
    if features.ndim == 4 and features.shape[0] == 1:
        features = features[0]
    if features.ndim != 3:
        raise ValueError(
            f"`{argument}` must be one channels_last feature map of shape (height, "
            f"width, channels) or (1, height, width, channels); got shape {features.shape}."
        )
    return features.astype("float32")
