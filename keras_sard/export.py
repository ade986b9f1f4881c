"""Export a trained segmentation student and check the artefact against Keras.

``export_student(model, path, format)`` writes one of

=======================  ===================================================
``"saved_model"``        TensorFlow SavedModel directory (endpoint ``serve``)
``"tflite"``             LiteRT / TFLite flatbuffer, float32
``"tflite_float16"``     TFLite, float16 weights
``"tflite_dynamic_int8"``  TFLite, int8 weights, dynamic-range activations
``"tflite_int8"``        TFLite, full integer (int8 weights and activations,
                         float32 input/output), calibrated on
                         ``representative_data``
``"onnx"``               ONNX model
=======================  ===================================================

then (``check=True``) runs the artefact (``tf.saved_model.load``, the TFLite
interpreter, onnxruntime) on sample images next to the Keras model and
returns an `ExportReport`: the largest absolute logit difference and the
mean IoU of the artefact's argmax against the Keras model's argmax.  Float32
formats must agree to ``atol`` (1e-4) or `ExportMismatchError` is raised;
quantised formats are reported, not bounded.

How each format is written:

- Every format is traced from the model called with ``training=False``.
  (Keras' exporters call it without ``training``, which for some models is
  not inference: keras-hub's DeepLabV3 then runs a batch norm on batch
  statistics, and its exports differ from ``predict`` by whole logits.)
- TFLite always comes from a *TensorFlow-backend* SavedModel through
  ``tf.lite.TFLiteConverter.from_saved_model``.  (Keras' own ``litert``
  format refuses JAX and needs ``litert-torch`` on torch; a JAX-backend
  SavedModel converts, but keeps batch-norm statistics as resource variables
  and quantises badly.)  Input and output stay float32 in
  every TFLite format.
- TensorFlow backend: everything in-process (`keras.Model.export`).
- JAX backend: ``saved_model`` in-process (Keras' jax2tf export); TFLite and
  ONNX from a TensorFlow-backend copy.  (Keras' JAX→ONNX path needs the
  ``jax2onnx`` package, and tf2onnx cannot read the XlaCallModule ops of a
  JAX SavedModel.)
- PyTorch backend: ``onnx`` in-process (``torch.onnx`` via Keras); SavedModel
  and TFLite from a TensorFlow-backend copy (Keras' torch SavedModel export
  needs ``torch_xla``).

A "TensorFlow-backend copy" is made by saving the model as ``.keras`` and
rebuilding it in a Python subprocess with ``KERAS_BACKEND=tensorflow`` (a
backend is fixed per process; the subprocess is started once, on first use,
and kept while this process runs).  Its layers must therefore be loadable there:
built-in Keras and keras-hub layers and any custom layer registered with
``keras.saving.register_keras_serializable`` in an importable module (the
modules the model's layers come from are imported in the subprocess).

Example::

    import os, tempfile
    import keras, numpy as np
    from keras_sard.export import export_student

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    student = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    out = tempfile.mkdtemp()
    images = np.random.rand(16, 32, 32, 3).astype("float32")
    print(export_student(student, os.path.join(out, "student.tflite"), "tflite"))
    print(export_student(student, os.path.join(out, "student_int8.tflite"), "tflite_int8",
                         representative_data=images))
"""

import atexit
import dataclasses
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from typing import Optional

import keras
import numpy as np

__all__ = ["FORMATS", "ExportMismatchError", "ExportReport", "export_student"]

FORMATS = (
    "saved_model",
    "tflite",
    "tflite_float16",
    "tflite_dynamic_int8",
    "tflite_int8",
    "onnx",
)
FLOAT32_FORMATS = ("saved_model", "tflite", "onnx")

# Formats each backend writes in-process; the rest go through a
# TensorFlow-backend copy of the model (see the module docstring).
_NATIVE = {
    "tensorflow": set(FORMATS),
    "jax": {"saved_model"},
    "torch": {"onnx"},
}

_DEFAULT_SAMPLES = 4  # random images checked when no sample data is given
_MAX_SAMPLES = 32  # images taken from a dataset / iterable for the check


