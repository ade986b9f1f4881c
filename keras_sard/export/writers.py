"""Writing an export on the running backend: every format is traced from the
model called with ``training=False``; TFLite always comes from a
TensorFlow-backend SavedModel (see `keras_sard.export`)."""

import os
import tempfile

import keras

from keras_sard.export.arguments import model_input

__all__ = ["inference_model", "layer_modules", "write"]


def _signature(shape, dtype, name):
    return [keras.InputSpec(shape=(None,) + tuple(shape), dtype=dtype, name=name)]

def write(model, path, format, signature_shape, input_name, calibration):
    """Write ``format`` from ``model`` on the running backend."""
    spec_shape, dtype, _ = model_input(model)
    shape = signature_shape or spec_shape
    model = inference_model(model, shape, dtype, input_name)
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

def inference_model(model, shape, dtype, input_name):
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

def layer_modules(model):
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
