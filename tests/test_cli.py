"""The keras-sard command line: every verb end to end on tiny settings, --help,
and one-line errors (exit code 2) for bad input."""

import os
import re
import subprocess
import sys

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
    assert f"'{tmp_path}/images/training' does not exist" in err


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