class ExportMismatchError(RuntimeError):
    """A float32 artefact whose outputs differ from the Keras model's."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_student` wrote and how well it agrees with the Keras model.

    Attributes:
        path: the file (or SavedModel directory) written.
        format: one of `FORMATS`.
        size_bytes: size on disk (all files, for a SavedModel).
        max_abs_diff: largest ``|artefact logits - Keras logits|`` on the
            sample images; ``None`` when not checked.
        agreement_miou: mean IoU of the artefact's argmax against the Keras
            model's argmax (classes present in either); ``None`` when not
            checked.
        num_samples: how many images were checked (0 when not checked).
    """

    path: str
    format: str
    size_bytes: int
    max_abs_diff: Optional[float] = None
    agreement_miou: Optional[float] = None
    num_samples: int = 0

    def __str__(self):
        size = _human_size(self.size_bytes)
        head = f"{self.format}: {self.path} ({size})"
        if self.max_abs_diff is None:
            return f"{head}, not checked"
        return (
            f"{head}; on {self.num_samples} images: max |logit diff| = "
            f"{self.max_abs_diff:.3g}, argmax agreement mIoU = {self.agreement_miou:.4f}"
        )


def export_student(
    model,
    path,
    format,
    *,
    input_shape=None,
    representative_data=None,
    sample_inputs=None,
    check=True,
    atol=1e-4,
    calibration_samples=100,
):
    """Write a trained segmentation model in ``format`` and check it.

    Args:
        model: a Keras segmentation model (one image input, one logits
            output), or a `keras_sard.Distiller` (its ``.student`` is
            exported).
        path: the ``.tflite`` / ``.onnx`` file or the SavedModel directory
            to write; missing parent directories are created, an existing
            artefact is overwritten.
        format: one of `FORMATS`.
        input_shape: the per-image shape ``(height, width, channels)`` to
            export with, where the model's own is unknown (``None``
            dimensions).  TFLite and ONNX need it then; a SavedModel keeps
            unknown dimensions unless it is given.  The batch size stays
            free in every format.
        representative_data: calibration images for ``"tflite_int8"``
            (required there): a NumPy array ``(N, H, W, C)``, a
            ``tf.data.Dataset`` or any iterable of images or of
            ``(images, masks)`` batches (e.g. from
            `keras_sard.data.make_pipeline`), preprocessed as the model's
            inputs are.  The first ``calibration_samples`` images are used.
            If given, its first images are also the default check samples.
        sample_inputs: images to check on, in any form ``representative_data``
            takes (an array is used whole; at most 32 images are drawn from
            a dataset).  Default: the first 8 representative images, else 4
            standard-normal images (the scale of normalised inputs).
        check: run the artefact and compare it with the Keras model.
        atol: the bound on ``max_abs_diff`` for the float32 formats
            (``"saved_model"``, ``"tflite"``, ``"onnx"``).
        calibration_samples: how many representative images calibrate
            ``"tflite_int8"``.

    Returns:
        An `ExportReport` (path, format, size in bytes, ``max_abs_diff``,
        ``agreement_miou``).

    Raises:
        ValueError: an unknown format; a path that cannot be written (checked
            before any work); an unknown input shape without ``input_shape``;
            ``"tflite_int8"`` without ``representative_data``; images whose
            shape does not fit the model.
        ExportMismatchError: a float32 artefact differs from the Keras model
            by more than ``atol`` (the artefact is left at ``path``).
        RuntimeError: the TensorFlow-backend copy could not be built or
            exported (with the subprocess's error).
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; expected one of {list(FORMATS)}.")
    if format == "onnx":
        _require_onnx(keras.backend.backend(), check)
    model = _student_of(model)
    spec_shape, dtype, input_name = _model_input(model)
    export_shape = _resolve_input_shape(spec_shape, input_shape, format, model.name)
    path = _check_writable(path, format)
    backend = keras.backend.backend()
    # Formats this backend cannot write go through a TensorFlow copy of the
    # model, which must be able to import its layers' modules.
    copy_modules = None if format in _NATIVE.get(backend, ()) else _layer_modules(model)

    if format == "tflite_int8" and representative_data is None:
        raise ValueError(
            "format='tflite_int8' (full integer quantisation) needs `representative_data`: "
            "typical input images to calibrate the activation ranges, e.g. a NumPy array "
            f"(N, {', '.join(str(d) for d in export_shape)}) or a tf.data.Dataset of "
            "(images, masks) batches from keras_sard.data.make_pipeline(..., training=False).")
    if int(calibration_samples) < 1:
        raise ValueError(f"`calibration_samples` must be >= 1; got {calibration_samples}.")
    representative = None
    if representative_data is not None:
        representative = _collect_images(representative_data, "representative_data",
                                         export_shape, dtype, int(calibration_samples))
    calibration = representative if format == "tflite_int8" else None
    samples = None
    if check:
        if sample_inputs is not None:
            limit = None if _is_array(sample_inputs) else _MAX_SAMPLES
            samples = _collect_images(sample_inputs, "sample_inputs", export_shape, dtype, limit)
        elif representative is not None:
            samples = representative[:8]
        elif None in export_shape:
            raise ValueError(
                f"The model {model.name!r} takes images of unknown shape "
                f"{_shape_text(spec_shape)}; to check the SavedModel pass "
                "`input_shape=(height, width, channels)` or `sample_inputs`, or check=False.")
        else:
            rng = np.random.default_rng(0)
            samples = rng.standard_normal((_DEFAULT_SAMPLES,) + export_shape).astype(dtype)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    signature_shape = export_shape if input_shape is not None else None
    try:
        if copy_modules is None:
            _write(model, path, format, signature_shape, input_name, calibration)
        else:
            _write_from_tensorflow_copy(model, path, format, signature_shape, input_name,
                                        calibration, copy_modules)
    except Exception as error:
        if None not in export_shape:
            raise
        raise RuntimeError(
            f"Exporting the model {model.name!r} as {format} for images of unknown shape "
            f"{_shape_text(export_shape)} failed ({type(error).__name__}, above); many "
            "segmenters (keras-hub's DeepLabV3 for one) trace only at a fixed size: pass "
            "`input_shape=(height, width, channels)`.") from error

    report = ExportReport(path=path, format=format, size_bytes=_size_on_disk(path))
    if not check:
        return report
    expected = _keras_logits(model, samples)
    actual = _artefact_logits(path, format, samples)
    if actual.shape != expected.shape:
        raise ExportMismatchError(
            f"The {format} artefact at {path} returns logits of shape {actual.shape} for "
            f"{len(samples)} images; the Keras model returns {expected.shape}.")
    with np.errstate(invalid="ignore"):
        max_abs_diff = float(np.max(np.abs(actual - expected)))
    agreement = _agreement_miou(_labels(actual), _labels(expected))
    report = dataclasses.replace(report, max_abs_diff=max_abs_diff,
                                 agreement_miou=agreement, num_samples=len(samples))
    if format in FLOAT32_FORMATS and not max_abs_diff <= atol:  # NaN fails too
        raise ExportMismatchError(
            f"The {format} artefact at {path} disagrees with the Keras model: max |logit "
            f"difference| = {max_abs_diff:.3g} > atol = {atol:g} on {len(samples)} images "
            f"(Keras logits up to |{np.max(np.abs(expected)):.3g}|, argmax agreement mIoU "
            f"{agreement:.4f}). The artefact was left there for inspection.")
    return report


# ---------------------------------------------------------------- arguments


def _require_onnx(backend, check):
    """ImportError naming the ``export`` extra when an ONNX package is missing."""
    needed = ["onnx"] + (["tf2onnx"] if backend != "torch" else []) + (
        ["onnxruntime"] if check else [])
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"format='onnx' needs {', '.join(missing)}; install them with "
            "`pip install keras-sard[export]` (onnx, onnxruntime, tf2onnx).")


def _student_of(model):
    from keras_sard.distiller import Distiller

    if isinstance(model, Distiller):
        model = model.student
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model or a keras_sard.Distiller; got {type(model).__name__}.")
    return model


def _model_input(model):
    try:
        inputs = keras.tree.flatten(model.inputs)
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Cannot read the input shape of the model {model.name!r} ({error}); export a "
            "functional or Sequential model built on a keras.Input.") from error
    if len(inputs) != 1:
        raise ValueError(
            f"The model {model.name!r} has {len(inputs)} inputs; a segmentation model to "
            "export takes one batch of images.")
    (tensor,) = inputs
    return tuple(tensor.shape[1:]), keras.backend.standardize_dtype(tensor.dtype), tensor.name


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _resolve_input_shape(spec_shape, input_shape, format, model_name):
    """The per-image shape to export with: the model's own, filled in by ``input_shape``."""
    if input_shape is None:
        if None in spec_shape and format != "saved_model":
            raise ValueError(
                f"The model {model_name!r} takes images of shape {_shape_text(spec_shape)} "
                f"(None = unknown) and format {format!r} needs a fixed one: pass "
                f"`input_shape=(height, width, channels)`, e.g. {_example_shape(spec_shape)}.")
        return spec_shape
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`input_shape` must be a tuple of ints (height, width, channels); got "
            f"{input_shape!r}.") from None
    fits = len(shape) == len(spec_shape) and all(
        d >= 1 and (m is None or m == d) for d, m in zip(shape, spec_shape))
    if not fits:
        raise ValueError(
            f"`input_shape={shape}` does not fit the model {model_name!r}, which takes "
            f"images of shape {_shape_text(spec_shape)} (None = any size, batch excluded).")
    return shape


