"""`export_student` and what it reports (see `keras_sard.export`)."""

import dataclasses
import os
from typing import Optional

import keras
import numpy as np

from keras_sard.export.arguments import (check_writable, collect_images, is_array, model_input,
                                         require_onnx, resolve_input_shape, shape_text,
                                         student_of)
from keras_sard.export.formats import FLOAT32_FORMATS, NATIVE_FORMATS, check_format
from keras_sard.export.verification import (agreement_miou, artefact_logits, keras_logits,
                                            predicted_classes, size_on_disk)
from keras_sard.export.worker import write_from_tensorflow_copy
from keras_sard.export.writers import layer_modules, write

__all__ = ["ExportMismatchError", "ExportReport", "export_student"]

DEFAULT_SAMPLES = 4  # random images checked when no sample data is given
MAX_SAMPLES = 32  # images taken from a dataset / iterable for the check


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
    check_format(format)
    if format == "onnx":
        require_onnx(keras.backend.backend(), check)
    model = student_of(model)
    spec_shape, dtype, input_name = model_input(model)
    export_shape = resolve_input_shape(spec_shape, input_shape, format, model.name)
    path = check_writable(path, format)
    backend = keras.backend.backend()
    # Formats this backend cannot write go through a TensorFlow copy of the
    # model, which must be able to import its layers' modules.
    copy_modules = None if format in NATIVE_FORMATS.get(backend, ()) else layer_modules(model)

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
        representative = collect_images(representative_data, "representative_data",
                                         export_shape, dtype, int(calibration_samples))
    calibration = representative if format == "tflite_int8" else None
    samples = None
    if check:
        if sample_inputs is not None:
            limit = None if is_array(sample_inputs) else MAX_SAMPLES
            samples = collect_images(sample_inputs, "sample_inputs", export_shape, dtype, limit)
        elif representative is not None:
            samples = representative[:8]
        elif None in export_shape:
            raise ValueError(
                f"The model {model.name!r} takes images of unknown shape "
                f"{shape_text(spec_shape)}; to check the SavedModel pass "
                "`input_shape=(height, width, channels)` or `sample_inputs`, or check=False.")
        else:
            rng = np.random.default_rng(0)
            samples = rng.standard_normal((DEFAULT_SAMPLES,) + export_shape).astype(dtype)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    signature_shape = export_shape if input_shape is not None else None
    try:
        if copy_modules is None:
            write(model, path, format, signature_shape, input_name, calibration)
        else:
            write_from_tensorflow_copy(model, path, format, signature_shape, input_name,
                                        calibration, copy_modules)
    except Exception as error:
        if None not in export_shape:
            raise
        raise RuntimeError(
            f"Exporting the model {model.name!r} as {format} for images of unknown shape "
            f"{shape_text(export_shape)} failed ({type(error).__name__}, above); many "
            "segmenters (keras-hub's DeepLabV3 for one) trace only at a fixed size: pass "
            "`input_shape=(height, width, channels)`.") from error

    report = ExportReport(path=path, format=format, size_bytes=size_on_disk(path))
    if not check:
        return report
    expected = keras_logits(model, samples)
    actual = artefact_logits(path, format, samples)
    if actual.shape != expected.shape:
        raise ExportMismatchError(
            f"The {format} artefact at {path} returns logits of shape {actual.shape} for "
            f"{len(samples)} images; the Keras model returns {expected.shape}.")
    with np.errstate(invalid="ignore"):
        max_abs_diff = float(np.max(np.abs(actual - expected)))
    agreement = agreement_miou(predicted_classes(actual), predicted_classes(expected))
    report = dataclasses.replace(report, max_abs_diff=max_abs_diff,
                                 agreement_miou=agreement, num_samples=len(samples))
    if format in FLOAT32_FORMATS and not max_abs_diff <= atol:  # NaN fails too
        raise ExportMismatchError(
            f"The {format} artefact at {path} disagrees with the Keras model: max |logit "
            f"difference| = {max_abs_diff:.3g} > atol = {atol:g} on {len(samples)} images "
            f"(Keras logits up to |{np.max(np.abs(expected)):.3g}|, argmax agreement mIoU "
            f"{agreement:.4f}). The artefact was left there for inspection.")
    return report

def _human_size(size):
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
