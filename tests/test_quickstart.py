"""examples/quickstart.py runs end to end on the active backend, with tiny settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras

import keras_sard.models  # noqa: F401  (registers the segmenter's layers for loading)

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("teacher", "student, scratch", "student, SARD")


def test_quickstart_prints_the_table_and_exports_the_student(tmp_path):
    backend = keras.backend.backend()
    command = [
        sys.executable, str(ROOT / "examples" / "quickstart.py"),
        "--backend", backend, "--epochs", "1", "--image-size", "64", "--seed", "3",
        "--output-dir", str(tmp_path),
        # hidden knobs: two training steps per model, one evaluation batch
        "--train-examples", "16", "--val-examples", "8", "--batch-size", "8",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    output = result.stdout

    assert f"backend {backend}" in output
    for row in ROWS:
        match = re.search(rf"^\| {re.escape(row)} +\| +[\d,]+ \| +([\d.]+) \| +([\d.]+) \|$",
                          output, re.M)
        assert match, f"no table row for {row!r} in:\n{output}"
        miou, biou = float(match.group(1)), float(match.group(2))
        assert 0.0 <= biou <= 100.0 and 0.0 < miou <= 100.0, (row, miou, biou)

    student = keras.saving.load_model(tmp_path / "sard_student.keras")
    assert student.output.shape[1:] == (64, 64, 1)
    saved_model = tmp_path / "sard_student_savedmodel" / "saved_model.pb"
    assert saved_model.is_file()
    error = float(re.search(r"max \|SavedModel − Keras\| on a batch: (\S+)", output).group(1))
    assert error < 1e-4
