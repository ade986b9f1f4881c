"""The benchmarks run on the active backend and print their ratios.

benchmarks/structure_map.py in its quick configuration;
benchmarks/distill_step.py on a recipe's tiny models, two methods only
(compiling its eleven steps at full size takes minutes on two CPU cores),
without XLA on TensorFlow (XLA compiles a step there for about a minute);
benchmarks/efficacy.py --quick runs the whole protocol on tiny settings.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "structure_map.py"
DISTILL_STEP = ROOT / "benchmarks" / "distill_step.py"
EFFICACY = ROOT / "benchmarks" / "efficacy.py"


def run(*args, script=SCRIPT, timeout=300):
    command = [sys.executable, str(script), "--backend", keras.backend.backend(), *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


TERMS = ("D exact", "D variance", "E multi-scale", "E single-scale", "C", "W (D exact)",
         "W (D variance)")
GOALS = ("D exact", "W (D exact)")


def test_structure_map_quick_prints_a_ratio_per_level_and_term():
    output = run("--quick", "--no-memory", "--repeats", "1")
    forward = float(re.search(r"^teacher forward: ([\d.]+) ms", output, re.M).group(1))
    rows = re.findall(
        r"^(stride \d+|all four levels)\s.*?(" + "|".join(re.escape(t) for t in TERMS)
        + r")\s+([\d.]+)\s+([\d.]+)%\s+(PASS|FAIL|-)$",
        output, re.M)
    assert len(rows) == 5 * len(TERMS), output  # 4 levels and their sum, each term
    for level, term, milliseconds, percent, verdict in rows:
        ratio = float(milliseconds) / forward
        assert abs(100 * ratio - float(percent)) <= 0.01 + 1e-3 * 100 * ratio, (milliseconds, percent)
        if level == "all four levels" and term in GOALS:
            assert verdict == ("PASS" if ratio <= 0.03 else "FAIL") or abs(ratio - 0.03) < 1e-4
        else:
            assert verdict == "-"
    totals = {term: float(ms) for level, term, ms, _, _ in rows if level == "all four levels"}
    per_level = {}
    for level, term, ms, _, _ in rows:
        if level != "all four levels":
            per_level[term] = per_level.get(term, 0.0) + float(ms)
    for term in TERMS:
        assert abs(totals[term] - per_level[term]) <= 0.01 * 4 + 1e-3 * totals[term], term


def test_structure_map_memory_probe_reports_a_peak():
    result = json.loads(run("--probe", "1x24x24x8,exact").strip().splitlines()[-1])
    assert isinstance(result["peak"], int) and result["peak"] >= 0 and result["how"]


def test_efficacy_quick_runs_the_protocol_and_its_statistics(tmp_path):
    path = tmp_path / "efficacy.json"
    output = run("--quick", "--seeds", "0,1", "--unlabelled", "--json", str(path),
                 script=EFFICACY, timeout=900)
    result = json.loads(path.read_text())

    # What the protocol prints, in its order, and the machine and the times.
    order = [output.index(marker) for marker in (
        "machine:", "1. Structure report", "teacher_level_1", "2. Per seed",
        "3. Paired differences", "unlabelled images added", "time:")]
    assert order == sorted(order), output
    assert re.search(r"^time: \d+ s wall", output, re.M), output
    assert len(result["structure_report"]) == 4
    assert result["structure_report"][0]["concentration"] > 0

    # Every method of each arm, for each seed, from the same initial weights.
    records = {(r["arm"], r["method"], r["seed"]): r for r in result["records"]}
    labelled = ("scratch", "cwd", "sard_uniform", "sard")
    mixed = ("scratch", "cwd", "sard")
    expected = {("labelled only", m, s) for m in labelled for s in (0, 1)}
    expected |= {("labelled + unlabelled", m, s) for m in mixed for s in (0, 1)}
    assert set(records) == expected
    assert result["same_init"] and "same initial student weights for every method of a " \
        "seed: yes" in output
    for record in records.values():
        assert 0 < record["miou"] <= 100 and 0 <= record["biou"] <= 100

    # The differences and their intervals, recomputed from the scores with
    # SciPy's t interval (the script computes t·sd/sqrt(n) itself).
    pairs = {"sard − sard_uniform": (("labelled only", "sard"), ("labelled only", "sard_uniform")),
             "sard − cwd": (("labelled only", "sard"), ("labelled only", "cwd")),
             "sard − scratch": (("labelled only", "sard"), ("labelled only", "scratch"))}
    for method in mixed:
        pairs[f"{method}+unlabelled − {method}"] = (("labelled + unlabelled", method),
                                                     ("labelled only", method))
    found = {(d["comparison"], d["metric"]): d for d in result["differences"]}
    assert set(found) == {(c, m) for c in pairs for m in ("miou", "biou")}
    for (comparison, metric), row in found.items():
        first, second = pairs[comparison]
        values = np.array([records[(*first, s)][metric] - records[(*second, s)][metric]
                           for s in (0, 1)])
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                     scale=stats.sem(values))
        np.testing.assert_allclose(row["per_seed"], values, atol=1e-9)
        bounds = [row["mean"] - row["half_width"], row["mean"] + row["half_width"]]
        np.testing.assert_allclose(bounds, [low, high], rtol=1e-9, atol=1e-9)
        inside = low <= 0 <= high
        assert (row["conclusion"] == "no measurable difference at n = 2") == inside, row
        name = {"miou": "mIoU", "biou": "bIoU"}[metric]
        line = re.search(rf"^{re.escape(comparison)} +{name} +(.*)$", output, re.M)
        assert line and f"[{low:+.2f}, {high:+.2f}]" in line.group(1), (comparison, metric)


@pytest.mark.parametrize("recipe, methods", [("small", "sard,kd"), ("swin_l->swin_t", "teacher_cut,mgd")])
def test_distill_step_on_a_tiny_recipe_prints_each_step_against_the_floor(recipe, methods):
    jit = ["--no-jit"] if keras.backend.backend() == "tensorflow" else []
    output = run("--recipe", recipe, "--tiny", "--quick", "--repeats", "1", "--methods", methods,
                 *jit, script=DISTILL_STEP)
    rows = {
        label.strip(): (float(ms), float(ratio), peak)
        for label, ms, median, ratio, peak in re.findall(
            r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)×\s+(-|[\d.]+)$", output, re.M)
    }
    teacher = rows["teacher inference, whole teacher"][0]
    student = rows["student step, task loss only"][0]
    floor = rows["floor: whole teacher + student step"][0]
    assert abs(floor - (teacher + student)) <= 0.15, output
    for label, (ms, ratio, peak) in rows.items():
        assert abs(ratio - ms / floor) <= 0.005 + 0.05 * (1 + ms / floor) / floor, (label, output)
        assert label.startswith("floor") or peak != "-", (label, output)  # a memory figure
    expected = {"sard": "SARD (exact D)", "kd": "KD (logits)", "mgd": "MGD (last level)",
                "teacher_cut": "teacher inference, up to its tapped levels"}
    assert {expected[m] for m in methods.split(",")} <= set(rows), output
    goals = re.findall(r"^ratio (\w+) / floor: ([\d.]+)× \(goal ≤ ([\d.]+)×\) (PASS|FAIL)$", output, re.M)
    with_goals = ("sard",) if recipe == "small" else ("sard", "kd", "cwd", "dkd", "mgd")
    timed = [m for m in methods.split(",") if m in with_goals]
    assert [g[0] for g in goals] == timed, output
    for name, ratio, goal, verdict in goals:
        if abs(float(ratio) - float(goal)) > 0.005:  # printed rounded
            assert verdict == ("PASS" if float(ratio) <= float(goal) else "FAIL"), output


def test_distill_step_rejects_an_unknown_recipe():
    command = [sys.executable, str(DISTILL_STEP), "--backend", keras.backend.backend(),
               "--recipe", "swin_t->swin_l", "--no-memory"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Unknown recipe" in result.stderr, result.stderr[-2000:]
