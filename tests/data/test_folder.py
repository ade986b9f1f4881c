"""Generic images/ + masks/ reader (and RockFrag): layouts, value maps, palettes."""

import numpy as np
import pytest

from keras_sard.data.folder import load_folder, load_rockfrag

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image


def _write(root, names, masks, rng, image_ext=".jpg"):
    for name, mask in zip(names, masks):
        save_image(root / "images" / f"{name}{image_ext}", random_rgb(rng, *mask.shape[:2]))
        save_image(root / "masks" / f"{name}.png", mask)


def test_class_ids_directly_and_split_layouts(tmp_path, rng):
    ids = np.array([[0, 1, 2], [2, 255, 0]], np.uint8)
    _write(tmp_path, ["a", "b"], [ids, ids], rng)
    data = load_folder(tmp_path, num_classes=3, class_names=("x", "y", "z"), validate=True)
    assert (data.num_examples, data.num_classes, data.name) == (2, 3, "folder")
    for _, mask in read_all(data):
        np.testing.assert_array_equal(mask, ids.astype(np.int32))
    _write(tmp_path / "train", ["c"], [ids], rng)
    assert load_folder(tmp_path, "train", num_classes=3).num_examples == 1
    (tmp_path / "images" / "val").mkdir()
    (tmp_path / "masks" / "val").mkdir()
    save_image(tmp_path / "images" / "val" / "d.png", random_rgb(rng, 2, 3))
    save_image(tmp_path / "masks" / "val" / "d.png", ids)
    assert load_folder(tmp_path, "val", num_classes=3).num_examples == 1


def test_rockfrag_reads_a_0_255_mask_as_fragments(tmp_path, rng):
    # The commonest binary encoding: 255 is the fragment here, not the ignore label.
    raw = np.zeros((6, 5), np.uint8)
    raw[1:4, 2:4] = 255
    _write(tmp_path, ["a"], [raw], rng)
    mask = read_all(load_rockfrag(tmp_path))[0][1]
    np.testing.assert_array_equal(mask, (raw > 0).astype(np.int32))
    # An ignore region in a binary mask: value_map.
    kept = read_all(load_rockfrag(tmp_path, value_map={0: 0, 255: 255}))[0][1]
    np.testing.assert_array_equal(kept, raw)


def test_a_0_255_mask_read_as_class_ids_warns(tmp_path, rng):
    raw = np.zeros((6, 5), np.uint8)
    raw[1:4, 2:4] = 255
    _write(tmp_path, ["a"], [raw], rng)
    with pytest.warns(UserWarning, match=r"a\.png' holds only 0 and 255.*binarize=True"):
        data = load_folder(tmp_path, num_classes=2)
    np.testing.assert_array_equal(read_all(data)[0][1], raw)  # as asked: class ids
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_folder(tmp_path, num_classes=2, binarize=True)
        load_folder(tmp_path, num_classes=2, value_map={0: 0, 1: 1, 255: 255})
        raw[0, 0] = 1  # a class id beside the ignore label: nothing to warn about
        _write(tmp_path / "ids", ["a"], [raw], rng)
        load_folder(tmp_path / "ids", num_classes=2)


def test_value_map_palette_and_binarize(tmp_path, rng):
    raw = np.array([[0, 255, 128], [255, 0, 0]], np.uint8)
    _write(tmp_path, ["a"], [raw], rng)
    mapped = read_all(load_folder(tmp_path, num_classes=2, value_map={0: 0, 255: 1, 128: 255}))
    np.testing.assert_array_equal(mapped[0][1], [[0, 1, 255], [1, 0, 0]])
    with pytest.raises(Exception, match=r"a\.png.*\[128\]"):
        read_all(load_folder(tmp_path, num_classes=2, value_map={0: 0, 255: 1}))
    binary = read_all(load_rockfrag(tmp_path))[0][1]
    np.testing.assert_array_equal(binary, [[0, 1, 1], [1, 0, 0]])  # every non-zero value

    colours = np.array([[[0, 0, 0], [200, 10, 10]], [[10, 200, 10], [0, 0, 0]]], np.uint8)
    _write(tmp_path / "colour", ["p"], [colours], rng)
    palette = [(0, 0, 0), (200, 10, 10), (10, 200, 10)]
    data = load_folder(tmp_path / "colour", num_classes=3, palette=palette)
    np.testing.assert_array_equal(read_all(data)[0][1], [[0, 1], [2, 0]])
    assert data.palette == tuple(palette)
    data = load_folder(tmp_path / "colour", num_classes=3, palette=palette[:2])
    iterate_expecting_error(data, tmp_path / "colour" / "masks" / "p.png")


def test_rockfrag_defaults_and_errors(tmp_path, rng):
    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 1
    _write(tmp_path, ["r1"], [mask], rng, image_ext=".tif")
    data = load_rockfrag(tmp_path)
    assert data.class_names == ("background", "fragment") and data.name == "rockfrag"
    np.testing.assert_array_equal(read_all(data)[0][1], mask)
    save_image(tmp_path / "images" / "r2.png", random_rgb(rng, 4, 4))
    with raises_naming("r2.png", FileNotFoundError):
        load_rockfrag(tmp_path)
    save_image(tmp_path / "masks" / "r2.png", np.zeros((4, 5), np.uint8))
    iterate_expecting_error(load_rockfrag(tmp_path), "r2.png")
    with pytest.raises(FileNotFoundError, match="images"):
        load_rockfrag(tmp_path, "test")
    with pytest.raises(ValueError, match="at most one"):
        load_folder(tmp_path, num_classes=2, binarize=True, value_map={0: 0})
    ids = np.full((4, 4), 3, np.uint8)
    save_image(tmp_path / "masks" / "r2.png", ids)
    iterate_expecting_error(load_folder(tmp_path, num_classes=2), "r2.png")
