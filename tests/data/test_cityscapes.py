"""Cityscapes reader: folder layout, labelIds -> trainIds, TFDS path errors."""

import numpy as np
import pytest

from keras_sard.data.cityscapes import (CLASS_NAMES, TRAIN_ID_TABLE, label_ids_to_train_ids,
                                        load_cityscapes, train_ids_tf)

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image

# The official trainIds of the 19 evaluated classes, by labelId (labels.py).
OFFICIAL = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
            24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def expected_train_ids(label_ids):
    out = np.full(label_ids.shape, 255, np.int32)
    for label_id, train_id in OFFICIAL.items():
        out[label_ids == label_id] = train_id
    return out


@pytest.fixture
def cityscapes_dir(tmp_path, rng):
    label_ids = np.arange(34, dtype=np.uint8)
    label_ids = np.concatenate([label_ids, label_ids[:2]]).reshape(4, 9)
    frames = [("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313"),
              ("bochum", "bochum_000000_001097")]
    for city, frame in frames:
        save_image(tmp_path / "leftImg8bit" / "train" / city / f"{frame}_leftImg8bit.png",
                   random_rgb(rng, 4, 9))
        save_image(tmp_path / "gtFine" / "train" / city / f"{frame}_gtFine_labelIds.png",
                   label_ids)
        # The other gtFine files must be left alone.
        save_image(tmp_path / "gtFine" / "train" / city / f"{frame}_gtFine_color.png",
                   random_rgb(rng, 4, 9))
        save_image(tmp_path / "gtFine" / "train" / city / f"{frame}_gtFine_instanceIds.png",
                   np.zeros((4, 9), np.uint16))
    return tmp_path, label_ids


def test_official_table():
    assert len(CLASS_NAMES) == 19 and CLASS_NAMES[0] == "road" and CLASS_NAMES[-1] == "bicycle"
    np.testing.assert_array_equal(TRAIN_ID_TABLE, expected_train_ids(np.arange(34)))
    label_ids = np.arange(34).reshape(2, 17)
    np.testing.assert_array_equal(label_ids_to_train_ids(label_ids),
                                  expected_train_ids(label_ids))
    np.testing.assert_array_equal(train_ids_tf(label_ids.astype(np.uint8)).numpy(),
                                  expected_train_ids(label_ids))
    with pytest.raises(ValueError, match=r"x\.png.*\[34\]"):
        label_ids_to_train_ids(np.array([[34]]), "x.png")


def test_folder_reader(cityscapes_dir):
    root, label_ids = cityscapes_dir
    data = load_cityscapes(root, "train", validate=True)
    assert (data.num_examples, data.num_classes, data.ignore_label) == (3, 19, 255)
    assert "bochum" in data.files[2][0] and data.files[2][1].endswith("_gtFine_labelIds.png")
    for image, mask in read_all(data):
        assert image.shape == (4, 9, 3)
        np.testing.assert_array_equal(mask, expected_train_ids(label_ids))


def test_folder_errors(cityscapes_dir, rng):
    root, label_ids = cityscapes_dir
    save_image(root / "leftImg8bit" / "train" / "ulm" / "ulm_000000_000001_leftImg8bit.png",
               random_rgb(rng, 4, 9))
    with raises_naming("ulm_000000_000001_leftImg8bit.png", FileNotFoundError):
        load_cityscapes(root, "train")
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/val"):
        load_cityscapes(root, "val")
    (root / "leftImg8bit" / "val").mkdir()
    with pytest.raises(FileNotFoundError, match=r"gtFine/val"):
        load_cityscapes(root, "val")
    with pytest.raises(ValueError, match="source"):
        load_cityscapes(root, source="zip")


def test_corrupt_label_file_is_named(cityscapes_dir):
    root, _ = cityscapes_dir
    path = root / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    path.write_bytes(b"broken")
    iterate_expecting_error(load_cityscapes(root, "train"), path)


def test_tfds_not_prepared_explains_the_manual_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cityscapes(tmp_path, "val", source="tfds")
    message = str(info.value)
    assert "cityscapes/semantic_segmentation" in message
    assert "leftImg8bit_trainvaltest.zip" in message and "gtFine_trainvaltest.zip" in message
    assert str(tmp_path / "downloads" / "manual") in message
