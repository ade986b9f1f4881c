"""The export formats, what each backend writes in-process, and where an
artefact goes.  No Keras import: the command line builds its help from here.

>>> export_path("out/student", "tflite_float16")
'out/student_float16.tflite'
"""

import os

__all__ = ["FILE_SUFFIXES", "FLOAT32_FORMATS", "FORMATS", "NATIVE_FORMATS", "check_format",
           "export_path"]

FORMATS = (
    "saved_model",
    "tflite",
    "tflite_float16",
    "tflite_dynamic_int8",
    "tflite_int8",
    "onnx",
)
"""Every format `keras_sard.export.export_student` writes."""

FLOAT32_FORMATS = ("saved_model", "tflite", "onnx")
"""The formats whose logits must match the Keras model's (to ``atol``)."""

NATIVE_FORMATS = {
    "tensorflow": set(FORMATS),
    "jax": {"saved_model"},
    "torch": {"onnx"},
}
"""The formats each backend writes in-process; the rest go through a
TensorFlow-backend copy of the model (`keras_sard.export.worker`)."""

FILE_SUFFIXES = {
    "saved_model": "_saved_model",
    "tflite": ".tflite",
    "tflite_float16": "_float16.tflite",
    "tflite_dynamic_int8": "_dynamic_int8.tflite",
    "tflite_int8": "_int8.tflite",
    "onnx": ".onnx",
}
"""What `export_path` appends to a stem, per format."""


def check_format(format):
    """`format` if it is one of `FORMATS`, else a ValueError listing them."""
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; expected one of {list(FORMATS)}.")
    return format


def export_path(stem, format):
    """Where `keras_sard.training.run_experiment` writes `format`:
    ``student.tflite``, ``student_int8.tflite``, ``student_saved_model`` (a
    folder) ..."""
    return os.fspath(stem) + FILE_SUFFIXES[check_format(format)]
