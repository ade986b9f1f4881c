"""ADE20K reader: ADEChallengeData2016 folders, 0 -> ignore, 1..150 -> 0..149."""

import numpy as np
import pytest

from keras_sard.data.ade20k import CLASS_NAMES, load_ade20k

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image


@pytest.fixture
def ade_dir(tmp_path, rng):
    root = tmp_path / "ADEChallengeData2016"
    raw = np.arange(151, dtype=np.uint8)
    raw = np.concatenate([raw, raw[:9]]).reshape(8, 20)
    for split, prefix in (("training", "ADE_train"), ("validation", "ADE_val")):
        for index in (1, 2):
            save_image(root / "images" / split / f"{prefix}_{index:08d}.jpg",
                       random_rgb(rng, 8, 20))
            save_image(root / "annotations" / split / f"{prefix}_{index:08d}.png", raw)
    return tmp_path, raw


def test_class_names():
    assert len(CLASS_NAMES) == 150 and len(set(CLASS_NAMES)) == 150
    assert CLASS_NAMES[:3] == ("wall", "building", "sky") and CLASS_NAMES[-1] == "flag"


def test_labels_shift_and_zero_is_ignored(ade_dir):
    root, raw = ade_dir
    for split in ("train", "val"):
        data = load_ade20k(root, split, validate=True)
        assert (data.num_examples, data.num_classes) == (2, 150)
        expected = np.where(raw == 0, 255, raw.astype(np.int32) - 1)
        for image, mask in read_all(data):
            assert image.shape == (8, 20, 3)
            np.testing.assert_array_equal(mask, expected)
    assert load_ade20k(root / "ADEChallengeData2016", "val").num_examples == 2


def test_errors(ade_dir, rng):
    root, raw = ade_dir
    folder = root / "ADEChallengeData2016"
    bad = save_image(folder / "annotations" / "validation" / "ADE_val_00000002.png",
                     np.full((8, 20), 151, np.uint8))
    iterate_expecting_error(load_ade20k(root, "val"), bad)
    save_image(folder / "images" / "training" / "ADE_train_00000003.jpg", random_rgb(rng, 8, 20))
    with raises_naming("ADE_train_00000003.jpg", FileNotFoundError):
        load_ade20k(root, "train")
    with pytest.raises(ValueError, match="split"):
        load_ade20k(root, "test")
