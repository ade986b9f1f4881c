"""W diagnostics (keras_sard.diagnostics): the band, the cell pooling and the
statistics against brute-force NumPy references written here (from the
definitions in the module docstring), and the report on a positive and a
negative control."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sard.diagnostics import (
    BOUNDARY_CONCENTRATION_GOAL,
    NEARLY_UNIFORM_FRACTION,
    LevelReport,
    StructureReport,
    boundary_statistics,
    cell_band_density,
    label_boundary_band,
    structure_report,
    weight_statistics,
)
from keras_sard.losses import SARDLoss
from keras_sard.structure import StructureWeights
from tests.helpers import to_numpy
from tests.references import random_features, ref_weights

IGNORE = 255


# ---------------------------------------------------------------- references


def ref_label_band(labels, ignore=IGNORE):
    """Brute force: a valid pixel whose in-bounds 3×3 window holds >= 2 labels
    other than `ignore`."""
    batch, height, width = labels.shape
    band = np.zeros(labels.shape, bool)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                if labels[b, i, j] == ignore:
                    continue
                window = labels[b, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
                band[b, i, j] = len(set(window[window != ignore].tolist())) >= 2
    return band


def ref_cells(labels, level_shape, ignore=IGNORE):
    band = ref_label_band(labels, ignore)
    batch, height, width = labels.shape
    h, w = level_shape
    sy, sx = height // h, width // w
    density = np.zeros((batch, h, w))
    valid = np.zeros((batch, h, w), bool)
    for b in range(batch):
        for i in range(h):
            for j in range(w):
                cell = (b, slice(i * sy, (i + 1) * sy), slice(j * sx, (j + 1) * sx))
                area = (labels[cell] != ignore).sum()
                valid[b, i, j] = area > 0
                density[b, i, j] = band[cell].sum() / area if area else 0.0
    return density, valid


def ref_statistics(weights, labels, ignore=IGNORE):
    weights = weights.astype("float64")
    density, valid = ref_cells(labels, weights.shape[1:], ignore)
    out = {k: [] for k in ("effective_fraction", "max_over_mean", "concentration", "ceiling",
                           "boundary_cell_share")}
    for w, b, v in zip(weights, density, valid):
        n = w.size
        out["effective_fraction"].append(1.0 / (n * (w ** 2).sum()))
        out["max_over_mean"].append(n * w.max())
        share = b[v].mean()  # the band's area share over valid cells
        if share > 0:
            out["concentration"].append((w[v] * b[v]).sum() / w[v].sum() / share)
            out["ceiling"].append(b[v].max() / share)
        else:
            out["concentration"].append(np.nan)
            out["ceiling"].append(np.nan)
        out["boundary_cell_share"].append((b[v] > 0).mean())
    return {k: np.array(v) for k, v in out.items()}


def random_labels(rng, shape, classes=3, block=3, ignore_fraction=0.05):
    batch, height, width = shape
    coarse = rng.integers(0, classes, (batch, -(-height // block), -(-width // block)))
    labels = np.repeat(np.repeat(coarse, block, 1), block, 2)[:, :height, :width]
    labels = labels + (rng.random(shape) < 0.05)  # some single-pixel specks
    labels = labels.astype("int32")
    labels[rng.random(shape) < ignore_fraction] = IGNORE
    return labels


# ---------------------------------------------------------------- the maths


def test_band_matches_brute_force(rng):
    labels = random_labels(rng, (3, 17, 23))
    labels[0, :5, :] = IGNORE  # an ignore region touching the border
    np.testing.assert_array_equal(to_numpy(label_boundary_band(labels)) > 0.5,
                                  ref_label_band(labels))
    # The 3×3 gradient of a two-label map is the two-pixel-wide line between them.
    halves = np.zeros((1, 6, 6), "int32")
    halves[0, :, 3:] = 1
    assert to_numpy(label_boundary_band(halves))[0].sum(axis=0).tolist() == [0, 0, 6, 6, 0, 0]
    # An ignore pixel separates nothing; (B, H, W, 1) masks are read too.
    speck = np.zeros((1, 5, 5, 1), "int32")
    speck[0, 2, 2] = IGNORE
    assert to_numpy(label_boundary_band(speck)).sum() == 0


@pytest.mark.parametrize("level_shape", [(6, 8), (3, 4), (24, 32)])
def test_cell_density_and_statistics_match_reference(rng, level_shape):
    labels = random_labels(rng, (4, 24, 32))
    labels[1, :8, :8] = IGNORE  # whole cells without a valid pixel
    labels[2] = 1  # no boundary at all
    labels[2, 0, 0] = IGNORE
    weights = rng.random((4,) + level_shape) ** 3
    weights = (weights / weights.sum(axis=(1, 2), keepdims=True)).astype("float32")

    density, valid = cell_band_density(labels, level_shape)
    want_density, want_valid = ref_cells(labels, level_shape)
    np.testing.assert_allclose(to_numpy(density), want_density, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(to_numpy(valid) > 0.5, want_valid)

    got = {**weight_statistics(weights), **boundary_statistics(weights, labels)}
    want = ref_statistics(weights, labels)
    assert np.isnan(want["concentration"][2])
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)


def test_uniform_weights_give_exactly_one(rng):
    labels = random_labels(rng, (2, 16, 16))
    uniform = np.full((2, 4, 4), 1 / 16, "float32")
    stats = {**weight_statistics(uniform), **boundary_statistics(uniform, labels)}
    np.testing.assert_allclose(stats["effective_fraction"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(stats["max_over_mean"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(stats["concentration"], 1.0, rtol=1e-6)


# --------------------------------------------------------- the report, end to end


def two_level_teacher(size=16, channels=3):
    layers = keras.layers
    inputs = keras.Input((size, size, channels))
    x = layers.Conv2D(6, 3, strides=2, padding="same", activation="tanh", name="level_1")(inputs)
    y = layers.Conv2D(8, 3, strides=2, padding="same", activation="tanh", name="level_2")(x)
    y = layers.UpSampling2D(4)(y)
    return keras.Model(inputs, layers.Conv2D(2, 1, name="head")(y), name="teacher")


def reference_report(teacher, names, images, labels, beta, radius, scales, padding):
    extractor = keras.Model(teacher.input, [teacher.get_layer(n).output for n in names])
    features = [to_numpy(f) for f in extractor(images, training=False)]
    out = {}
    for name, f in zip(names, features):
        weights = ref_weights(f.astype("float64"), beta=beta, radius=radius, scales=scales,
                              padding=padding)
        stats = ref_statistics(weights, labels)
        concentration = stats["concentration"]
        defined = ~np.isnan(concentration)
        out[name] = {
            "effective_fraction": stats["effective_fraction"].mean(),
            "max_over_mean": stats["max_over_mean"].mean(),
            "concentration": concentration[defined].mean(),
            "ceiling": stats["ceiling"][defined].mean(),
            "boundary_cell_share": stats["boundary_cell_share"].mean(),
            "images_with_boundary": int(defined.sum()),
            "map_shape": f.shape[1:3],
        }
    return out


def test_report_matches_reference_from_arrays_and_from_a_dataset(rng):
    teacher = two_level_teacher()
    images = rng.normal(size=(4, 16, 16, 3)).astype("float32")
    labels = random_labels(rng, (4, 16, 16))
    labels[3] = 0  # one image without a boundary: left out of the concentration
    structure = StructureWeights(radius=2, scales=None, padding="reflect")
    names = ["level_1", "level_2"]
    want = reference_report(teacher, names, images, labels, (2.0, 1.0, 1.0), 2, None, "reflect")

    # One batch shape (JAX compiles each op once per shape).
    from_arrays = structure_report(teacher, names, images, labels, structure, batch_size=2)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    from_dataset = structure_report(teacher, names, dataset, structure=structure)

    for report in (from_arrays, from_dataset):
        assert isinstance(report, StructureReport) and report.labelled
        assert [level.layer for level in report.levels] == names
        for level in report.levels:
            expected = want[level.layer]
            assert level.images == 4 and level.images_with_boundary == 3
            assert level.map_shape == expected["map_shape"]
            assert level.stride == 16 // expected["map_shape"][0]
            for key in ("effective_fraction", "max_over_mean", "concentration", "ceiling",
                        "boundary_cell_share"):
                np.testing.assert_allclose(getattr(level, key), expected[key], rtol=1e-4,
                                           err_msg=f"{level.layer} {key}")


def identity_teacher(size, channels):
    inputs = keras.Input((size, size, channels))
    features = keras.layers.Identity(name="features")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(2, 1)(features))


def blob_labels(rng, count=3, size=32):
    """Disks of 2 classes on background: boundaries cover a minority of pixels."""
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((count, size, size), "int32")
    for b in range(count):
        for k in range(4):
            cy, cx, r = rng.uniform(6, size - 6), rng.uniform(6, size - 6), rng.uniform(3, 6)
            labels[b][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1 + k % 2
    return labels


def test_positive_control_one_hot_labels_at_full_resolution_concentrate(rng):
    labels = blob_labels(rng)
    one_hot = np.eye(3, dtype="float32")[labels]
    teacher = identity_teacher(32, 3)

    default = structure_report(teacher, ["features"], one_hot, labels,
                               StructureWeights(radius=3)).levels[0]
    assert default.concentration > 2.0, default
    assert default.verdict == "W concentrates on object boundaries"
    assert default.effective_fraction < NEARLY_UNIFORM_FRACTION

    # E and C of a one-hot map live within one pixel of a label change, that
    # is on the band: all of W's mass is there, the concentration is its ceiling.
    edges = structure_report(teacher, ["features"], one_hot, labels,
                             StructureWeights(beta_density=0.0, scales=None)).levels[0]
    np.testing.assert_allclose(edges.concentration, edges.ceiling, rtol=1e-5)
    assert edges.ceiling > 3.0


def test_negative_control_flat_features_are_uniform(rng):
    inputs = keras.Input((16, 16, 3))
    flat = keras.layers.Conv2D(4, 1, kernel_initializer="zeros", bias_initializer="ones",
                               name="flat")(inputs)
    teacher = keras.Model(inputs, keras.layers.Conv2D(2, 1)(flat))
    images = rng.normal(size=(3, 16, 16, 3)).astype("float32")
    labels = random_labels(rng, (3, 16, 16))

    level = structure_report(teacher, ["flat"], images, labels).levels[0]

    assert level.effective_fraction == pytest.approx(1.0, abs=1e-6)
    assert level.max_over_mean == pytest.approx(1.0, abs=1e-6)
    assert level.concentration == pytest.approx(1.0, abs=1e-6)
    assert level.verdict.startswith("W is nearly uniform here")


def test_table_rows_and_unlabelled_report(rng):
    teacher = two_level_teacher()
    images = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    labelled = structure_report(teacher, ["level_1", "level_2"], images,
                                random_labels(rng, (2, 16, 16)), StructureWeights(radius=1))
    text = str(labelled)
    assert text == labelled.format()
    lines = text.splitlines()
    assert lines[0].startswith("W per level, mean over 2 images")
    assert "concentration" in lines[1] and "verdict" in lines[1]
    assert lines[2].startswith("level_1") and lines[3].startswith("level_2")
    for line, level in zip(lines[2:], labelled.levels):
        assert line.endswith(level.verdict)
    rows = labelled.rows()
    assert rows[0]["layer"] == "level_1" and rows[0]["verdict"] == labelled.levels[0].verdict

    bare = structure_report(teacher, ["level_2"], images, structure=StructureWeights(radius=1))
    assert not bare.labelled and bare.levels[0].concentration is None
    assert "concentration" not in str(bare)
    assert bare.levels[0].verdict in (
        "W is nearly uniform here: SARD will behave like uniform feature distillation",
        "W is not uniform; pass labels to see whether it favours boundaries")


def test_a_sard_loss_structure_can_be_measured(rng):
    teacher = two_level_teacher()
    images = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    loss = SARDLoss(["level_1"], ["level_1"], radius=1, beta_corner=0.0)
    ours = structure_report(teacher, ["level_1"], images, structure=loss.structure)
    same = structure_report(teacher, ["level_1"], images,
                            structure=StructureWeights(radius=1, beta_corner=0.0))
    assert ours.levels[0] == same.levels[0]


def test_bad_input_is_named(rng):
    teacher = two_level_teacher()
    images = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    labels = np.zeros((2, 16, 16), "int32")
    with pytest.raises(ValueError, match="labels"):
        structure_report(teacher, ["level_1"], tf.data.Dataset.from_tensors(images), labels)
    with pytest.raises(ValueError, match="3 maps for 2 images"):
        structure_report(teacher, ["level_1"], images, np.zeros((3, 16, 16), "int32"))
    with pytest.raises(ValueError, match="whole multiple of layer 'level_2'"):
        structure_report(teacher, ["level_2"], images, np.zeros((2, 18, 16), "int32"))
    with pytest.raises(ValueError, match="no layer named 'level_9'"):
        structure_report(teacher, ["level_9"], images)
    with pytest.raises(ValueError, match=r"\(batch, height, width\)"):
        label_boundary_band(np.zeros((4, 4), "int32"))


def test_thresholds_are_the_documented_ones():
    assert NEARLY_UNIFORM_FRACTION == 0.9 and BOUNDARY_CONCENTRATION_GOAL == 1.3
    # 1/(N·ΣW²) = 1/(1 + CV²): a W whose cells deviate by CV = 1/3 sits at 0.9.
    w = np.array([1 - 1 / 3, 1 + 1 / 3]) / 2
    assert 1 / (2 * (w ** 2).sum()) == pytest.approx(NEARLY_UNIFORM_FRACTION)


@pytest.mark.parametrize("fraction, concentration, ceiling, with_boundary, start", [
    (0.95, None, None, None, "W is nearly uniform here"),
    (0.80, None, None, None, "W is not uniform; pass labels"),
    (0.80, float("nan"), float("nan"), 0, "W is not uniform; the labels hold no boundary"),
    (0.95, 1.40, 5.0, 3, "W concentrates"),  # nearly uniform overall, a sparse band
    (0.70, 1.30, 5.0, 3, "W concentrates"),
    (0.95, 1.10, 1.2, 3, "W is nearly uniform here"),
    (0.70, 1.10, 1.2, 3, "boundaries fill most cells"),
    (0.70, 1.10, 3.0, 3, "W varies, but favours the labelled boundaries little"),
])
def test_verdicts(fraction, concentration, ceiling, with_boundary, start):
    level = LevelReport("level", (8, 8), 4, 3, fraction, 2.0, concentration, ceiling,
                        None if concentration is None else 0.5, with_boundary)
    assert level.verdict.startswith(start)
