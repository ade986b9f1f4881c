"""The keras-sard command line: every verb end to end on tiny settings, --help,
and one-line errors (exit code 2) for bad input."""

import atexit
import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from conftest import BACKEND
from workflow_helpers import (TINY, distilled_student, native_export_format, run_cli,
                              trained_teacher)

from keras_sard import cli, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERBS = ("train-teacher", "distill", "evaluate", "export", "visualize", "diagnose", "run",
         "tables")


def _scores(text, role):
    match = re.search(rf"{role}[^\n]*: mIoU ([\d.]+), bIoU ([\d.]+)", text)
    assert match, text
    return float(match.group(1)), float(match.group(2))


def test_help_of_the_tool_and_of_every_verb():
    code, out, _ = run_cli("--help")
    assert code == 0
    for verb in VERBS:
        assert verb in out
    for verb in VERBS:
        code, out, err = run_cli(verb, "--help")
        assert code == 0, err
        assert out.startswith(f"usage: keras-sard {verb}")
        assert "--backend" in out
    assert "--method" in run_cli("distill", "--help")[1]
    assert "--format" in run_cli("export", "--help")[1]


def test_train_teacher_writes_a_model_and_prints_its_scores():
    path, out = trained_teacher()
    teacher = training.load_model(path)
    assert tuple(teacher.inputs[0].shape[1:]) == (32, 32, 3)
    assert teacher.outputs[0].shape[-1] == 2
    miou, biou = _scores(out, "Teacher")
    assert 0 <= miou <= 100 and 0 <= biou <= 100
    assert "learning_rate=0.001" in out  # the small recipe's schedule
    # Two steps leave the BatchNorm statistics stale: re-estimated (auto) before saving.
    assert "Teacher: BatchNorm statistics re-estimated (" in out


def test_distill_then_evaluate_prints_the_same_scores():
    path, out = distilled_student()
    student = training.load_model(path)
    assert student.name == "student"
    assert " - kd: " in out  # the distillation term was logged
    code, evaluated, err = run_cli("evaluate", "--model", path, "--num-examples", "8")
    assert code == 0, err
    # The same validation images (8 training → 2 validation) give the same scores.
    assert _scores(evaluated, "student.keras") == _scores(out, r"Student \(kd\)")
    scores = training.evaluate(student, training.load_task(
        "synthetic", image_size=32, num_examples=8).val)
    assert _scores(evaluated, "student.keras") == pytest.approx(
        (100 * scores["miou"], 100 * scores["biou"]), abs=0.051)


def test_export_writes_a_checked_artefact(tmp_path):
    fmt = native_export_format(BACKEND)
    output = tmp_path / ("student" + training.export_path("", fmt))
    code, out, err = run_cli("export", "--model", distilled_student()[0], "--format", fmt,
                             "--num-examples", "8", "--output", output)
    assert code == 0, err
    assert os.path.exists(output)
    assert "max |logit diff|" in out


def test_visualize_draws_structure_and_predictions(tmp_path):
    code, out, err = run_cli("visualize", "--teacher", trained_teacher()[0], "--student",
                             distilled_student()[0], "--num-examples", "8", "--num-images",
                             "1", "--level", "2", "--output-dir", tmp_path)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["predictions_0.png", "structure_0.png"]


def test_recalibrate_bn_flags(tmp_path):
    path = tmp_path / "student.keras"
    code, out, err = run_cli("distill", *TINY, "--teacher", trained_teacher()[0], "--method",
                             "scratch", "--recalibrate-bn", "off", "--output", path)
    assert code == 0, err
    assert "recalibrate_batchnorm=False" in out
    assert "Student: BatchNorm statistics as training left them (not re-estimated)" in out
    code, out, err = run_cli("train-teacher", *TINY, "--recalibrate-bn", "on",
                             "--recalibration-batches", "1", "--output", path)
    assert code == 0, err
    assert "recalibration_batches=1" in out and "1 training batch, 4 crops)" in out
    code, _, err = run_cli("tables", "--recalibrate-bn", "sometimes")
    assert code == 2 and "invalid choice: 'sometimes'" in err


