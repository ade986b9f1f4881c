"""examples/quickstart.py runs end to end on the active backend, with tiny settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
from scipy import stats

from keras_sard.training import load_model

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("scratch", "sard_uniform", "sard")
SEEDS = (0, 1)


def test_quickstart_prints_paired_differences_and_exports_the_student(tmp_path):
    backend = keras.backend.backend()
    command = [
        sys.executable, str(ROOT / "examples" / "quickstart.py"),
        "--backend", backend, "--seeds", str(len(SEEDS)), "--steps", "1", "--image-size", "64",
        "--output-dir", str(tmp_path),
        # hidden knobs: tiny models, one training step per student, one evaluation batch
        "--tiny", "--teacher-examples", "8", "--labelled-examples", "4", "--val-examples", "4",
        "--batch-size", "4",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    output = result.stdout

    assert f"backend {backend}" in output
    assert re.search(r"^teacher: mIoU [\d.]+, bIoU [\d.]+$", output, re.M), output
    assert re.search(r"^teacher_level_1 +16×16 +4 ", output, re.M), output  # the structure report

    scores = {}
    for seed, method, miou, biou in re.findall(r"^(\d+) +(\w+) +([\d.]+) +([\d.]+)$", output,
                                               re.M):
        scores[method, int(seed)] = (float(miou), float(biou))
    assert set(scores) == {(m, s) for m in METHODS for s in SEEDS}, output
    for miou, biou in scores.values():
        assert 0.0 < miou <= 100.0 and 0.0 <= biou <= 100.0

    # Each paired difference and its interval, recomputed from the printed
    # scores with SciPy's t interval (rounding: the scores print to 0.01).
    for other in ("sard_uniform", "scratch"):
        for index, metric in enumerate(("mIoU", "bIoU")):
            line = re.search(rf"^SARD − {other} +{metric} +([-+][\d.]+) ± +([\d.]+) +"
                             rf"\[([-+][\d.]+), ([-+][\d.]+)\]  (.+)$", output, re.M)
            assert line, (other, metric, output)
            mean, half, low, high = map(float, line.groups()[:4])
            diffs = np.array([scores["sard", s][index] - scores[other, s][index] for s in SEEDS])
            # (by hand: stats.t.interval gives NaN where the differences are
            # equal, which a deterministic backend's tiny runs can give)
            half_ref = stats.t.ppf(0.975, len(diffs) - 1) * stats.sem(diffs)
            ref_low, ref_high = diffs.mean() - half_ref, diffs.mean() + half_ref
            np.testing.assert_allclose([mean, low, high], [diffs.mean(), ref_low, ref_high],
                                       atol=0.02 * (1 + stats.t.ppf(0.975, 1)))
            verdict = line.group(5)
            if low > 0:
                assert verdict == "SARD better"
            elif high < 0:
                assert verdict == f"{other} better"
            else:
                assert verdict == "no measurable difference"

    student = load_model(tmp_path / "sard_student.keras")
    assert student.output.shape[1:] == (64, 64, 2)  # the small recipe: one logit per class
    saved_model = tmp_path / "sard_student_savedmodel" / "saved_model.pb"
    assert saved_model.is_file()
    error = float(re.search(r"max \|SavedModel − Keras\| on a batch: (\S+)", output).group(1))
    assert error < 1e-4
