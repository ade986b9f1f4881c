"""keras_sard: Structure-Aware Representation Distillation for Keras 3.

The core (structure maps, losses, methods, metrics) is imported with the package;
the heavier submodules (data, models, export, visualize, callbacks) load on
first access.
"""

import importlib

from keras_sard import losses, methods, metrics, structure
from keras_sard.distiller import Distiller

__version__ = "0.1.0"
__all__ = ["Distiller", "losses", "methods", "metrics", "structure"]

_LAZY_SUBMODULES = ("data", "models", "export", "visualize", "callbacks", "cli")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"keras_sard.{name}")
    raise AttributeError(f"module 'keras_sard' has no attribute {name!r}")
