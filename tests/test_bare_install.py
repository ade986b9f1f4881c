"""Every public module imports without the optional extras (tests/check_bare_install.py).

.ci/run runs that script in a real bare install (``pip install -e .``) before
installing the dev extras; here the same script runs in the development
environment with the extras hidden, so a new top-level import of an optional
package fails the suite too.
"""

import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Everything that is not in [project] dependencies: the extras and the test tools.
OPTIONAL = ("matplotlib", "onnx", "onnxruntime", "tf2onnx", "jax", "jaxlib", "torch",
            "pytest", "_pytest")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="a bare install runs on TensorFlow: checked on the TensorFlow run")
def test_every_public_module_imports_without_the_extras():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "check_bare_install.py"), "--hide", *OPTIONAL],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "all import" in result.stdout
    for extra in ("viz", "export"):
        assert f"without [{extra}]" in result.stdout, result.stdout
