"""iSAID reader: devkit layout, palette colours -> classes, unknown colour named."""

import numpy as np
import pytest

from keras_sard.data.isaid import CLASS_NAMES, PALETTE, load_isaid

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image


def _write(folder, stem, labels, rng):
    """Image + colour mask (devkit palette) + instance-id file for a label map."""
    colours = np.array(PALETTE, np.uint8)
    save_image(folder / f"{stem}.png", random_rgb(rng, *labels.shape))
    save_image(folder / f"{stem}_instance_color_RGB.png", colours[labels])
    save_image(folder / f"{stem}_instance_id_RGB.png", np.zeros(labels.shape + (3,), np.uint8))


@pytest.fixture
def isaid_dir(tmp_path, rng):
    labels = [np.arange(16).repeat(2).reshape(4, 8),  # every class once (2 pixels each)
              np.zeros((4, 8), np.int64)]
    labels[1][1:3, 2:5] = 9  # small vehicles
    folder = tmp_path / "train" / "images"
    _write(folder, "P0002_0_0_800_800", labels[0], rng)
    _write(folder, "P0005_0_0_800_800", labels[1], rng)
    _write(tmp_path / "val" / "images", "P0003", labels[1], rng)
    return tmp_path, labels


def test_palette_is_the_devkit_table():
    assert len(PALETTE) == 16 and len(set(PALETTE)) == 16
    assert PALETTE[1] == (0, 0, 63) and CLASS_NAMES[1] == "ship"
    assert PALETTE[9] == (0, 0, 127) and CLASS_NAMES[9] == "small_vehicle"
    assert PALETTE[15] == (0, 100, 155) and CLASS_NAMES[15] == "harbor"


def test_colours_map_to_classes(isaid_dir):
    root, labels = isaid_dir
    data = load_isaid(root, "train", validate=True)
    assert (data.num_examples, data.num_classes, data.ignore_label) == (2, 16, 255)
    assert data.class_names[0] == "background" and data.palette == PALETTE
    examples = read_all(data)
    for (image, mask), expected in zip(examples, labels):
        assert image.shape == (4, 8, 3) and mask.dtype == np.int32
        np.testing.assert_array_equal(mask, expected)
    assert load_isaid(root, "val").num_examples == 1


def test_background_as_ignore(isaid_dir):
    root, labels = isaid_dir
    data = load_isaid(root, "train", background="ignore")
    assert data.num_classes == 15 and data.class_names[0] == "ship"
    mask = read_all(data)[0][1]
    expected = np.where(labels[0] == 0, 255, labels[0] - 1)
    np.testing.assert_array_equal(mask, expected)


def test_unknown_colour_is_named(isaid_dir, rng):
    root, labels = isaid_dir
    folder = root / "train" / "images"
    colours = np.array(PALETTE, np.uint8)[labels[1]]
    colours[0, 0] = (10, 20, 30)
    bad = save_image(folder / "P0005_0_0_800_800_instance_color_RGB.png", colours)
    with pytest.raises(Exception, match=r"P0005_0_0_800_800_instance_color_RGB\.png"):
        read_all(load_isaid(root, "train"))
    iterate_expecting_error(load_isaid(root, "train"), bad)


def test_missing_mask_size_mismatch_and_missing_folder(isaid_dir, rng):
    root, _ = isaid_dir
    folder = root / "train" / "images"
    save_image(folder / "P0009.png", random_rgb(rng, 4, 8))
    with raises_naming("P0009.png", FileNotFoundError):
        load_isaid(root, "train")
    (folder / "P0009.png").unlink()
    big = save_image(folder / "P0002_0_0_800_800_instance_color_RGB.png",
                     np.zeros((5, 8, 3), np.uint8))
    iterate_expecting_error(load_isaid(root, "train"), big)
    with raises_naming(big, ValueError):
        load_isaid(root, "train", validate=True)
    with pytest.raises(FileNotFoundError, match="val"):
        load_isaid(root / "train", "val")
    with pytest.raises(ValueError, match="withheld"):
        load_isaid(root, "test")