def test_diagnose_prints_the_structure_report():
    code, out, err = run_cli("diagnose", "--teacher", trained_teacher()[0], "--num-examples",
                             "8", "--num-images", "2")
    assert code == 0, err
    assert "Structure map W of " in out and "on 2 synthetic_fragments (val) crops of 32x32" in out
    rows = [line for line in out.splitlines() if line.startswith("teacher_level_")]
    assert [row.split()[0] for row in rows] == [f"teacher_level_{i}" for i in range(1, 5)]
    assert [row.split()[2] for row in rows] == ["4", "8", "16", "32"]  # strides
    assert "concentration" in out  # the validation masks are the labels
    verdicts = ("W is nearly uniform here", "W concentrates", "W varies", "boundaries fill")
    assert all(any(v in row for v in verdicts) for row in rows), out

    code, out, err = run_cli("diagnose", "--teacher", trained_teacher()[0], "--num-examples",
                             "8", "--num-images", "2", "--levels", "teacher_level_2",
                             "--padding", "zero", "--single-scale", "--radius", "2",
                             "--density", "variance", "--object-scale", "2")
    assert code == 0, err
    assert "padding zero, E single-scale, radius 2, density variance" in out
    assert [line.split()[0] for line in out.splitlines()
            if line.startswith("teacher_level_")] == ["teacher_level_2"]
    code, out, err = run_cli("diagnose", "--teacher", trained_teacher()[0], "--num-examples",
                             "8", "--num-images", "1", "--levels", "teacher_level_1",
                             "--scales", "1", "2")
    assert code == 0, err
    assert "E scales 1, 2," in out


