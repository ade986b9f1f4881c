"""Distributed distillation gives the numbers of one device on the same global batch.

Two virtual CPU devices must exist before the backend starts, so each check
runs tests/distribution_probe.py in a subprocess: on JAX through
keras.distribution (DataParallel, and ModelParallel with the teacher's kernels
split over the devices), on TensorFlow through tf.distribute.MirroredStrategy.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {"jax": ("data_parallel", "model_parallel"), "tensorflow": ("mirrored",)}

pytestmark = pytest.mark.skipif(
    BACKEND == "torch",
    reason="Keras' PyTorch trainer runs on one device: keras.distribution is JAX-only "
    "in Keras 3 and tf.distribute is TensorFlow's",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("distribution") / "runs.npz")
    env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    run = subprocess.run(
        [sys.executable, os.path.join(HERE, "distribution_probe.py"), path],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"distribution probe failed:\n{run.stderr[-3000:]}"
    return dict(np.load(path))


def test_distributed_losses_and_weights_match_one_device(results):
    single = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith("single/")}
    assert {"loss", "task_loss", "sard_fc", "sard_da"} <= set(single)
    assert np.all(single["skipped_steps"] == 0)
    assert single["nan_epoch_skipped_steps"].tolist() == [1.0]  # the NaN batch, on every run
    for run in RUNS[BACKEND]:
        for key, expected in single.items():
            actual = results[f"{run}/{key}"]
            if "/" in key:
                # Weights after 5 SGD steps (lr 0.5): a gradient summed instead of
                # averaged over replicas moves them by ~1e-2; summation order
                # leaves ~1e-6.
                np.testing.assert_allclose(actual, expected, atol=1e-5, err_msg=f"{run}: {key}")
            else:  # every loss term, the noisy L_DA included
                np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=f"{run}: {key}")
    if BACKEND == "jax":
        assert int(results["model_parallel/teacher_kernel_shards"]) == 2
