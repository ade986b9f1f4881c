"""Shared listing/pairing, decoding and label mapping: every failure names the file."""

import numpy as np
import pytest

from keras_sard.data.base import SegmentationData, dataset_from_files, from_files
from keras_sard.data.decode import read_image, read_label_image, to_uint8
from keras_sard.data.files import pair_files, split_subset
from keras_sard.data.labels import colors_to_labels, lookup_labels, touching_borders

from ._fixtures import iterate_expecting_error, raises_naming, save_image, write_corrupt


def _pairs_dir(tmp_path, names=("a", "b")):
    for name in names:
        save_image(tmp_path / "images" / f"{name}.jpg", np.zeros((4, 5, 3), np.uint8))
        save_image(tmp_path / "masks" / f"{name}.png", np.zeros((4, 5), np.uint8))
    return tmp_path / "images", tmp_path / "masks"


def test_pair_files_pairs_by_stem(tmp_path):
    images, masks = _pairs_dir(tmp_path)
    pairs = pair_files(images, masks)
    assert [(p[0][-5:], p[1][-5:]) for p in pairs] == [("a.jpg", "a.png"), ("b.jpg", "b.png")]


def test_pair_files_missing_folder_and_empty_folder(tmp_path):
    with raises_naming(tmp_path / "nope", FileNotFoundError):
        pair_files(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        pair_files(tmp_path / "empty", tmp_path)


def test_pair_files_image_without_mask_names_it(tmp_path):
    images, masks = _pairs_dir(tmp_path)
    save_image(images / "lonely.jpg", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"lonely\.jpg.*expected.*lonely\.png"):
        pair_files(images, masks)


def test_pair_files_mask_without_image_and_duplicate_stems(tmp_path):
    images, masks = _pairs_dir(tmp_path)
    save_image(masks / "orphan.png", np.zeros((4, 5), np.uint8))
    with raises_naming("orphan.png", FileNotFoundError):
        pair_files(images, masks)
    assert len(pair_files(images, masks, allow_unpaired_masks=True)) == 2
    save_image(images / "a.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="share the name"):
        pair_files(images, masks, allow_unpaired_masks=True)


def test_read_image_converts_grey_rgba_palette_and_16_bit(tmp_path):
    grey = save_image(tmp_path / "g.png", np.arange(20, dtype=np.uint8).reshape(4, 5))
    assert read_image(grey).shape == (4, 5, 3)
    np.testing.assert_array_equal(read_image(grey)[..., 2], np.arange(20).reshape(4, 5))
    rgba = save_image(tmp_path / "a.png", np.full((4, 5, 4), 9, np.uint8))
    assert read_image(rgba).shape == (4, 5, 3)
    deep = np.linspace(100, 5000, 20).astype(np.uint16).reshape(4, 5)
    path = save_image(tmp_path / "d.tif", deep)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (4, 5, 3)
    np.testing.assert_array_equal(image[..., 0], to_uint8(deep))
    assert image.min() == 0 and image.max() == 255
    assert (np.diff(image[..., 0].ravel().astype(int)) >= 0).all()  # monotone stretch


def test_to_uint8_percentile_stretch_is_documented_behaviour():
    values = np.arange(0, 1001, dtype=np.uint16)[None]  # 0..1000
    out = to_uint8(values, percentiles=(10.0, 90.0))
    assert out[0, 100] == 0 and out[0, 900] == 255 and out[0, 500] in (127, 128)
    assert to_uint8(np.full((2, 2), 7, np.uint16)).max() == 0


def test_corrupt_and_missing_files_are_named(tmp_path):
    bad = write_corrupt(tmp_path / "bad.png")
    with raises_naming(bad, ValueError):
        read_image(bad)
    with raises_naming(tmp_path / "gone.png", FileNotFoundError):
        read_image(tmp_path / "gone.png")
    colour = save_image(tmp_path / "colour.png", np.random.default_rng(0).integers(
        0, 255, (4, 4, 3), dtype=np.uint8))
    with raises_naming(colour, ValueError):
        read_label_image(colour)


def test_label_mapping_is_strict():
    table = np.array([255, 0, 1])
    assert lookup_labels(np.array([[2, 0]]), table, "m.png").tolist() == [[1, 255]]
    with pytest.raises(ValueError, match=r"m\.png.*\[3\]"):
        lookup_labels(np.array([[3]]), table, "m.png")
    with pytest.raises(ValueError, match="no class"):
        lookup_labels(np.array([[1]]), np.array([0, -1]), "m.png")
    palette = {(0, 0, 0): 0, (255, 0, 0): 1}
    rgb = np.array([[[255, 0, 0], [0, 0, 0]]], np.uint8)
    assert colors_to_labels(rgb, palette, "c.png").tolist() == [[1, 0]]
    with pytest.raises(ValueError, match=r"c\.png.*\(1, 2, 3\)"):
        colors_to_labels(np.array([[[1, 2, 3]]], np.uint8), palette, "c.png")


def test_touching_borders_separate_instances():
    instance = np.array([[1, 1, 2], [1, 1, 2], [0, 3, 3]])
    line = touching_borders(instance)
    assert line.tolist() == [[False, True, False], [False, True, True],
                             [False, False, False]]
    from scipy import ndimage
    kept = np.where(line, 0, instance)
    assert ndimage.label(kept > 0)[1] == 3  # one 4-connected component per instance


def test_split_subset_is_stable_and_disjoint():
    pairs = [(f"/x/img{i}.tif", f"/x/m{i}.tif") for i in range(200)]
    train = split_subset(pairs, "train", val_fraction=0.25)
    val = split_subset(pairs, "val", val_fraction=0.25)
    assert len(train) + len(val) == 200 and not set(train) & set(val)
    assert 25 <= len(val) <= 75
    assert split_subset(pairs[:50], "val", val_fraction=0.25) == [p for p in val if p in pairs[:50]]
    assert split_subset(pairs, "all", val_fraction=0.25) == pairs
    with pytest.raises(ValueError, match="split"):
        split_subset(pairs, "test", val_fraction=0.25)


def _loader(images, masks):
    def load(image_path, mask_path):
        return images[image_path], masks[mask_path]
    return load


def test_dataset_from_files_checks_each_example():
    good = (np.zeros((3, 4, 3), np.uint8), np.zeros((3, 4), np.int32))
    wrong_size = np.zeros((3, 5), np.int32)
    bad_class = np.full((3, 4), 7, np.int32)
    images = {"a.png": good[0], "b.png": good[0], "c.png": good[0]}
    masks = {"a_m.png": good[1], "b_m.png": wrong_size, "c_m.png": bad_class}
    load = _loader(images, masks)
    data = from_files([("a.png", "a_m.png"), ("b.png", "b_m.png")], load, name="t",
                      split="train", class_names=("x", "y"))
    assert data.num_examples == 2 and data.files[1] == ("b.png", "b_m.png")
    iterate_expecting_error(data, "b_m.png")
    ds = dataset_from_files([("c.png", "c_m.png")], load, num_classes=2)
    with pytest.raises(Exception, match=r"c_m\.png.*\[7\]"):
        list(ds)
    ok = dataset_from_files([("a.png", "a_m.png")], load, num_classes=2)
    assert len(list(ok)) == 1


def test_from_files_validate_catches_size_mismatch_at_listing(tmp_path):
    image = save_image(tmp_path / "i.png", np.zeros((4, 5, 3), np.uint8))
    mask = save_image(tmp_path / "m.png", np.zeros((5, 5), np.uint8))
    with raises_naming(mask, ValueError):
        from_files([(image, mask)], lambda i, m: None, name="t", split="",
                   class_names=("a", "b"), validate=True)


def test_segmentation_data_checks_its_fields():
    import tensorflow as tf
    dataset = tf.data.Dataset.range(1)
    with pytest.raises(ValueError, match="class_names"):
        SegmentationData(dataset=dataset, num_classes=3, class_names=("a",),
                         num_examples=1, name="t")
    with pytest.raises(ValueError, match="ignore_label"):
        SegmentationData(dataset=dataset, num_classes=3, class_names=("a", "b", "c"),
                         num_examples=1, name="t", ignore_label=2)
    data = SegmentationData(dataset=dataset, num_classes=2, class_names=["a", "b"],
                            num_examples=1, name="t")
    assert data.class_names == ("a", "b") and data.ignore_label == 255
    with pytest.raises(Exception):
        data.num_classes = 3  # frozen