def _example_shape(spec_shape):
    return tuple(512 if d is None else d for d in spec_shape)


def _check_writable(path, format):
    """The absolute path, after checking that ``format`` can be written there."""
    path = os.path.abspath(os.fspath(path))
    is_dir = format == "saved_model"
    if os.path.isdir(path) and not is_dir:
        raise ValueError(
            f"Cannot write the {format} file {path}: it is an existing directory.")
    if os.path.exists(path) and not os.path.isdir(path) and is_dir:
        raise ValueError(
            f"Cannot write the SavedModel directory {path}: a file of that name exists.")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(
            f"Cannot write {path}: {ancestor} is a file, not a directory.")
    try:
        handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".keras_sard_export_")
    except OSError as error:
        raise ValueError(
            f"Cannot write {path}: the directory {ancestor} is not writable "
            f"({error.strerror}).") from error
    os.close(handle)
    os.remove(probe)
    return path


def _collect_images(data, name, shape, dtype, limit=None):
    """Images ``(N, *shape)`` from an array, a tf.data.Dataset or an iterable of
    images / batches / ``(images, masks)`` pairs; the first ``limit`` if given."""
    rank = len(shape)
    if _is_array(data):
        batches = [np.asarray(data)]
    elif isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise ValueError(
            f"`{name}` must be a NumPy array of images, a tf.data.Dataset or an iterable of "
            f"images or (images, masks) batches; got {type(data).__name__}.")
    else:
        batches = data
    images, count = [], 0
    for element in batches:
        if isinstance(element, (tuple, list)) and element:
            element = element[0]
        element = np.asarray(element)
        if element.ndim == rank:
            element = element[None]
        if element.ndim != rank + 1 or any(
                m is not None and m != d for m, d in zip(shape, element.shape[1:])):
            raise ValueError(
                f"`{name}` holds images of shape {element.shape[1:] if element.ndim else ()} "
                f"(from an element of shape {element.shape}); the export takes images of "
                f"shape {_shape_text(shape)}.")
        images.append(element)
        count += len(element)
        if limit is not None and count >= limit:
            break
    if count == 0:
        raise ValueError(f"`{name}` holds no images.")
    if len({im.shape[1:] for im in images}) > 1:
        raise ValueError(
            f"`{name}` holds images of several shapes "
            f"{sorted({im.shape[1:] for im in images})}; give images of one shape.")
    return np.concatenate(images)[:limit].astype(dtype, copy=False)


