"""keras_sard.visualize: figure sizes, boundary errors against SciPy, errors."""

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import tiny_segmenter, to_numpy
from keras_sard.structure import StructureWeights
from keras_sard.visualize import (
    ERROR_COLOR,
    IGNORE_COLOR,
    boundary_errors,
    colorize,
    plot_predictions,
    plot_structure,
    read_layer,
)
from references import ref_band, ref_boundary_iou


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 0  # something was drawn
    return image.size  # (width, height)


def blocky_labels(rng, height, width, num_classes, ignore_fraction=0.05):
    coarse = rng.integers(0, num_classes, size=((height + 3) // 4, (width + 3) // 4))
    labels = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:height, :width]
    labels[rng.random(labels.shape) < ignore_fraction] = 255
    return labels.astype("int32")


# ------------------------------------------------------------- read_layer


def test_read_layer_matches_a_sub_model_also_nested(rng):
    teacher = tiny_segmenter("teacher", 8)
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, teacher(inputs), name="outer")
    x = rng.random((1, 16, 16, 3)).astype("float32")  # the shapes plot_structure uses
    reference = keras.Model(teacher.inputs, teacher.get_layer("teacher_level_2").output)
    expected = to_numpy(reference(x))
    for model, name in ((teacher, "teacher_level_2"), (outer, "teacher/teacher_level_2")):
        features, logits = read_layer(model, name, x, "teacher")
        assert isinstance(features, np.ndarray) and features.shape == (1, 8, 8, 16)
        np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logits, to_numpy(teacher(x)), rtol=1e-5, atol=1e-6)


def test_read_layer_errors():
    teacher = tiny_segmenter("teacher", 8)
    with pytest.raises(ValueError, match="no layer named 'teacher_levl_2'.*teacher_level_2"):
        read_layer(teacher, "teacher_levl_2", np.zeros((1, 16, 16, 3)), "teacher")
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 16, 16, 3\)"):
        read_layer(teacher, "teacher_level_2", np.zeros((1, 12, 16, 3)), "teacher")


# ---------------------------------------------------------- plot_structure


def test_plot_structure_from_the_teacher_nested_layer(tmp_path, rng):
    teacher = tiny_segmenter("teacher", 8)
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, teacher(inputs), name="outer")
    image = rng.random((16, 16, 3)).astype("float32")
    path = plot_structure(
        image, outer, "teacher/teacher_level_2", tmp_path / "sub" / "w.png", panel_pixels=80,
        structure=StructureWeights(radius=2), title="teacher level 2",
    )
    assert path == str(tmp_path / "sub" / "w.png")
    assert png_size(path) == (3 * 80, 2 * 80)


@pytest.mark.parametrize(
    "image_shape, feature_shape, panel",
    [((23, 17, 3), (1, 9, 12, 5), 64), ((30, 30, 4), (8, 8, 16), 101)],
)
def test_plot_structure_from_features_any_size(tmp_path, rng, image_shape, feature_shape, panel):
    image = rng.random(image_shape) * 7 - 3  # not in [0, 1]: min–max scaled
    if image_shape[-1] == 4:
        image = (rng.random(image_shape) * 255).astype("uint8")  # shown as grey
    features = rng.normal(size=feature_shape).astype("float32")
    path = plot_structure(
        image, features=features, path=str(tmp_path / "f.PNG"), panel_pixels=panel,
        structure=StructureWeights(radius=2),
    )
    assert png_size(path) == (3 * panel, 2 * panel)


def test_plot_structure_draws_non_finite_maps(tmp_path, rng):
    features = rng.normal(size=(1, 8, 8, 16)).astype("float32")
    features[0, 2, 3, 1] = np.nan  # W of this image is NaN: drawn blank, flagged
    path = plot_structure(
        rng.random((16, 16, 3)), features=features, path=tmp_path / "nan.png",
        structure=StructureWeights(radius=2), panel_pixels=64,
    )
    assert png_size(path) == (3 * 64, 2 * 64)