@pytest.mark.parametrize("argv, message", [
    (["--padding", "wrap"], "--padding must be one of"),
    (["--radius", "0"], "expected an integer ≥ 1, got '0'"),
    (["--levels", "teacher_level_9"], "no layer named 'teacher_level_9'"),
    (["--object-scale", "4", "--data-dir", "."], "--object-scale is for synthetic data"),
    (["--object-scale", "0.1"], "object_scale must be a finite number >= 0.25"),
    (["--scales", "1", "--single-scale"], "not allowed with argument"),
    (["--image-size", "64"], "takes 32x32 images"),
])
def test_diagnose_bad_input_is_one_line(argv, message):
    code, _, err = run_cli("diagnose", "--teacher", trained_teacher()[0], "--num-examples", "8",
                           *argv)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 or "usage:" in err  # argparse prints its usage
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--model", "missing.keras"], "No model file at 'missing.keras'"),
    (["diagnose", "--teacher", "missing.keras"], "No model file at 'missing.keras'"),
    (["run", "--object-scale", "4", "--data-dir", "."], "--object-scale is for synthetic data"),
    (["train-teacher", "--output", "teacher.h5"], "--output must name a .keras file"),
    (["train-teacher", "--data-dir", "/no/such/folder"], "is not a folder"),
    (["train-teacher", "--dataset", "mnist", "--output", "t.keras"], "Unknown dataset 'mnist'"),
    (["train-teacher", "--image-size", "40", "--output", "t.keras"], "not divisible by 32"),
    (["train-teacher", "--recipe", "vit->mlp", "--output", "t.keras"], "Unknown recipe"),
    (["tables", "--data-dir", "monuseg"], "--data-dir takes DATASET=FOLDER"),
    (["tables", "--methods", "sard", "magic"], "Unknown `--methods` 'magic'"),
])
def test_bad_input_is_a_one_line_error(argv, message):
    code, out, err = run_cli(*argv)
    assert code == 2
    assert message in err
    assert err.startswith(f"keras-sard {argv[0]}: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_method_and_bad_teacher_file(tmp_path):
    code, _, err = run_cli("distill", "--teacher", trained_teacher()[0], "--method", "magic")
    assert code == 2 and "Unknown `--method` 'magic'; the known methods are" in err
    code, _, err = run_cli("distill", "--teacher", trained_teacher()[0], "--student", "vgg")
    assert code == 2 and "Unknown backbone 'vgg'" in err
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip file")
    code, _, err = run_cli("evaluate", "--model", bad)
    assert code == 2 and "is not a Keras model file" in err


def test_dataset_aliases_resolve_as_load_dataset_does(tmp_path):
    """`--dataset ade20k-150` is ADE20K (one alias table, data.registry): an
    empty folder says what is missing from it, not "Unknown dataset"."""
    code, out, err = run_cli("run", "--dataset", "ade20k-150", "--data-dir", tmp_path)
    assert code == 2 and "Unknown dataset" not in err
    assert f"error: {tmp_path}/images/training: Image folder does not exist." in err


def test_combined_methods_are_accepted_by_every_verb():
    """One method check (methods.parse_method): what `run --method` takes,
    `tables --methods` and run_grid take too (checked before any training)."""
    from keras_sard import tables

    code, _, err = run_cli("tables", "--methods", "sard+kd", "bogus")
    assert code == 2 and "Unknown `--methods` 'bogus'" in err
    with pytest.raises(ValueError, match="Unknown `methods` 'bogus'"):
        tables.run_grid(["synthetic"], ["sard+kd", "bogus"], [0])
    assert "| SARD + Vanilla KD |" in tables.format_markdown(
        [tables.Run("synthetic", "sard+kd", 0, 0.5, 0.5)])


def test_help_is_built_from_the_registries():
    from keras_sard.data.registry import DATASET_INFO
    from keras_sard.methods import METHOD_INFO
    from keras_sard.models.recipes import RECIPE_INFO

    out = " ".join(run_cli("run", "--help")[1].split())
    for name in [*DATASET_INFO, *METHOD_INFO, *RECIPE_INFO]:
        assert name in out, name
    assert "small: lr 0.001" in out and "(teacher: epochs 36)" in out


def test_argparse_usage_errors_exit_2():
    code, _, err = run_cli("distill")  # --teacher is required
    assert code == 2 and "--teacher" in err
    code, _, err = run_cli("export", "--model", "m.keras", "--format", "gif")
    assert code == 2 and "invalid choice: 'gif'" in err
    code, _, err = run_cli("frobnicate")
    assert code == 2
    for option, value, expected in (
        ("--epochs", "0", "expected an integer ≥ 1, got '0'"),
        ("--epochs", "two", "expected an integer ≥ 1, got 'two'"),
        ("--seed", "-1", "expected an integer ≥ 0, got '-1'"),
        ("--learning-rate", "0", "expected a number > 0, got '0'"),
        ("--learning-rate", "nan", "expected a number > 0, got 'nan'"),
    ):
        code, _, err = run_cli("train-teacher", option, value)
        assert code == 2 and option in err and expected in err, (option, value, err)


def test_backend_switch():
    other = next(b for b in cli.BACKENDS if b != BACKEND)
    # In-process calls cannot switch: Keras is imported already.
    code, _, err = run_cli("--backend", other, "evaluate", "--model", "m.keras")
    assert code == 2 and f"Keras already runs on {BACKEND}" in err
    # The same backend is no switch at all.
    code, _, err = run_cli("evaluate", "--backend", BACKEND, "--model", "missing.keras")
    assert code == 2 and "No model file" in err


def test_the_command_line_sets_the_backend_in_its_own_process():
    """``import keras_sard.cli`` imports no Keras, so --backend sets
    KERAS_BACKEND in-process (no re-exec): the verb runs on that backend."""
    other = next(b for b in cli.BACKENDS if b != BACKEND)
    check = ("import sys, keras_sard, keras_sard.cli; "
             "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, "
             "sorted(m for m in sys.modules if m.startswith(('keras', 'tensorflow'))); "
             "sys.exit(keras_sard.cli.main(sys.argv[1:]))")
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", check, "--backend", other, "run", "--dataset", "mnist"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"on {other}" in result.stdout and "Unknown dataset 'mnist'" in result.stderr
    import keras_sard.cli.runner as runner

    assert not hasattr(cli, "_REEXEC_MARK") and not hasattr(runner, "subprocess")


# ------------------------------------------------------- bad data, one line


def _folder_dataset(root, num_classes=2, size=32, counts=(("train", 4), ("val", 2))):
    """A `--dataset folder` tree: <split>/images/i.png + <split>/masks/i.png."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = {}
    for split, count in counts:
        for folder in ("images", "masks"):
            os.makedirs(root / split / folder, exist_ok=True)
        for index in range(count):
            image, mask = (root / split / folder / f"{index}.png" for folder in ("images", "masks"))
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(image)
            Image.fromarray(rng.integers(0, num_classes, (size, size), dtype=np.uint8)).save(mask)
            paths[split, index] = str(image), str(mask)
    return paths


def _data_error(argv, path, problem):
    """`keras-sard argv` stops with exit code 2 and one line naming `path`."""
    code, out, err = run_cli(*argv)
    assert code == 2, (out[-2000:], err[-2000:])
    assert err.startswith(f"keras-sard {argv[0]}: error: {path}: {problem}"), err[-2000:]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return out


def _corrupt(path):
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n not an image")


def test_bad_data_stops_before_training_in_one_line(tmp_path):
    argv = ["train-teacher", *TINY, "--dataset", "folder", "--num-classes", "2", "--data-dir",
            tmp_path, "--output", tmp_path / "t.keras"]
    paths = _folder_dataset(tmp_path)
    _corrupt(paths["train", 1][0])  # a corrupt image
    out = _data_error(argv, paths["train", 1][0], "cannot be read as an image (")
    assert "Training" not in out
    paths = _folder_dataset(tmp_path)
    from PIL import Image

    Image.fromarray(np.zeros((30, 32), np.uint8)).save(paths["val", 1][1])  # a size mismatch
    _data_error(argv, paths["val", 1][1],
                f"mask is 30x32 (HxW) but its image '{paths['val', 1][0]}' is 32x32; "
                "they must match.")
    paths = _folder_dataset(tmp_path)
    os.remove(paths["train", 2][1])  # a missing mask
    _data_error(argv, paths["train", 2][0],
                f"image without a mask: expected '{paths['train', 2][1]}'.")
    paths = _folder_dataset(tmp_path)
    for index in range(2):  # an empty folder
        os.remove(paths["val", index][0])
        os.remove(paths["val", index][1])
    _data_error(argv, tmp_path / "val" / "images", "no image files ending in [")
    assert not os.path.exists(tmp_path / "t.keras")


def test_a_file_failing_inside_tf_data_is_one_line_too(tmp_path):
    """Pixel data broken behind a sound header passes the up-front check and
    fails while training, inside a tf.data map: still one line naming it, and
    the command ends (run as the command: TensorFlow can hang freeing the
    failed pipeline, which the command does not wait for)."""
    paths = _folder_dataset(tmp_path)
    image = paths["train", 3][0]
    with open(image, "rb") as file:
        content = file.read()
    with open(image, "wb") as file:
        file.write(content[: len(content) // 2])
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_sard.cli", "train-teacher", *TINY, "--dataset", "folder",
         "--num-classes", "2", "--data-dir", str(tmp_path), "--output", str(tmp_path / "t.keras")],
        capture_output=True, text=True, env=dict(env, KERAS_BACKEND=BACKEND), cwd=ROOT,
        timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Training the teacher" in result.stdout  # it got that far
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"keras-sard train-teacher: error: {image}: cannot be decoded as an image (")
    assert "Traceback" not in result.stderr  # nor TensorFlow's C++ warnings with theirs


def test_folder_dataset_and_num_classes(tmp_path):
    _folder_dataset(tmp_path, num_classes=3)
    code, _, err = run_cli("train-teacher", "--dataset", "folder", "--data-dir", tmp_path)
    assert code == 2 and err.strip() == (
        "keras-sard train-teacher: error: --dataset folder needs --num-classes K: the classes "
        "its masks hold, as ids 0..K-1 (255: ignored).")
    code, _, err = run_cli("train-teacher", "--dataset", "monuseg", "--num-classes", "3")
    assert code == 2 and "--num-classes is for --dataset folder; 'monuseg' has 2 classes" in err
    output = tmp_path / "teacher.keras"
    code, out, err = run_cli("train-teacher", *TINY, "--dataset", "folder", "--num-classes", "3",
                             "--data-dir", tmp_path, "--output", output)
    assert code == 0, err
    assert training.load_model(output).outputs[0].shape[-1] == 3
    code, out, err = run_cli("evaluate", "--model", output, "--dataset", "folder",
                             "--num-classes", "3", "--data-dir", tmp_path)
    assert code == 0, err
    assert _scores(out, "teacher.keras")


# ------------------------------------------------------- unlabelled images


def _image_folder(folder, count=3, size=32, grey=False):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(count)
    shape = (size, size) if grey else (size, size, 3)
    paths = [os.path.join(folder, f"u{index}.png") for index in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return paths


def test_distill_with_unlabelled_images(tmp_path):
    _image_folder(tmp_path / "extra")
    output = tmp_path / "student.keras"
    code, out, err = run_cli("distill", *TINY, "--teacher", trained_teacher()[0], "--method",
                             "cwd", "--unlabelled-dir", tmp_path / "extra",
                             "--unlabelled-ratio", "0.25", "--output", output)
    assert code == 0, err
    assert "Unlabelled images: 3 (unlabelled), 1 in each batch of 4 beside 3 labelled ones" in out
    assert _scores(out, "Student") and os.path.isfile(output)
    for verb in ("distill", "run"):
        code, out, _ = run_cli(verb, "--help")
        assert "--unlabelled-dir" in out and "--unlabelled-ratio" in out


@pytest.mark.parametrize("argv, message", [
    (["--unlabelled-ratio", "0.5"], "--unlabelled-ratio needs --unlabelled-dir"),
    (["--unlabelled-dir", "{extra}", "--unlabelled-ratio", "0.1"],
     "--unlabelled-ratio 0.1 of a batch of 4 gives 0 unlabelled and 4 labelled images"),
])
def test_unlabelled_flags_usage_errors(tmp_path, argv, message):
    _image_folder(tmp_path / "extra", count=1)
    argv = [a.format(extra=tmp_path / "extra") for a in argv]
    for verb in ("distill", "run"):
        teacher = ["--teacher", trained_teacher()[0]] if verb == "distill" else []
        code, out, err = run_cli(verb, *TINY, *teacher, *argv, "--output" if verb == "distill"
                                 else "--output-dir", tmp_path / ("s.keras" if verb == "distill"
                                                                  else "run"))
        assert code == 2 and err.startswith(f"keras-sard {verb}: error: {message}"), err
        assert "Distilling" not in out and "Training" not in out
    code, _, err = run_cli("distill", "--teacher", "t.keras", "--unlabelled-ratio", "1.5")
    assert code == 2 and "expected a number in (0, 1), got '1.5'" in err


def test_bad_unlabelled_images_stop_before_training_in_one_line(tmp_path):
    """An empty folder, an unreadable file, grey images beside colour ones:
    one line naming the folder or the file, exit 2, nothing trained (run:
    not even the teacher)."""
    _folder_dataset(tmp_path / "data")  # colour images
    data = ["--dataset", "folder", "--num-classes", "2", "--data-dir", tmp_path / "data"]
    distill = ["distill", *TINY, *data, "--teacher", trained_teacher()[0], "--output",
               tmp_path / "s.keras"]
    extra = tmp_path / "extra"
    os.makedirs(extra)
    out = _data_error([*distill, "--unlabelled-dir", extra], extra, "no image files ending in [")
    assert "Distilling" not in out
    paths = _image_folder(extra)
    _corrupt(paths[1])
    out = _data_error([*distill, "--unlabelled-dir", extra], paths[1],
                      "cannot be read as an image (")
    assert "Distilling" not in out
    grey = _image_folder(tmp_path / "grey", grey=True)
    out = _data_error([*distill, "--unlabelled-dir", tmp_path / "grey"], grey[0],
                      f"unlabelled image (in the unlabelled folder '{tmp_path / 'grey'}') is "
                      "grey (1 channel) but the labelled images ")
    assert "Distilling" not in out
    out = _data_error(["run", *TINY, *data, "--output-dir", tmp_path / "run", "--unlabelled-dir",
                       extra], paths[1], "cannot be read as an image (")
    assert "Training the teacher" not in out
    assert not os.path.exists(tmp_path / "s.keras") and not os.path.exists(tmp_path / "run")


# ------------------------------------------------- long runs: resume, watch

# A run killed (SIGKILL, mid-epoch) by a callback added to every fit: the
# teacher's or the student's, in an epoch, after a batch ("student:1:0").
_KILLING_RUN = """
import os, signal, sys
import keras
role, epoch, batch = os.environ["KERAS_SARD_KILL_AT"].split(":")

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, index, logs=None):
        self.epoch = index

    def on_train_batch_end(self, index, logs=None):
        here = "student" if hasattr(self.model, "student") else "teacher"
        if (here, self.epoch, index) == (role, int(epoch), int(batch)):
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit
keras.Model.fit = lambda self, *a, callbacks=None, **k: fit(
    self, *a, callbacks=[*(callbacks or []), Kill()], **k)
