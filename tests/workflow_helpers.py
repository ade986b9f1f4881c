"""Trained artefacts shared by the CLI, example and table-runner tests.

Each is made once per test session (a pytest process, so once per backend)
by the command line itself, and kept in a temporary folder removed at exit.
"""

import atexit
import contextlib
import functools
import io
import os
import shutil
import tempfile

from keras_sard import cli

# Tiny models of the "small" recipe, 32×32 synthetic images, two steps each
# (BatchNorm statistics re-estimated on two batches).
TINY = ["--tiny", "--image-size", "32", "--num-examples", "8", "--epochs", "1",
        "--steps-per-epoch", "2", "--batch-size", "4", "--recalibration-batches", "2"]


def run_cli(*argv, capsys=None):
    """``keras-sard argv`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@functools.lru_cache(maxsize=None)
def _folder():
    folder = tempfile.mkdtemp(prefix="keras_sard_workflow_tests_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.lru_cache(maxsize=None)
def trained_teacher():
    """``keras-sard train-teacher`` on tiny settings: (path, its stdout)."""
    path = os.path.join(_folder(), "teacher.keras")
    code, out, err = run_cli("train-teacher", *TINY, "--output", path)
    assert code == 0, err
    return path, out


@functools.lru_cache(maxsize=None)
def distilled_student():
    """``keras-sard distill --method kd`` from `trained_teacher`: (path, stdout).
    (SARD itself runs in the table runner's test, on lighter models.)"""
    path = os.path.join(_folder(), "student.keras")
    code, out, err = run_cli("distill", *TINY, "--teacher", trained_teacher()[0],
                             "--method", "kd", "--output", path)
    assert code == 0, err
    return path, out


def native_export_format(backend):
    """A format each backend writes in-process (no TensorFlow-backend copy)."""
    return {"tensorflow": "tflite", "jax": "saved_model", "torch": "onnx"}[backend]
