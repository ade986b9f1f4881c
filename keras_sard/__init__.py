"""keras_sard: Structure-Aware Representation Distillation for Keras 3.

Every name loads on first access (``keras_sard.Distiller``,
``keras_sard.losses``, ``keras_sard.training`` ...): ``import keras_sard``
imports neither Keras nor TensorFlow, so the command line can still choose
Keras' backend (``keras-sard --backend jax``).

>>> import keras_sard
>>> keras_sard.methods.parse_method("sard+kd")
('sard', 'kd')
"""

from keras_sard.lazy import lazy_exports

__version__ = "0.1.0"
__all__ = ["Distiller", "losses", "methods", "metrics", "structure"]

_SUBMODULES = ("callbacks", "cli", "data", "distiller", "export", "losses", "maps", "methods",
               "metrics", "models", "schedules", "structure", "tables", "taps", "training",
               "validation", "visualize")

__getattr__, __dir__ = lazy_exports(__name__, {
    "Distiller": "keras_sard.distiller",
    **{name: f"keras_sard.{name}" for name in _SUBMODULES},
})
