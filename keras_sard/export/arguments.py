"""The arguments of `keras_sard.export.export_student`, checked before any
work: the model and its input, the shape to export with, the path, the
sample and calibration images, and the optional ONNX packages."""

import importlib
import os
import tempfile

import keras
import numpy as np

from keras_sard.distiller import Distiller
from keras_sard.validation import model_inputs

__all__ = ["check_writable", "collect_images", "is_array", "model_input", "require_onnx",
           "resolve_input_shape", "shape_text", "student_of"]


def require_onnx(backend, check):
    """ImportError naming the ``export`` extra when an ONNX package is missing."""
    needed = ["onnx"] + (["tf2onnx"] if backend != "torch" else []) + (
        ["onnxruntime"] if check else [])
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"format='onnx' needs {', '.join(missing)}; install them with "
            "`pip install keras-sard[export]` (onnx, onnxruntime, tf2onnx).")


def student_of(model):
    """The model to export: `model`, or a Distiller's student."""
    if isinstance(model, Distiller):
        model = model.student
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model or a keras_sard.Distiller; got {type(model).__name__}.")
    return model

def model_input(model):
    """The per-image shape, dtype and name of the model's one input."""
    inputs = model_inputs(model)
    if inputs is None:
        raise ValueError(
            f"Cannot read the input shape of the model {model.name!r} (it declares no input); "
            "export a functional or Sequential model built on a keras.Input.")
    if len(inputs) != 1:
        raise ValueError(
            f"The model {model.name!r} has {len(inputs)} inputs; a segmentation model to "
            "export takes one batch of images.")
    (tensor,) = inputs
    return tuple(tensor.shape[1:]), keras.backend.standardize_dtype(tensor.dtype), tensor.name

def shape_text(shape):
    """``(None, 32, 3)`` for error messages."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"

def resolve_input_shape(spec_shape, input_shape, format, model_name):
    """The per-image shape to export with: the model's own, filled in by ``input_shape``."""
    if input_shape is None:
        if None in spec_shape and format != "saved_model":
            raise ValueError(
                f"The model {model_name!r} takes images of shape {shape_text(spec_shape)} "
                f"(None = unknown) and format {format!r} needs a fixed one: pass "
                f"`input_shape=(height, width, channels)`, e.g. {_example_shape(spec_shape)}.")
        return spec_shape
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`input_shape` must be a tuple of ints (height, width, channels); got "
            f"{input_shape!r}.") from None
    fits = len(shape) == len(spec_shape) and all(
        d >= 1 and (m is None or m == d) for d, m in zip(shape, spec_shape))
    if not fits:
        raise ValueError(
            f"`input_shape={shape}` does not fit the model {model_name!r}, which takes "
            f"images of shape {shape_text(spec_shape)} (None = any size, batch excluded).")
    return shape

def _example_shape(spec_shape):
    return tuple(512 if d is None else d for d in spec_shape)

def check_writable(path, format):
    """The absolute path, after checking that ``format`` can be written there."""
    path = os.path.abspath(os.fspath(path))
    is_dir = format == "saved_model"
    if os.path.isdir(path) and not is_dir:
        raise ValueError(
            f"Cannot write the {format} file {path}: it is an existing directory.")
    if os.path.exists(path) and not os.path.isdir(path) and is_dir:
        raise ValueError(
            f"Cannot write the SavedModel directory {path}: a file of that name exists.")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(
            f"Cannot write {path}: {ancestor} is a file, not a directory.")
    try:
        handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".keras_sard_export_")
    except OSError as error:
        raise ValueError(
            f"Cannot write {path}: the directory {ancestor} is not writable "
            f"({error.strerror}).") from error
    os.close(handle)
    os.remove(probe)
    return path

def collect_images(data, name, shape, dtype, limit=None):
    """Images ``(N, *shape)`` from an array, a tf.data.Dataset or an iterable of
    images / batches / ``(images, masks)`` pairs; the first ``limit`` if given."""
    rank = len(shape)
    if is_array(data):
        batches = [np.asarray(data)]
    elif isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise ValueError(
            f"`{name}` must be a NumPy array of images, a tf.data.Dataset or an iterable of "
            f"images or (images, masks) batches; got {type(data).__name__}.")
    else:
        batches = data
    images, count = [], 0
    for element in batches:
        if isinstance(element, (tuple, list)) and element:
            element = element[0]
        element = np.asarray(element)
        if element.ndim == rank:
            element = element[None]
        if element.ndim != rank + 1 or any(
                m is not None and m != d for m, d in zip(shape, element.shape[1:])):
            raise ValueError(
                f"`{name}` holds images of shape {element.shape[1:] if element.ndim else ()} "
                f"(from an element of shape {element.shape}); the export takes images of "
                f"shape {shape_text(shape)}.")
        images.append(element)
        count += len(element)
        if limit is not None and count >= limit:
            break
    if count == 0:
        raise ValueError(f"`{name}` holds no images.")
    if len({im.shape[1:] for im in images}) > 1:
        raise ValueError(
            f"`{name}` holds images of several shapes "
            f"{sorted({im.shape[1:] for im in images})}; give images of one shape.")
    return np.concatenate(images)[:limit].astype(dtype, copy=False)

def is_array(data):
    """An array or a tensor of any backend (converted whole, not iterated)."""
    if isinstance(data, np.ndarray):
        return True
    # Tensors of any backend (tf, jax, torch) convert without iterating.
    return hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__array__")
