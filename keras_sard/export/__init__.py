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
backend is fixed per process; the subprocess, `keras_sard.export.worker`, is
started once, on first use, and kept while this process runs).  Its layers must therefore be loadable there:
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

One module per concern: `keras_sard.export.formats` (the formats and file
names; no Keras import), `.api` (`export_student`), `.arguments` (its
checks), `.writers` (writing on the running backend), `.worker` (the
TensorFlow subprocess) and `.verification` (running the artefact).  This
package imports them on first use.
"""

from keras_sard.lazy import lazy_exports

__all__ = ["FORMATS", "ExportMismatchError", "ExportReport", "export_student"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "FORMATS": "keras_sard.export.formats",
    "FLOAT32_FORMATS": "keras_sard.export.formats",
    "export_path": "keras_sard.export.formats",
    "ExportMismatchError": "keras_sard.export.api",
    "ExportReport": "keras_sard.export.api",
    "export_student": "keras_sard.export.api",
})