def _is_array(data):
    if isinstance(data, np.ndarray):
        return True
    # Tensors of any backend (tf, jax, torch) convert without iterating.
    return hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__array__")


# ------------------------------------------------------------------ writing


def _signature(shape, dtype, name):
    return [keras.InputSpec(shape=(None,) + tuple(shape), dtype=dtype, name=name)]


def _write(model, path, format, signature_shape, input_name, calibration):
    """Write ``format`` from ``model`` on the running backend."""
    spec_shape, dtype, _ = _model_input(model)
    shape = signature_shape or spec_shape
    model = _inference_model(model, shape, dtype, input_name)
    # Always explicit: Keras refuses to infer it for a loaded model never called.
    signature = _signature(shape, dtype, input_name)
    if format == "saved_model":
        model.export(path, format="tf_saved_model", input_signature=signature, verbose=False)
    elif format == "onnx":
        model.export(path, format="onnx", input_signature=signature, verbose=False)
    else:
        with tempfile.TemporaryDirectory(prefix="keras_sard_export_") as scratch:
            saved_model = os.path.join(scratch, "saved_model")
            model.export(saved_model, format="tf_saved_model", input_signature=signature,
                         verbose=False)
            flatbuffer = _convert_to_tflite(saved_model, format, calibration)
        with open(path, "wb") as file:
            file.write(flatbuffer)


def _inference_model(model, shape, dtype, input_name):
    """``model`` called with ``training=False``, as a model of its own.

    Keras' exporters call the model without a ``training`` argument, and that
    is not always inference: a preprocessing layer called inside a layer
    (keras-hub's DeepLabV3 resizes in its pyramid pooling) sets the call
    context to ``training=True`` for the layers after it, so their batch
    norms use batch statistics.  A functional wrapper pins ``training=False``.
    """
    inputs = keras.Input(shape, dtype=dtype, name=input_name)
    return keras.Model(inputs, model(inputs, training=False), name=model.name)


