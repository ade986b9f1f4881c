"""keras_sard.callbacks.StructureMapLogger during a Distiller.fit, on each backend."""

import glob
import io
import os

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import tiny_batch, tiny_segmenter
from keras_sard import Distiller
from keras_sard.callbacks import StructureMapLogger
from keras_sard.diagnostics import StructureReport, structure_report
from keras_sard.losses import SARDLoss
from keras_sard.structure import StructureWeights

PANEL = 64


def make_distiller(sard=True):
    loss = SARDLoss(["teacher_level_2"], ["student_level_2"], radius=2, hidden_channels=8, seed=0)
    losses = [loss] if sard else []
    distiller = Distiller(tiny_segmenter("teacher", 8), tiny_segmenter("student", 4), losses)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    return distiller, loss


def summaries(log_dir, plugin):
    """(step, value) of every summary of `plugin` in the event files."""
    import tensorflow as tf

    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name in ("images", "scalars", "text")
                if value.metadata.plugin_data.plugin_name == plugin:
                    yield event.step, value


def read_scalars(log_dir):
    """{tag: {step: value}}."""
    import tensorflow as tf

    found = {}
    for step, value in summaries(log_dir, "scalars"):
        found.setdefault(value.tag, {})[step] = float(tf.make_ndarray(value.tensor))
    return found


def read_images(log_dir):
    """{tag: {step: [(width, height) of each image]}} from every event file."""
    found = {}
    for step, value in summaries(log_dir, "images"):
        width, height, *pngs = value.tensor.string_val
        sizes = []
        for png in pngs:
            with Image.open(io.BytesIO(png)) as image:
                assert image.format == "PNG"
                sizes.append(image.size)
        assert {(int(width), int(height))} == set(sizes)
        found.setdefault(value.tag, {})[step] = sizes
    return found


def read_texts(log_dir):
    """{tag: {step: text}}."""
    import tensorflow as tf

    return {value.tag: {step: tf.make_ndarray(value.tensor).item().decode("utf-8")}
            for step, value in summaries(log_dir, "text")}


def png_sizes(png_dir):
    sizes = {}
    for path in sorted(glob.glob(os.path.join(png_dir, "*.png"))):
        with Image.open(path) as image:
            sizes[os.path.basename(path)] = image.size
    return sizes


def test_logs_structure_and_predictions_during_fit(tmp_path, rng):
    # Without distillation losses the step compiles fast; what the callback
    # does is the same (the SARD case is in the next test and in docs/api.md).
    distiller, _ = make_distiller(sard=False)
    x, y = tiny_batch(rng, n=4)
    logger = StructureMapLogger(
        x[:2], "teacher_level_2", log_dir=tmp_path / "tb", png_dir=tmp_path / "png",
        labels=y[:2, :, :, None], structure=StructureWeights(radius=2), panel_pixels=PANEL,
    )
    distiller.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[logger])

    images = read_images(str(tmp_path / "tb"))
    assert set(images) == {"structure/weights", "structure/terms", "predictions"}
    assert images["structure/weights"] == {0: [(16, 16)] * 2}  # W at the image's size
    assert images["structure/terms"] == {0: [(3 * PANEL, 2 * PANEL)] * 2}
    # image, label, teacher, student; before training and after each epoch.
    assert images["predictions"] == {s: [(4 * PANEL, PANEL)] * 2 for s in (0, 1, 2)}

    expected = {f"structure_{i:02d}.png": (3 * PANEL, 2 * PANEL) for i in range(2)}
    expected.update(
        {f"predictions_step{s:04d}_{i:02d}.png": (4 * PANEL, PANEL) for s in (0, 1, 2) for i in range(2)}
    )
    assert png_sizes(str(tmp_path / "png")) == expected

    # The structure report of `layer` (no SARD loss taps any), once: scalars, text, a file.
    report = structure_report(distiller.teacher, ["teacher_level_2"], x[:2], y[:2],
                              StructureWeights(radius=2))
    level = report.levels[0]
    scalars = read_scalars(str(tmp_path / "tb"))
    fields = ("effective_fraction", "max_over_mean", "concentration", "ceiling",
              "boundary_cell_share")
    assert set(scalars) == {f"structure_report/teacher_level_2/{f}" for f in fields}
    for field in fields:
        assert scalars[f"structure_report/teacher_level_2/{field}"] == {
            0: pytest.approx(getattr(level, field), rel=1e-6)}
    texts = read_texts(str(tmp_path / "tb"))
    assert list(texts) == ["structure_report"] and list(texts["structure_report"]) == [0]
    assert level.verdict in texts["structure_report"][0]
    with open(tmp_path / "png" / "structure_report.txt", encoding="utf-8") as f:
        assert f.read() == report.format() + "\n"


