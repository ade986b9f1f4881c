"""The benchmarks run on the active backend and print their ratios.

benchmarks/structure_map.py in its quick configuration;
benchmarks/distill_step.py on a recipe's tiny models, two methods only
(compiling its eleven steps at full size takes minutes on two CPU cores),
without XLA on TensorFlow (XLA compiles a step there for about a minute).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "structure_map.py"
DISTILL_STEP = ROOT / "benchmarks" / "distill_step.py"


def run(*args, script=SCRIPT):
    command = [sys.executable, str(script), "--backend", keras.backend.backend(), *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
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
