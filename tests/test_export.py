"""Export round trips on the running backend: every format is written from a
briefly trained student, then run here by its own runtime (TensorFlow,
the TFLite interpreter, onnxruntime) and compared with the Keras model."""

import os
import re
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_batch, tiny_segmenter

from keras_sard import Distiller
from keras_sard.data import make_pipeline, make_synthetic
from keras_sard.export import FORMATS, ExportMismatchError, ExportReport, export_student
from keras_sard.losses import SegmentationLoss

SIZE = 16
FILE_NAMES = {
    "saved_model": "student_saved_model",
    "tflite": "student.tflite",
    "tflite_float16": "student_fp16.tflite",
    "tflite_dynamic_int8": "student_dynamic_int8.tflite",
    "tflite_int8": "student_int8.tflite",
    "onnx": "student.onnx",
}


@pytest.fixture(scope="module")
def student():
    """A student trained for two steps (width 8, so that one kernel has the
    ≥ 1024 weights dynamic-range quantisation acts on)."""
    keras.utils.set_random_seed(1)
    x, y = tiny_batch(np.random.default_rng(7), n=8, size=SIZE)
    model = tiny_segmenter("student", 8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SegmentationLoss())
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def images():
    """Held-out images, a different batch size from any the export saw."""
    return tiny_batch(np.random.default_rng(99), n=3, size=SIZE)[0]