def test_every_n_epochs_without_labels_and_the_sard_map(tmp_path, rng):
    distiller, loss = make_distiller()
    x, _ = tiny_batch(rng, n=2)
    logger = StructureMapLogger(x, "teacher_level_2", png_dir=tmp_path, every_n_epochs=2, panel_pixels=PANEL)
    logger.set_model(distiller)
    assert logger._structure_for(distiller) is loss.structure  # the map SARD trains with
    other = StructureWeights(radius=2, beta_density=0.5)
    assert StructureMapLogger(x, "teacher_level_2", png_dir=tmp_path, structure=other)._structure_for(distiller) is other
    assert StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path)._structure_for(distiller) is not loss.structure
    logger.on_train_begin()
    for epoch in range(3):
        logger.on_epoch_end(epoch)
    logger.on_train_end()
    # image, teacher, student; step 0, then after epoch 2 (not 1 or 3).
    expected = {f"structure_{i:02d}.png": (3 * PANEL, 2 * PANEL) for i in range(2)}
    expected.update({f"predictions_step{s:04d}_{i:02d}.png": (3 * PANEL, PANEL) for s in (0, 2) for i in range(2)})
    assert png_sizes(str(tmp_path)) == expected
    # The report of every level SARD weights, with its W; no labels: no concentration.
    with open(tmp_path / "structure_report.txt", encoding="utf-8") as f:
        text = f.read()
    assert text == structure_report(distiller.teacher, loss.teacher_layers, x,
                                    structure=loss.structure).format() + "\n"
    assert "concentration" not in text and text.count("teacher_level_") == 1


def test_report_layers_and_their_maps(tmp_path, rng):
    distiller, loss = make_distiller()
    x, y = tiny_batch(rng, n=2)
    logger = StructureMapLogger(x, "teacher_level_2", log_dir=tmp_path, labels=y,
                                report_layers=["teacher_level_1", "teacher_level_2"])
    logger.set_model(distiller)
    logger.on_train_begin()
    logger.on_train_end()
    level_1 = structure_report(distiller.teacher, ["teacher_level_1"], x, y).levels[0]
    level_2 = structure_report(distiller.teacher, ["teacher_level_2"], x, y,
                               loss.structure).levels[0]  # the map SARD trains with
    with open(tmp_path / "structure_report.txt", encoding="utf-8") as f:
        assert f.read() == StructureReport((level_1, level_2), True).format() + "\n"
    scalars = read_scalars(str(tmp_path))
    assert scalars["structure_report/teacher_level_1/max_over_mean"][0] == pytest.approx(
        level_1.max_over_mean, rel=1e-6)
    assert len(scalars) == 10

    silent = StructureMapLogger(x, "teacher_level_2", png_dir=tmp_path / "none", report_layers=())
    silent.set_model(distiller)
    silent.on_train_begin()
    assert "structure_report.txt" not in os.listdir(tmp_path / "none")
    with pytest.raises(ValueError, match="`report_layers` must be a list"):
        StructureMapLogger(x, "teacher_level_2", png_dir=tmp_path, report_layers="teacher_level_1")


def test_errors(tmp_path, rng):
    x, y = tiny_batch(rng, n=2)
    with pytest.raises(ValueError, match="`images` must be a non-empty batch"):
        StructureMapLogger(x[0], "teacher_level_1", png_dir=tmp_path)
    with pytest.raises(ValueError, match=r"`labels` must be \(batch, height, width\)"):
        StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path, labels=y[:1])
    with pytest.raises(ValueError, match="integer class ids"):
        StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path, labels=y.astype("float32"))
    with pytest.raises(ValueError, match="`log_dir`.*`png_dir`"):
        StructureMapLogger(x, "teacher_level_1")
    with pytest.raises(ValueError, match="`every_n_epochs`"):
        StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path, every_n_epochs=0)
    with pytest.raises(ValueError, match="StructureWeights"):
        StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path, structure="mean")

    logger = StructureMapLogger(x, "teacher_level_1", png_dir=tmp_path)
    logger.set_model(tiny_segmenter("student", 4))
    with pytest.raises(ValueError, match="use it with a keras_sard.Distiller"):
        logger.on_train_begin()
    distiller, _ = make_distiller()
    logger = StructureMapLogger(x, "teacher_levl_1", png_dir=tmp_path)
    logger.set_model(distiller)
    with pytest.raises(ValueError, match="no layer named 'teacher_levl_1'.*teacher_level_1"):
        logger.on_train_begin()
    logger = StructureMapLogger(x[:, :8], "teacher_level_1", png_dir=tmp_path)
    logger.set_model(distiller)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 16, 16, 3\)"):
        logger.on_train_begin()
    assert not os.listdir(tmp_path)
