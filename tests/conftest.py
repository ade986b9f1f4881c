"""Shared test set-up: quiet logs, small thread pools, the active backend."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# JAX compiles every eager op (one random initializer per weight shape...): with
# the backend optimiser off, the suite's compile time on JAX roughly halves.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clear session and a fixed global seed."""
    keras.backend.clear_session(free_memory=False)  # gc.collect() costs ~0.4 s a test on torch
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
