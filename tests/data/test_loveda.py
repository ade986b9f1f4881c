"""LoveDA reader: Train|Val/Urban|Rural folders, 0 -> ignore, 1..7 -> 0..6."""

import numpy as np
import pytest

from keras_sard.data.loveda import CLASS_NAMES, load_loveda

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image


@pytest.fixture
def loveda_dir(tmp_path, rng):
    raw = np.arange(8, dtype=np.uint8).repeat(3).reshape(4, 6)  # every raw value 0..7
    for split in ("Train", "Val"):
        for domain, name in (("Urban", "1366"), ("Rural", "0")):
            save_image(tmp_path / split / domain / "images_png" / f"{name}.png",
                       random_rgb(rng, 4, 6))
            save_image(tmp_path / split / domain / "masks_png" / f"{name}.png", raw)
    return tmp_path, raw


def test_mask_values_and_domains(loveda_dir):
    root, raw = loveda_dir
    data = load_loveda(root, "train", validate=True)
    assert (data.num_examples, data.num_classes) == (2, 7)
    assert CLASS_NAMES == ("background", "building", "road", "water", "barren", "forest",
                           "agriculture")
    expected = np.where(raw == 0, 255, raw.astype(np.int32) - 1)
    for _, mask in read_all(data):
        np.testing.assert_array_equal(mask, expected)
    urban = load_loveda(root, "val", domains="urban")
    assert urban.num_examples == 1 and "Urban" in urban.files[0][0]
    rural = load_loveda(root, "val", domains=["Rural"])
    assert "Rural" in rural.files[0][1]


def test_errors_name_files_and_arguments(loveda_dir, rng):
    root, raw = loveda_dir
    bad = save_image(root / "Train" / "Urban" / "masks_png" / "1366.png", raw + 1)  # value 8
    iterate_expecting_error(load_loveda(root, "train", domains="urban"), bad)
    save_image(root / "Train" / "Rural" / "images_png" / "5.png", random_rgb(rng, 4, 6))
    with raises_naming("5.png", FileNotFoundError):
        load_loveda(root, "train", domains="rural")
    with pytest.raises(ValueError, match="domain"):
        load_loveda(root, "train", domains="suburban")
    with pytest.raises(ValueError, match="withheld"):
        load_loveda(root, "test")
    with raises_naming("images_png", FileNotFoundError):
        load_loveda(root / "Train", "train")
