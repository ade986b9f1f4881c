"""keras_sard.data.validate: every file of a dataset checked from its header
before training, each problem naming its file; keras_sard.data.errors: the
error type, and finding it again inside the errors tf.data raises."""

import copy
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from keras_sard.data import load_dataset, load_folder
from keras_sard.data.errors import (BadDataError, DataError, MissingDataError,
                                    data_error_message)
from keras_sard.data.validate import find_problems, validate_dataset, validate_files

from ._fixtures import random_rgb, save_image, write_corrupt


def _folder(root, count=3, size=(8, 10), rng=None):
    rng = rng or np.random.default_rng(0)
    pairs = []
    for index in range(count):
        image = save_image(root / "images" / f"{index}.jpg", random_rgb(rng, *size))
        mask = save_image(root / "masks" / f"{index}.png", np.zeros(size, np.uint8))
        pairs.append((str(image), str(mask)))
    return pairs


def test_a_sound_dataset_passes_and_is_counted(tmp_path):
    pairs = _folder(tmp_path)
    assert validate_files(pairs) == 3 and find_problems(pairs) == []
    assert validate_dataset(load_folder(tmp_path, num_classes=2)) == 3
    assert validate_dataset(load_dataset("synthetic", num_examples=2)) == 0  # no files


def test_a_corrupt_image_is_named(tmp_path):
    pairs = _folder(tmp_path)
    write_corrupt(pairs[1][0])
    with pytest.raises(BadDataError) as info:
        validate_files(pairs)
    assert info.value.path == pairs[1][0] and isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{pairs[1][0]}: cannot be read as an image")


def test_a_mask_of_another_size_is_named_with_both_sizes(tmp_path):
    pairs = _folder(tmp_path)
    save_image(pairs[2][1], np.zeros((8, 9), np.uint8))
    with pytest.raises(BadDataError) as info:
        validate_files(pairs)
    assert str(info.value) == (f"{pairs[2][1]}: mask is 8x9 (HxW) but its image "
                               f"'{pairs[2][0]}' is 8x10; they must match.")


def test_missing_and_empty_files(tmp_path):
    pairs = _folder(tmp_path)
    os.remove(pairs[0][0])
    with pytest.raises(MissingDataError) as info:
        validate_files(pairs[:1])
    assert info.value.path == pairs[0][0] and isinstance(info.value, FileNotFoundError)
    xml = tmp_path / "a.xml"
    image = pairs[1][0]
    with pytest.raises(MissingDataError, match="annotation file not found"):
        validate_files([(image, xml)])
    xml.write_text("")
    with pytest.raises(BadDataError, match=r"a\.xml: annotation file is empty"):
        validate_files([(image, xml)])
    xml.write_text("<Annotations/>")
    assert validate_files([(image, xml)]) == 1  # not an image: no size to compare


def test_every_pair_is_checked_and_the_count_reported(tmp_path):
    pairs = _folder(tmp_path, count=5)
    write_corrupt(pairs[1][0])
    save_image(pairs[3][1], np.zeros((2, 2), np.uint8))
    os.remove(pairs[4][1])
    problems = find_problems(pairs)
    assert [p.path for p in problems] == [pairs[1][0], pairs[3][1], pairs[4][1]]
    assert [type(p) for p in problems] == [BadDataError, BadDataError, MissingDataError]
    with pytest.raises(BadDataError) as info:
        validate_files(pairs)
    assert info.value.path == pairs[1][0]
    assert str(info.value).endswith(
        f"(3 of 5 pairs have problems; the next: {pairs[3][1]}, {pairs[4][1]})")


def test_empty_folder_and_missing_mask_fail_when_listing(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(MissingDataError) as info:
        load_folder(tmp_path, num_classes=2)
    assert info.value.path == str(tmp_path / "images")
    assert info.value.problem.startswith("no image files ending in")
    pairs = _folder(tmp_path)
    os.remove(pairs[1][1])
    with pytest.raises(MissingDataError) as info:
        load_folder(tmp_path, num_classes=2)
    assert info.value.path == pairs[1][0]
    assert info.value.problem.startswith(f"image without a mask: expected '{pairs[1][1]}'")


def test_readers_validate_with_the_same_check(tmp_path):
    pairs = _folder(tmp_path)
    save_image(pairs[0][1], np.zeros((3, 3), np.uint8))
    load_folder(tmp_path, num_classes=2)  # lazy: nothing read yet
    with pytest.raises(BadDataError, match="mask is 3x3"):
        load_folder(tmp_path, num_classes=2, validate=True)


def test_errors_inside_tf_data_carry_the_file(tmp_path):
    """Pixel data broken behind a sound header passes the header check, then
    fails when decoded, inside a tf.data map: the TensorFlow error carries the
    DataError, which data_error_message finds."""
    pairs = _folder(tmp_path, size=(64, 64))
    image = pairs[2][0]
    with open(image, "rb") as file:
        content = file.read()
    with open(image, "wb") as file:
        file.write(content[: len(content) // 2])  # truncated JPEG
    data = load_folder(tmp_path, num_classes=2, validate=True)
    with pytest.raises(tf.errors.OpError) as info:
        list(data.dataset.as_numpy_iterator())
    message = data_error_message(info.value)
    assert message.startswith(f"{image}: cannot be decoded as an image (OSError: ")
    assert "\n" not in message
    # A mask holding an unknown class id, found only when decoded.
    save_image(pairs[2][0], random_rgb(np.random.default_rng(1), 64, 64))
    save_image(pairs[1][1], np.full((64, 64), 7, np.uint8))
    with pytest.raises(tf.errors.OpError) as info:
        list(load_folder(tmp_path, num_classes=2).dataset.as_numpy_iterator())
    assert data_error_message(info.value).startswith(f"{pairs[1][1]}: mask holds class ids [7]")


def test_data_error_message_and_the_error_type():
    error = BadDataError("a b/c.png", "cannot be\n decoded")
    assert str(error) == "a b/c.png: cannot be decoded" and error.problem == "cannot be decoded"
    for clone in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert type(clone) is BadDataError and str(clone) == str(error)
    assert data_error_message(error) == "a b/c.png: cannot be decoded"
    try:
        try:
            raise MissingDataError("m.png", "file not found.")
        except DataError as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as wrapped:
        assert data_error_message(wrapped) == "m.png: file not found."
    assert data_error_message(ValueError("a plain error")) is None