def _convert_to_tflite(saved_model, format, calibration):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if format != "tflite":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if format == "tflite_float16":
        converter.target_spec.supported_types = [tf.float16]
    elif format == "tflite_int8":
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _layer_modules(model):
    """Modules defining the model's non-Keras layer classes (imported in the
    TensorFlow subprocess so that their registered classes exist there)."""
    modules = set()
    for layer in [model, *model._flatten_layers(include_self=False, recursive=True)]:
        module = type(layer).__module__
        if module == "keras" or module.startswith("keras."):
            continue
        if module == "__main__":
            raise ValueError(
                f"Exporting to this format from the {keras.backend.backend()} backend rebuilds "
                f"the model on TensorFlow in a subprocess, which cannot import the layer "
                f"{layer.name!r} ({type(layer).__name__}), defined in __main__. Move it into "
                "an importable module (registered with "
                "keras.saving.register_keras_serializable), or export with "
                "KERAS_BACKEND=tensorflow.")
        modules.add(module)
    return sorted(modules)


def _write_from_tensorflow_copy(model, path, format, signature_shape, input_name,
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
            "sys_path": _search_path(),
        }
        error = _tensorflow_worker().run(request)
    if error:
        raise RuntimeError(
            f"Format {format!r} is written from a TensorFlow-backend copy of the "
            f"{keras.backend.backend()}-backend model {model.name!r} (rebuilt from its "
            f".keras file in a subprocess), and that failed:\n{error}")


def _search_path():
    import keras_sard

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(keras_sard.__file__)))
    return list(dict.fromkeys([package_root] + [p or os.getcwd() for p in sys.path]))


class _TensorFlowWorker:
    """A Python subprocess with ``KERAS_BACKEND=tensorflow`` that writes exports
    on request.  Started on first use and kept for the life of this process:
    importing TensorFlow alone takes seconds.  Requests go in on its stdin, one
    JSON line each; replies come back on its stdout (everything the worker
    itself prints goes to its stderr, a temporary file)."""

    def __init__(self):
        self._log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, KERAS_BACKEND="tensorflow",
                   PYTHONPATH=os.pathsep.join(_search_path()),
                   # The parent (JAX, torch) may hold the GPU; exporting needs none.
                   CUDA_VISIBLE_DEVICES="-1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [sys.executable, "-c",
                   "from keras_sard.export import _tensorflow_worker_main; "
                   "_tensorflow_worker_main()"]
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


def _tensorflow_worker():
    global _worker
    if _worker is None or not _worker.alive():
        _worker = _TensorFlowWorker()
        atexit.register(_worker.close)
    return _worker


def _tensorflow_worker_main():
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
    _write(model, request["path"], request["format"], shape, request["input_name"], calibration)


# ----------------------------------------------------------------- checking


def _keras_logits(model, images, batch_size=8):
    outputs = []
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size], training=False)
        outputs.append(np.asarray(keras.ops.convert_to_numpy(logits), dtype="float32"))
    return np.concatenate(outputs)


def _artefact_logits(path, format, images):
    if format == "saved_model":
        return _saved_model_logits(path, images)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        (feed,) = session.get_inputs()
        return np.asarray(session.run(None, {feed.name: images})[0], dtype="float32")
    return _tflite_logits(path, images)


def _saved_model_logits(path, images):
    import tensorflow as tf

    # A JAX SavedModel warns about the custom gradients it does not save.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        loaded = tf.saved_model.load(path)
    finally:
        absl.setLevel(level)
    outputs = keras.tree.flatten(loaded.serve(tf.constant(images)))
    return np.asarray(outputs[0], dtype="float32")


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=path)


def _tflite_logits(path, images):
    """One image at a time (the converter may fix the batch at 1 inside the graph)."""
    interpreter = _tflite_interpreter(path)
    (feed,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(feed["index"], (1,) + images.shape[1:])
    interpreter.allocate_tensors()
    fetch = interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        interpreter.set_tensor(feed["index"], image[None].astype(feed["dtype"]))
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_tensor(fetch["index"]), dtype="float32"))
    return np.concatenate(outputs)


def _labels(logits):
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype("int64")
    return np.argmax(logits, axis=-1)


def _agreement_miou(labels, reference):
    """Mean IoU over the classes present in either label map (1.0 if none)."""
    ious = []
    for k in np.union1d(np.unique(labels), np.unique(reference)):
        a, b = labels == k, reference == k
        ious.append(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    return float(np.mean(ious)) if ious else 1.0


def _size_on_disk(path):
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def _human_size(size):
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