from keras_sard.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run_command(argv, kill_at=None):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3")
    if kill_at:
        command = [sys.executable, "-c", _KILLING_RUN, *map(str, argv)]
        env["KERAS_SARD_KILL_AT"] = kill_at
    else:
        command = [sys.executable, "-m", "keras_sard.cli", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)


def _weights(path):
    return [np.asarray(w) for w in training.load_model(path).get_weights()]


def _run_argv(output, *extra):
    """`keras-sard run` with SARD on tiny settings: 2 teacher epochs, 3 student epochs."""
    return ["run", "--tiny", "--image-size", "32", "--num-examples", "8", "--batch-size", "4",
            "--steps-per-epoch", "2", "--teacher-epochs", "2", "--epochs", "3", "--method",
            "sard", "--export", "--output-dir", output, *extra]


@functools.lru_cache(maxsize=None)
def _logged_run():
    """`keras-sard run --log-dir`, uninterrupted, in this process: its folder."""
    folder = tempfile.mkdtemp(prefix="keras_sard_logged_run_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    code, out, err = run_cli(*_run_argv(os.path.join(folder, "run"), "--log-dir",
                                        os.path.join(folder, "logs")))
    assert code == 0, err
    return folder


def _summaries(folder):
    """{tag: [values by step]} of the TensorBoard event files under `folder`."""
    import tensorflow as tf

    found = {}
    for root, _, files in os.walk(folder):
        for name in sorted(f for f in files if "tfevents" in f):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    found.setdefault(value.tag, {})[event.step] = (
                        value.tensor if value.HasField("tensor") else value.simple_value)
    return found


