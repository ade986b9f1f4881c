"""The only backend-specific code of keras_sard: one training/evaluation step
per Keras backend, following Keras' guides on customising ``fit()`` for
TensorFlow, JAX and PyTorch.  Everything they call is shared ``keras.ops``
code on the `Distiller`:

- ``model.compute_distillation(x, y, sample_weight, training)`` → the total
  loss, each term by name, and the student's prediction (one teacher and one
  student forward pass);
- ``model.record_step(total, terms, x, y, y_pred, sample_weight)`` → updates
  the loss trackers and compiled metrics and returns the logs.

`steps` is the module for the active backend; it exposes ``train_step``,
``test_step`` and ``inference_scope`` (a context that records no gradient).
"""

import importlib

import keras

_MODULES = {
    "tensorflow": "tensorflow_steps",
    "jax": "jax_steps",
    "torch": "torch_steps",
}


def _load():
    backend = keras.backend.backend()
    if backend not in _MODULES:
        raise RuntimeError(
            f"keras_sard trains on the TensorFlow, JAX and PyTorch backends; "
            f"KERAS_BACKEND is {backend!r}."
        )
    return importlib.import_module(f"keras_sard.backend.{_MODULES[backend]}")


steps = _load()
