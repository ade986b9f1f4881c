"""The same inputs give the same numbers on TensorFlow, JAX and PyTorch.

Each backend needs its own process, so this runs tests/cross_backend_probe.py
three times and compares every quantity.  It runs in the TensorFlow pass of
the suite only (once is enough; the other passes skip it).
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")
HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="compares all three backends; runs once, in the TensorFlow pass",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cross_backend")
    out = {}
    for backend in BACKENDS:
        path = str(folder / f"{backend}.npz")
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.path.dirname(HERE))
        run = subprocess.run(
            [sys.executable, os.path.join(HERE, "cross_backend_probe.py"), path],
            env=env, capture_output=True, text=True,
        )
        assert run.returncode == 0, f"{backend} probe failed:\n{run.stderr[-3000:]}"
        out[backend] = dict(np.load(path))
    return out


def test_every_quantity_agrees_across_backends(results):
    reference = results["tensorflow"]
    assert len(reference) >= 12
    for backend in ("jax", "torch"):
        assert set(results[backend]) == set(reference)
        for key, expected in reference.items():
            actual = results[backend][key]
            assert np.all(np.isfinite(actual)), (backend, key)
            scale = max(float(np.abs(expected).max()), 1e-30)
            np.testing.assert_allclose(
                actual, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{backend}: {key}"
            )
