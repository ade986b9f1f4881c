"""Models in ``.keras`` files, with clear errors for anything else.

>>> import keras, os, tempfile
>>> inputs = keras.Input((8, 8, 3))
>>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
>>> path = save_model(model, os.path.join(tempfile.mkdtemp(), "runs", "m.keras"))
>>> load_model(path).output.shape
(None, 8, 8, 2)
"""

import os
import zipfile

import keras

# keras_sard's registered classes (models' layers, losses, metrics, the
# Distiller), so that files holding them load.
import keras_sard.distiller  # noqa: F401
import keras_sard.metrics  # noqa: F401
import keras_sard.models.pyramids  # noqa: F401
import keras_sard.models.upernet  # noqa: F401

__all__ = ["load_model", "save_model"]


def save_model(model, path):
    """``model.save(path)`` into a ``.keras`` file (folders created); returns the path."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"Models are saved as '.keras' files; got the path '{path}'.")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    model.save(path)
    return path


def load_model(path):
    """A model saved with `save_model` (or any ``.keras`` file), uncompiled."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"Expected a '.keras' model file; got '{path}'.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at '{path}'.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"'{path}' is not a Keras model file (the zip archive model.save "
                         "writes).")
    return keras.saving.load_model(path, compile=False)