def test_log_dir_writes_every_loss_term_the_learning_rate_and_structure_maps():
    import tensorflow as tf

    logs = os.path.join(_logged_run(), "logs")
    teacher = _summaries(os.path.join(logs, "teacher", "train"))
    assert {"epoch_loss", "epoch_learning_rate"} <= set(teacher), sorted(teacher)
    assert sorted(teacher["epoch_loss"]) == [0, 1]  # per epoch
    student = _summaries(os.path.join(logs, "student", "train"))
    assert {"epoch_loss", "epoch_task_loss", "epoch_sard_fc", "epoch_sard_da",
            "epoch_skipped_steps", "epoch_learning_rate"} <= set(student), sorted(student)
    rates = [float(tf.make_ndarray(student["epoch_learning_rate"][step])) for step in range(3)]
    # After 2, 4, 6 of 6 steps: lr 1e-3 decayed on a cosine to 0 (the small recipe).
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * step / 6)) for step in (2, 4, 6)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-9)
    images = _summaries(os.path.join(logs, "student", "images"))
    assert {"structure/weights", "structure/terms", "predictions"} <= set(images), sorted(images)
    assert sorted(images["predictions"]) == [0, 1, 2, 3]  # before training and after each epoch


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    """`keras-sard run --backup-dir` killed (SIGKILL) in the middle of the
    student's second epoch (SARD), after the backup of its first, then run
    again by the same command: teacher and student end with the weights of
    the run never interrupted (`_logged_run`)."""
    backup = tmp_path / "backup"
    command = _run_argv(tmp_path / "run", "--backup-dir", backup)
    killed = _run_command(command, kill_at="student:1:0")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert "Epoch 2/3" in killed.stdout and "Epoch 3/3" not in killed.stdout
    assert (backup / "teacher.keras").is_file()  # the teacher is kept until the run ends
    assert json.loads((backup / "student" / "training_metadata.json").read_text())["epoch"] == 1
    resumed = _run_command(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming: the teacher trained before the interruption" in resumed.stdout
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 2/3" in resumed.stdout
    assert not backup.exists()  # done: nothing left to resume
    whole = os.path.join(_logged_run(), "run")
    for model in ("teacher", "student"):
        expected = _weights(os.path.join(whole, f"{model}.keras"))
        actual = _weights(tmp_path / "run" / f"{model}.keras")
        assert len(actual) == len(expected)
        difference = max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected))
        print(f"{model}: largest weight difference {difference:.3g}")
        for a, e in zip(actual, expected):
            np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6, err_msg=model)
