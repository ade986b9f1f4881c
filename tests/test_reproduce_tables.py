"""The table runner: a tiny run fills every row and column of the paper's
layout; the layout's numbers against NumPy."""

import csv
import os

import numpy as np
import pytest
from helpers import tiny_segmenter
from workflow_helpers import run_cli

from keras_sard import tables

ROWS = ("Teacher", "Student (scratch)", "Vanilla KD", "CWD", "DKD", "MGD", "SARD", "Δ vs CWD")


def _markdown_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


class TwoLevelRecipe:
    """Two-level segmenters (`helpers.tiny_segmenter`): the grid's plumbing at a
    quarter of the tiny recipe's compile time."""

    teacher_layers = ("teacher_level_1", "teacher_level_2")
    student_layers = ("student_level_1", "student_level_2")

    def build_teacher(self, num_classes, image_size, tiny=False):
        return tiny_segmenter("teacher", 8, num_classes, image_size[0])

    def build_student(self, num_classes, image_size, tiny=False):
        return tiny_segmenter("student", 4, num_classes, image_size[0])


def test_quick_run_fills_every_row_and_column(tmp_path):
    lines = []
    runs = tables.run_grid(["synthetic"], seeds=[0], log=lines.append,
                           **{**tables.QUICK, "recipe": TwoLevelRecipe()})
    assert len(lines) == 7
    paths = tables.write_tables(runs, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["runs.csv", "table.csv", "table.md"]
    with open(paths[0], encoding="utf-8") as f:
        header, *rows = _markdown_rows(f.read())
    assert header == ["Method", "Synthetic mIoU", "Synthetic bIoU"]
    assert [row[0] for row in rows] == list(ROWS)
    for row in rows:
        for cell in row[1:]:
            assert -100 <= float(cell) <= 100  # filled: a number, no "—"
    with open(paths[1], encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == ["method", "synthetic mIoU", "synthetic mIoU std", "synthetic bIoU",
                        "synthetic bIoU std", "seeds"]
    assert [row[0] for row in table[1:]] == list(ROWS)
    for row in table[1:-1]:
        assert "" not in row
    with open(paths[2], encoding="utf-8") as f:
        saved = list(csv.DictReader(f))
    assert [r["method"] for r in saved] == ["teacher", "scratch", "kd", "cwd", "dkd", "mgd",
                                           "sard"]
    # Two steps leave the BatchNorm statistics stale: every model is re-estimated, and says so.
    assert all(run.batchnorm_recalibrated for run in runs)
    assert [r["batchnorm_recalibrated"] for r in saved] == ["True"] * 7
    assert all(line.endswith(", BN re-estimated)") for line in lines)
    with open(paths[0], encoding="utf-8") as f:
        assert "re-estimated on training batches before scoring: 7 of 7 models" in f.read()
    # The Markdown cells are the runs' scores in %; Δ is SARD's minus CWD's.
    for run, row in zip(runs, rows):
        assert float(row[1]) == pytest.approx(100 * run.miou, abs=0.051)
        assert float(row[2]) == pytest.approx(100 * run.biou, abs=0.051)
    assert float(rows[-1][1]) == pytest.approx(100 * (runs[-1].miou - runs[3].miou), abs=0.051)


def test_runs_record_whether_batchnorm_was_re_estimated():
    teacher_schedule = tables.QUICK["teacher_schedule"].replace(recalibrate_batchnorm=False)
    lines = []
    runs = tables.run_grid(["synthetic"], ["scratch"], seeds=[0], log=lines.append,
                           **{**tables.QUICK, "recipe": TwoLevelRecipe(),
                              "teacher_schedule": teacher_schedule})
    assert [(r.method, r.batchnorm_recalibrated) for r in runs] == [("teacher", False),
                                                                   ("scratch", True)]
    assert "BN re-estimated" not in lines[0] and "BN re-estimated" in lines[1]
    assert "1 of 2 models" in tables.format_markdown(runs)
    assert "re-estimated" not in tables.format_markdown(runs[:1])


def test_unlabelled_images_join_every_student_batch(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            tmp_path / f"u{index}.png")
    lines = []
    runs = tables.run_grid(["synthetic"], ["scratch", "sard"], seeds=[0], log=lines.append,
                           unlabelled_dirs={"synthetic": tmp_path}, unlabelled_ratio=0.25,
                           **{**tables.QUICK, "recipe": TwoLevelRecipe()})
    assert lines[0] == ("synthetic: Unlabelled images: 3 (unlabelled), 1 in each batch of 4 "
                        "beside 3 labelled ones")
    assert [r.method for r in runs] == ["teacher", "scratch", "sard"]
    with pytest.raises(ValueError, match=r"`unlabelled_dirs` names \['monuseg'\]"):
        tables.run_grid(["synthetic"], ["sard"], [0], unlabelled_dirs={"monuseg": tmp_path})


def _runs(rng):
    runs = []
    for dataset in ("monuseg", "loveda"):
        runs.append(tables.Run(dataset, "teacher", 0, *rng.random(2), stand_in=True))
        for seed in (0, 1, 2):
            for method in ("sard", "cwd", "kd"):  # any order in, the paper's order out
                runs.append(tables.Run(dataset, method, seed, *rng.random(2), stand_in=True))
    return runs


def test_layout_is_mean_and_std_over_seeds_and_delta_vs_cwd():
    runs = _runs(np.random.default_rng(0))
    header, *rows = _markdown_rows(tables.format_markdown(runs))
    assert header == ["Method", "MoNuSeg* mIoU", "MoNuSeg* bIoU", "LoveDA* mIoU", "LoveDA* bIoU"]
    assert [row[0] for row in rows] == ["Teacher", "Vanilla KD", "CWD", "SARD", "Δ vs CWD"]

    def values(method, dataset, metric):
        return 100 * np.array([getattr(r, metric) for r in runs
                               if r.method == method and r.dataset == dataset])

    for row, method in zip(rows, ("teacher", "kd", "cwd", "sard")):
        for cell, (dataset, metric) in zip(row[1:], [(d, m) for d in ("monuseg", "loveda")
                                                     for m in ("miou", "biou")]):
            v = values(method, dataset, metric)
            expected = f"{v.mean():.1f}" if len(v) == 1 else f"{v.mean():.1f} ± {v.std():.1f}"
            assert cell == expected
    deltas = [values("sard", d, m).mean() - values("cwd", d, m).mean()
              for d in ("monuseg", "loveda") for m in ("miou", "biou")]
    assert rows[-1][1:] == [f"{d:+.1f}" for d in deltas]

    table = list(csv.reader(tables.format_csv(runs).splitlines()))
    cwd = next(row for row in table if row[0] == "CWD")
    v = values("cwd", "loveda", "biou")
    assert cwd[7:9] == [f"{v.mean():.2f}", f"{v.std():.2f}"] and cwd[-1] == "3"


def test_missing_rows_are_dashes():
    runs = [r for r in _runs(np.random.default_rng(1)) if r.method != "cwd"]
    _, *rows = _markdown_rows(tables.format_markdown(runs))
    assert [row[0] for row in rows] == ["Teacher", "Vanilla KD", "SARD"]  # no CWD, no Δ
    runs.append(tables.Run("monuseg", "cwd", 0, 0.5, 0.5))
    _, *rows = _markdown_rows(tables.format_markdown(runs))
    assert rows[-1][0] == "Δ vs CWD" and rows[-1][3:] == ["—", "—"]
    assert rows[-1][1][0] in "+-" and rows[-1][2][0] in "+-"
    with pytest.raises(ValueError, match="No runs"):
        tables.format_markdown([])


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="Unknown `methods` 'sardine'"):
        tables.run_grid(["synthetic"], ["sardine"], [0])
    with pytest.raises(ValueError, match="`seeds`"):
        tables.run_grid(["synthetic"], ["kd"], [])
    code, _, err = run_cli("tables", "--datasets", "monuseg", "--data-dir", f"loveda={os.getcwd()}")
    assert code == 2 and "--data-dir names ['loveda'], which are not in --datasets" in err
    code, _, err = run_cli("tables", "--teacher", "synthetic:nuclei=missing.keras")
    assert code == 2 and "--teacher synthetic:nuclei='missing.keras' is not a file" in err
    code, _, err = run_cli("tables", "--unlabelled-dir", f"monuseg={os.getcwd()}")
    assert code == 2 and "--unlabelled-dir names ['monuseg'], which are not in --datasets" in err
    code, _, err = run_cli("tables", "--unlabelled-ratio", "0.5")
    assert code == 2 and "--unlabelled-ratio needs --unlabelled-dir" in err
