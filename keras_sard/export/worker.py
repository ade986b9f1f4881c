"""The TensorFlow subprocess that writes what another backend cannot.

A "TensorFlow-backend copy" is made by saving the model as ``.keras`` and
rebuilding it in a Python subprocess with ``KERAS_BACKEND=tensorflow`` (a
backend is fixed per process).  `tensorflow_worker` starts that subprocess
once, on first use, and keeps it while this process runs; `main` is its loop
(``python -m keras_sard.export.worker``): one JSON request per stdin line,
one JSON reply line each.
"""

import atexit
import importlib
import json
import os
import subprocess
import sys
import tempfile
import traceback

import keras
import numpy as np

from keras_sard.export.writers import write

__all__ = ["TensorFlowWorker", "main", "search_path", "tensorflow_worker",
           "write_from_tensorflow_copy"]


def write_from_tensorflow_copy(model, path, format, signature_shape, input_name,
                                calibration, modules):
    """Save ``model`` as .keras; the TensorFlow worker rebuilds it (importing
    ``modules`` first) and writes ``format``."""
    with tempfile.TemporaryDirectory(prefix="keras_sard_export_") as scratch:
        model_file = os.path.join(scratch, "model.keras")
        model.save(model_file)
        calibration_file = None
        if calibration is not None:
            calibration_file = os.path.join(scratch, "calibration.npy")
            np.save(calibration_file, calibration)
        request = {
            "model": model_file, "path": path, "format": format,
            "input_shape": None if signature_shape is None else list(signature_shape),
            "input_name": input_name, "calibration": calibration_file, "modules": modules,
            "sys_path": search_path(),
        }
        error = tensorflow_worker().run(request)
    if error:
        raise RuntimeError(
            f"Format {format!r} is written from a TensorFlow-backend copy of the "
            f"{keras.backend.backend()}-backend model {model.name!r} (rebuilt from its "
            f".keras file in a subprocess), and that failed:\n{error}")

def search_path():
    """This process's import path, this checkout's keras_sard first."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return list(dict.fromkeys([package_root] + [p or os.getcwd() for p in sys.path]))

class TensorFlowWorker:
    """A Python subprocess with ``KERAS_BACKEND=tensorflow`` that writes exports
    on request.  Started on first use and kept for the life of this process:
    importing TensorFlow alone takes seconds.  Requests go in on its stdin, one
    JSON line each; replies come back on its stdout (everything the worker
    itself prints goes to its stderr, a temporary file)."""

    def __init__(self):
        self._log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, KERAS_BACKEND="tensorflow",
                   PYTHONPATH=os.pathsep.join(search_path()),
                   # The parent (JAX, torch) may hold the GPU; exporting needs none.
                   CUDA_VISIBLE_DEVICES="-1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [sys.executable, "-m", "keras_sard.export.worker"]
        self._process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True)

    def alive(self):
        return self._process.poll() is None

    def run(self, request):
        """The worker's error text, or ``None`` when the export was written."""
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            reply = self._process.stdout.readline()
        except BrokenPipeError:
            reply = ""
        except BaseException:  # interrupted mid-request: the worker's state is unknown
            self.close()
            raise
        if not reply:
            self.close()
            self._log.seek(0)
            tail = "\n".join(self._log.read().strip().splitlines()[-25:])
            return f"the TensorFlow export subprocess exited:\n{tail}"
        return json.loads(reply)["error"]

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

_worker = None


def tensorflow_worker():
    """The running worker, started if none is."""
    global _worker
    if _worker is None or not _worker.alive():
        _worker = TensorFlowWorker()
        atexit.register(_worker.close)
    return _worker

def main():
    """The worker's loop: one request per stdin line, one JSON reply line each."""
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to the log
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("The export worker must run with KERAS_BACKEND=tensorflow.")
    for line in sys.stdin:
        try:
            _write_tensorflow_copy(json.loads(line))
            error = None
        except Exception:
            error = traceback.format_exc(limit=-12)
        keras.backend.clear_session()
        reply.write(json.dumps({"error": error}) + "\n")
        reply.flush()

def _write_tensorflow_copy(request):
    for entry in request["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    for module in request["modules"]:
        importlib.import_module(module)
    # Our own file, just written from the caller's model: Lambda layers may load.
    model = keras.saving.load_model(request["model"], compile=False, safe_mode=False)
    calibration = None if request["calibration"] is None else np.load(request["calibration"])
    shape = None if request["input_shape"] is None else tuple(request["input_shape"])
    write(model, request["path"], request["format"], shape, request["input_name"], calibration)



if __name__ == "__main__":
    main()
