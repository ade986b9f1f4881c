"""The only backend-specific code of keras_sard: one training/evaluation step
per Keras backend, following Keras' guides on customising ``fit()`` for
TensorFlow, JAX and PyTorch.  Everything they call is shared ``keras.ops``
code on the `Distiller`:

- ``model.compute_distillation(x, y, sample_weight, training)`` → the total
  loss, each term by name, and the student's prediction (one teacher and one
  student forward pass);
- ``model.label_errors(y)`` and ``model.step_is_valid(total, gradients,
  label_count)`` → whether the step may be applied (finite loss and
  gradients, valid labels); a step that may not is skipped, never applied
  with zeroed gradients;
- ``model.update_metrics(...)``, ``model.update_step_checks(...)`` and
  ``model.step_logs(y)`` → the loss trackers, compiled metrics, the
  ``skipped_steps`` count and the logs.

`steps` is the module for the active backend; it exposes ``train_step``,
``test_step``, ``inference_scope`` (a context that records no gradient),
``replica_position`` (this replica's index and the number of replicas) and
``keep_state`` (write a step's returned state back before an error).
"""

import importlib

import keras
from keras import ops

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


def batch_normal(shape, seed):
    """``keras.random.normal(shape, seed=seed)`` (float32) for a batch-first
    shape, with the same numbers under tf.distribute as on one device.

    Each replica of a MirroredStrategy sees only its share of the batch, and
    every replica's SeedGenerator is in the same state: drawn naively, all
    replicas would use the same noise for different images.  Here each draws
    the noise of the whole global batch and keeps its own rows (Keras gives
    replicas equal, consecutive shares of each batch), so the loss matches a
    single-device run.  On JAX and PyTorch this is a plain draw.
    """
    index, count = steps.replica_position()
    if count == 1:
        return keras.random.normal(shape, dtype="float32", seed=seed)
    shape = tuple(shape)
    batch = shape[0]
    noise = keras.random.normal((count * batch,) + shape[1:], dtype="float32", seed=seed)
    return ops.slice(noise, (index * batch,) + (0,) * (len(shape) - 1), shape)
