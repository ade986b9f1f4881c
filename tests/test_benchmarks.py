"""benchmarks/structure_map.py runs on the active backend and prints its ratios.

(benchmarks/distill_step.py is not run here: compiling its six training
steps takes about two minutes on two CPU cores.)
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "structure_map.py"


def run(*args):
    command = [sys.executable, str(SCRIPT), "--backend", keras.backend.backend(), *args]
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
