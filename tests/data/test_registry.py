"""load_dataset / DATASET_INFO: every name resolves, missing data explains itself."""

import numpy as np
import pytest

from keras_sard.data import DATASET_INFO, load_dataset, resolve_dataset

from ._fixtures import random_rgb, read_all, save_image

NAMES = ("synthetic", "monuseg", "isaid", "cellbin", "loveda", "cityscapes", "ade20k",
         "rockfrag", "folder")


def test_every_dataset_has_info():
    assert set(NAMES) <= set(DATASET_INFO)
    for name in NAMES:
        info = DATASET_INFO[name]
        assert info.name == name and info.url and info.instructions
        assert len(info.crop_size) == 2 and info.splits
        assert info.title in info.describe()


def test_missing_data_dir_gives_download_instructions(tmp_path):
    for name in NAMES[1:]:
        with pytest.raises(FileNotFoundError) as info:
            load_dataset(name, tmp_path / "missing", "train")
        assert DATASET_INFO[name].url in str(info.value)
        with pytest.raises(FileNotFoundError, match="no data_dir"):
            load_dataset(name, None)


def test_names_resolve_through_one_alias_table():
    for spelling, key in (("ADE20K-150", "ade20k"), ("ade", "ade20k"), ("CellBinDB", "cellbin"),
                          ("Love_DA", "loveda"), ("synthetic", "synthetic")):
        assert resolve_dataset(spelling) == key
    with pytest.raises(ValueError, match="Unknown dataset 'pascal'; known: \\['ade20k'"):
        resolve_dataset("pascal")
    assert DATASET_INFO["monuseg"].validation_split == "test"
    assert DATASET_INFO["loveda"].validation_split == "val"
    assert {info.stand_in for info in DATASET_INFO.values()} == {"nuclei", "fragments"}
    for info in DATASET_INFO.values():
        assert info.label and callable(info.load_reader())


def test_synthetic_and_unknown_names():
    data = load_dataset("synthetic", split="val", kind="fragments", num_examples=2,
                        image_size=(16, 16), num_classes=3)
    assert (data.num_examples, data.num_classes, data.split) == (2, 3, "val")
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_dataset("pascal", "/tmp")


def test_dispatch_to_readers(tmp_path, rng):
    for split, domain in (("Train", "Urban"),):
        save_image(tmp_path / "loveda" / split / domain / "images_png" / "1.png",
                   random_rgb(rng, 4, 4))
        save_image(tmp_path / "loveda" / split / domain / "masks_png" / "1.png",
                   np.ones((4, 4), np.uint8))
    data = load_dataset("LoveDA", tmp_path / "loveda", "train", domains="urban")
    assert data.name == "loveda" and (read_all(data)[0][1] == 0).all()
    save_image(tmp_path / "own" / "images" / "a.png", random_rgb(rng, 4, 4))
    save_image(tmp_path / "own" / "masks" / "a.png", np.full((4, 4), 2, np.uint8))
    data = load_dataset("folder", tmp_path / "own", None, num_classes=3)
    assert data.num_classes == 3 and (read_all(data)[0][1] == 2).all()
