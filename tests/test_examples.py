"""The example scripts: one runs end to end without data in a subprocess (it
says where to download the dataset and runs on synthetic data); every one
answers --help."""

import os
import re
import runpy
import subprocess
import sys

import pytest
from conftest import BACKEND
from workflow_helpers import TINY, native_export_format, trained_teacher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
DATASETS = ("rockfrag", "cityscapes", "ade20k", "monuseg", "isaid", "cellbin", "loveda")
SCRIPTS = [f"{name}.py" for name in DATASETS] + ["reproduce_tables.py"]


def test_every_dataset_has_an_example():
    for script in SCRIPTS:
        assert os.path.isfile(os.path.join(EXAMPLES, script)), script


def test_an_example_runs_on_synthetic_data_without_a_data_dir(tmp_path):
    fmt = native_export_format(BACKEND)
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, os.path.join(EXAMPLES, "rockfrag.py"), *TINY,
               "--teacher", trained_teacher()[0], "--method", "scratch", "--export", fmt,
               "--output-dir", str(tmp_path), "--backend", BACKEND]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert "No data folder given for 'rockfrag'" in out and "images/<name>" in out
    assert "Running on synthetic fragments (2 classes, 32x32) instead." in out
    assert f"small on rockfrag, Keras" in out and f"on {BACKEND}" in out
    for role in ("Teacher", r"Student \(scratch\)"):
        assert re.search(rf"{role}: mIoU [\d.]+, bIoU [\d.]+", out), out
    assert f"Exported {fmt}: " in out
    assert os.path.isfile(tmp_path / "student.keras")


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_help(script, monkeypatch, capsys):
    path = os.path.join(EXAMPLES, script)
    monkeypatch.setattr(sys, "argv", [path, "--help"])
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(path, run_name="__main__")
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {script}")
    with open(path, encoding="utf-8") as f:
        first_line = f.read().split('"""')[1].splitlines()[0]
    assert first_line in out
    for option in ("--data-dir", "--backend", "--seed"):
        assert option in out
    assert ("--methods" if script == "reproduce_tables.py" else "--method") in out
