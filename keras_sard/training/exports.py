"""Exporting a trained student for a `Task`: calibrated (int8) and checked on
the task's training crops, written where `export_path` says.

>>> export_path("out/student", "tflite_int8")
'out/student_int8.tflite'
"""

from keras_sard.export import export_student
from keras_sard.export.formats import export_path
from keras_sard.validation import model_image_size

__all__ = ["export", "export_path"]


def export(model, task, format, path):
    """`keras_sard.export.export_student` into `path`, calibrated (int8) and
    checked on training crops of `task` (`Task.sample_images`); returns its
    `ExportReport`."""
    size = model_image_size(model) or (None, None)
    input_shape = (*task.image_size, 3) if None in size else None
    return export_student(model, path, format, input_shape=input_shape,
                          representative_data=task.sample_images())
