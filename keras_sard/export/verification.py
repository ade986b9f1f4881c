"""Checking an artefact: run it with its own runtime (``tf.saved_model.load``,
the TFLite interpreter, onnxruntime) next to the Keras model, and compare."""

import logging
import os
import warnings

import keras
import numpy as np

__all__ = ["agreement_miou", "artefact_logits", "keras_logits", "predicted_classes",
           "size_on_disk"]


def keras_logits(model, images, batch_size=8):
    """The Keras model's logits for `images`, float32, `batch_size` at a time."""
    outputs = []
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size], training=False)
        outputs.append(np.asarray(keras.ops.convert_to_numpy(logits), dtype="float32"))
    return np.concatenate(outputs)

def artefact_logits(path, format, images):
    """The artefact's logits for `images`, from its own runtime."""
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

def predicted_classes(logits):
    """Class ids from NumPy logits: argmax, or logit > 0 for one channel."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype("int64")
    return np.argmax(logits, axis=-1)

def agreement_miou(labels, reference):
    """Mean IoU over the classes present in either label map (1.0 if none)."""
    ious = []
    for k in np.union1d(np.unique(labels), np.unique(reference)):
        a, b = labels == k, reference == k
        ious.append(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    return float(np.mean(ious)) if ious else 1.0

def size_on_disk(path):
    """Bytes of a file, or of every file under a folder."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)