def test_plot_structure_errors(tmp_path, rng):
    teacher = tiny_segmenter("teacher", 8)
    image = rng.random((16, 16, 3)).astype("float32")
    features = rng.normal(size=(8, 8, 4)).astype("float32")
    png = str(tmp_path / "x.png")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        plot_structure(image, teacher, "nope", png)
    with pytest.raises(ValueError, match="`image` must be one image"):
        plot_structure(image[None], features=features, path=png)
    with pytest.raises(ValueError, match="`features` must be one channels_last feature map"):
        plot_structure(image, features=features[..., 0], path=png)
    with pytest.raises(ValueError, match="not both"):
        plot_structure(image, teacher, "teacher_level_1", png, features=features)
    with pytest.raises(ValueError, match="either `teacher` and `layer`"):
        plot_structure(image, teacher, path=png)
    with pytest.raises(ValueError, match="must end in .png"):
        plot_structure(image, features=features, path=str(tmp_path / "x.jpg"))
    with pytest.raises(ValueError, match="`path` is required"):
        plot_structure(image, features=features)
    with pytest.raises(ValueError, match="StructureWeights"):
        plot_structure(image, features=features, path=png, structure="mean")
    with pytest.raises(ValueError, match="`panel_pixels`"):
        plot_structure(image, features=features, path=png, panel_pixels=10)
    with pytest.raises(ValueError, match=r"expects inputs of shape"):
        plot_structure(rng.random((16, 16, 2)), teacher, "teacher_level_1", png)
    # A layer whose output is no feature map (here a pooled vector).
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Conv2D(4, 3)(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    with pytest.raises(ValueError, match=r"layer 'pool'.*got shape \(1, 4\)"):
        plot_structure(image, classifier, "pool", png)
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------- boundary errors


@pytest.mark.parametrize("shape, num_classes, ratio", [((23, 17), 3, 0.02), ((40, 64), 2, 0.05), ((9, 31), 5, 0.0)])
def test_boundary_errors_match_scipy(rng, shape, num_classes, ratio):
    label = blocky_labels(rng, *shape, num_classes)
    prediction = np.where(rng.random(shape) < 0.15, rng.integers(0, num_classes, shape), label)
    prediction = np.where(label == 255, rng.integers(0, num_classes, shape), prediction)
    errors, biou = boundary_errors(label, prediction, num_classes, 255, ratio)

    d = max(1, int(round(ratio * np.hypot(*shape))))
    valid = label != 255
    region = np.zeros(shape, bool)
    for k in range(num_classes):
        region |= ref_band((label == k) & valid, d) | ref_band((prediction == k) & valid, d)
    expected = region & valid & (prediction != label)
    assert errors.dtype == bool and errors.shape == shape
    np.testing.assert_array_equal(errors, expected)
    assert expected.any()  # the test can fail
    reference = ref_boundary_iou([label[None]], [prediction[None]], num_classes, 255, ratio)
    np.testing.assert_allclose(biou, reference, rtol=1e-6)


def test_boundary_errors_ignore_and_checks():
    label = np.zeros((12, 12), "int32")
    label[3:9, 3:9] = 1
    label[:, :2] = 255
    prediction = np.where(label == 255, 1, label)  # right everywhere that counts
    errors, biou = boundary_errors(label, prediction, num_classes=2)
    assert not errors.any() and biou == 1.0
    with pytest.raises(ValueError, match=r"`label` holds class ids outside \[0, 2\)"):
        boundary_errors(label, prediction, num_classes=2, ignore_label=None)  # 255 counts
    with pytest.raises(ValueError, match=r"`prediction` holds class ids outside \[0, 2\)"):
        boundary_errors(label, prediction + 1, num_classes=2)
    with pytest.raises(ValueError, match="label's shape"):
        boundary_errors(label, prediction[:5], num_classes=2)
    with pytest.raises(ValueError, match="integer class ids"):
        boundary_errors(label.astype("float32"), prediction, num_classes=2)


def test_colorize_marks_ignore_and_errors():
    class_map = np.array([[0, 1, 2], [2, 1, 0]])
    ignore = class_map == 2
    errors = np.zeros_like(ignore)
    errors[0, 0] = True
    rgb = colorize(class_map, 3, ignore, errors)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert tuple(rgb[0, 0]) == ERROR_COLOR
    assert tuple(rgb[0, 2]) == IGNORE_COLOR and tuple(rgb[1, 0]) == IGNORE_COLOR
    assert tuple(rgb[0, 1]) == tuple(rgb[1, 1]) != tuple(rgb[1, 2])
    assert len({tuple(c) for c in colorize(np.arange(150)[None], 150)[0]}) == 150
    with pytest.raises(ValueError, match=r"ids outside \[0, 2\) that `ignore` does not mark: \[255\]"):
        colorize(np.array([[0, 255]]), 2)
    with pytest.raises(ValueError, match="`num_classes` must be an integer ≥ 2"):
        colorize(class_map, 1)
    with pytest.raises(ValueError, match="`errors` must have the class map's shape"):
        colorize(class_map, 3, errors=errors[:1])


# -------------------------------------------------------- plot_predictions


def test_plot_predictions_sizes(tmp_path, rng):
    label = blocky_labels(rng, 24, 20, 3)
    image = rng.random((24, 20, 3)).astype("float32")
    predictions = {
        "teacher": rng.normal(size=(24, 20, 3)).astype("float32"),
        "student": rng.normal(size=(12, 10, 3)).astype("float32"),  # resized to 24×20
        "class map": np.where(label == 255, 0, label),
    }
    path = plot_predictions(image, label[..., None], predictions, tmp_path / "p.png", panel_pixels=96)
    assert png_size(path) == (5 * 96, 96)
    binary = {"a": rng.normal(size=(24, 20, 1)).astype("float32")}
    path = plot_predictions(image[..., 0], None, binary, tmp_path / "q.png", title="binary", panel_pixels=64)
    assert png_size(path) == (2 * 64, 64)


def test_plot_predictions_errors(tmp_path, rng):
    label = blocky_labels(rng, 16, 16, 2)
    image = rng.random((16, 16, 3))
    logits = rng.normal(size=(16, 16, 2)).astype("float32")
    png = tmp_path / "p.png"
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_predictions(image, label, {}, png)
    with pytest.raises(ValueError, match="'s': a class map must have the image's size"):
        plot_predictions(image, label, {"s": np.zeros((8, 8), "int32")}, png)
    with pytest.raises(ValueError, match="'s' must be logits"):
        plot_predictions(image, label, {"s": logits[None]}, png)
    with pytest.raises(ValueError, match="must be floating point"):
        plot_predictions(image, label, {"s": logits.astype("int32")}, png)
    with pytest.raises(ValueError, match="same height and width"):
        plot_predictions(image[:8], label, {"s": logits}, png)
    with pytest.raises(ValueError, match="integer class ids"):
        plot_predictions(image, label.astype("float32"), {"s": logits}, png)
    with pytest.raises(ValueError, match="disagree on the number of classes"):
        plot_predictions(image, label, {"s": logits, "t": np.zeros((16, 16, 3), "float32")}, png)
    with pytest.raises(ValueError, match="`num_classes`=3 expects 3"):
        plot_predictions(image, label, {"s": logits}, png, num_classes=3)
    with pytest.raises(ValueError, match="must end in .png"):
        plot_predictions(image, label, {"s": logits}, tmp_path / "p")
    assert not png.exists()