def keras_logits(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def run_artefact(path, format, x):
    """Run an artefact with its own runtime, one image at a time for TFLite."""
    if format == "saved_model":
        loaded = tf.saved_model.load(path)  # kept alive: it owns the variables
        return np.asarray(loaded.serve(tf.constant(x)))
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    interpreter = tflite_interpreter(path)
    feed, fetch = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(feed["index"], (1,) + x.shape[1:])
    interpreter.allocate_tensors()
    outputs = []
    for image in x:
        interpreter.set_tensor(feed["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(fetch["index"]))
    return np.concatenate(outputs)


def tflite_interpreter(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=path)


def reference_miou(labels, reference):
    """Mean IoU over the classes in either map, by per-class pixel counting."""
    classes = sorted(set(labels.ravel().tolist()) | set(reference.ravel().tolist()))
    ious = []
    for k in classes:
        both = sum(1 for a, b in zip(labels.ravel(), reference.ravel()) if a == k and b == k)
        either = sum(1 for a, b in zip(labels.ravel(), reference.ravel()) if a == k or b == k)
        ious.append(both / either)
    return sum(ious) / len(ious)


@pytest.mark.parametrize("format", ["saved_model", "tflite", "onnx"])
def test_float32_formats_match_the_keras_model(student, images, tmp_path, format):
    path = tmp_path / FILE_NAMES[format]
    report = export_student(student, path, format)
    assert isinstance(report, ExportReport)
    assert report.path == str(path) and report.format == format
    assert report.size_bytes > 0 and os.path.exists(path)
    assert report.max_abs_diff <= 1e-4 and report.num_samples > 0
    assert format in str(report) and str(path) in str(report)
    # Independently of the report: the artefact's own runtime on other images.
    actual = run_artefact(str(path), format, images)
    np.testing.assert_allclose(actual, keras_logits(student, images), rtol=0, atol=1e-4)


@pytest.mark.parametrize("format,quantised_type", [
    ("tflite_float16", np.float16),
    ("tflite_dynamic_int8", np.int8),
    ("tflite_int8", np.int8),
])
def test_quantised_formats_report_their_agreement(student, images, tmp_path, format,
                                                  quantised_type):
    # Calibration images from the keras_sard data pipeline (tf.data batches of
    # (images, masks)); the check runs on held-out images.
    data = make_synthetic("fragments", num_examples=6, image_size=(SIZE, SIZE))
    calibration = make_pipeline(data, batch_size=4, training=False)
    path = tmp_path / FILE_NAMES[format]
    report = export_student(student, path, format, representative_data=calibration,
                            sample_inputs=images)
    assert report.num_samples == len(images)
    assert 0.0 <= report.agreement_miou <= 1.0
    assert np.isfinite(report.max_abs_diff)
    tensor_types = {d["dtype"] for d in tflite_interpreter(str(path)).get_tensor_details()}
    assert quantised_type in tensor_types
    # The report's numbers, recomputed from the artefact.
    actual, expected = run_artefact(str(path), format, images), keras_logits(student, images)
    np.testing.assert_allclose(report.max_abs_diff, np.abs(actual - expected).max(), rtol=1e-6)
    assert report.agreement_miou == pytest.approx(
        reference_miou(actual.argmax(-1), expected.argmax(-1)), rel=1e-9)


def test_a_distiller_exports_its_student(student, images, tmp_path):
    distiller = Distiller(tiny_segmenter("teacher", 8), student)
    path = tmp_path / "student.onnx"
    export_student(distiller, path, "onnx")
    actual = run_artefact(str(path), "onnx", images)
    np.testing.assert_allclose(actual, keras_logits(student, images), rtol=0, atol=1e-4)


class ResizeThenNormalize(keras.layers.Layer):
    """As keras-hub's DeepLabV3 pyramid pooling does: a Resizing layer called
    inside `call`, then a batch norm.  Called without `training`, Keras runs
    that batch norm in training mode (the Resizing sets the call context)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.BatchNormalization()

    def build(self, input_shape):
        self.norm.build(input_shape)

    def call(self, x):
        return self.norm(keras.layers.Resizing(x.shape[1], x.shape[2])(x))


def test_exports_run_in_inference_mode(images, tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(ResizeThenNormalize()(x)))
    # (Training mode also moves the batch norm's statistics: call it first.)
    training = np.asarray(keras.ops.convert_to_numpy(model(images, training=True)))
    inference = keras_logits(model, images)
    assert np.abs(training - inference).max() > 1e-2  # the batch norm matters
    # A format this backend writes in-process (the custom layer is not
    # importable by the TensorFlow subprocess).
    format = "saved_model" if keras.backend.backend() == "jax" else "onnx"
    path = str(tmp_path / FILE_NAMES[format])
    report = export_student(model, path, format, sample_inputs=images)
    assert report.max_abs_diff <= 1e-4
    np.testing.assert_allclose(run_artefact(path, format, images), inference, rtol=0, atol=1e-4)


def test_unknown_input_shape_needs_input_shape(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    with pytest.raises(ValueError, match=r"input_shape=\(height, width, channels\)"):
        export_student(model, tmp_path / "m.tflite", "tflite")
    with pytest.raises(ValueError, match="does not fit"):
        export_student(model, tmp_path / "m.onnx", "onnx", input_shape=(8, 8, 4))
    report = export_student(model, tmp_path / "m.onnx", "onnx", input_shape=(12, 20, 3))
    assert report.max_abs_diff <= 1e-4
    import onnxruntime

    (feed,) = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).get_inputs()
    assert feed.shape[1:] == [12, 20, 3]


def test_bad_arguments_fail_before_any_work(student, tmp_path):
    with pytest.raises(ValueError, match="Unknown export format 'coreml'.*tflite_int8"):
        export_student(student, tmp_path / "m", "coreml")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    message = f"Cannot write {blocker}/sub/m.tflite: {blocker} is a file"
    with pytest.raises(ValueError, match=re.escape(message)):
        export_student(student, blocker / "sub" / "m.tflite", "tflite")
    with pytest.raises(ValueError, match="is an existing directory"):
        export_student(student, tmp_path, "onnx")
    with pytest.raises(ValueError, match="representative_data"):
        export_student(student, tmp_path / "m.tflite", "tflite_int8")
    with pytest.raises(ValueError, match=r"representative_data.*\(16, 16, 3\)"):
        export_student(student, tmp_path / "m.tflite", "tflite_int8",
                       representative_data=np.zeros((4, 8, 8, 3), "float32"))
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses Linux's read-only /proc")
def test_read_only_directory_is_named(student):
    with pytest.raises(ValueError, match="Cannot write /proc/keras_sard/m.onnx.*not writable"):
        export_student(student, "/proc/keras_sard/m.onnx", "onnx")


def test_float32_mismatch_raises_with_the_numbers(student, tmp_path, monkeypatch):
    from keras_sard.export import api

    real = api.artefact_logits
    monkeypatch.setattr(api, "artefact_logits", lambda *a: real(*a) + 3e-3)
    message = r"max \|logit difference\| = 0.003 > atol = 0.0001 on 4 images"
    with pytest.raises(ExportMismatchError, match=message):
        export_student(student, tmp_path / "m.onnx", "onnx")


def test_formats_are_listed():
    assert set(FORMATS) == set(FILE_NAMES)
