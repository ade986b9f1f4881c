"""Unlabelled images: the folder reader, dropped labels, and mixed training batches."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_sard.data import (drop_labels, load_folder, load_unlabelled, make_pipeline,
                             make_synthetic, split_labelled)
from keras_sard.data.decode import image_channels, read_image
from keras_sard.data.errors import BadDataError, MissingDataError
from keras_sard.data.pipeline import IMAGENET_MEAN, IMAGENET_STD, unlabelled_count

from ._fixtures import random_rgb, raises_naming, read_all, save_image, write_corrupt


def _denormalised(images):
    return np.rint((np.asarray(images) * IMAGENET_STD + IMAGENET_MEAN) * 255).astype(np.int64)


def _labelled_folder(root, rng, count=4, size=(16, 16), grey=False):
    for i in range(count):
        image = rng.integers(0, 256, size, dtype=np.uint8) if grey else random_rgb(rng, *size)
        save_image(root / "images" / f"l{i}.png", image)
        save_image(root / "masks" / f"l{i}.png", rng.integers(0, 2, size, dtype=np.uint8))
    return load_folder(root, num_classes=2, class_names=("bg", "fg"))


# ----------------------------------------------------------------- the reader


def test_folder_of_png_jpeg_tiff_reads_as_rgb_with_all_ignore_masks(tmp_path, rng):
    folder = tmp_path / "unlabelled"
    save_image(folder / "a.png", random_rgb(rng, 6, 8))
    save_image(folder / "b.jpg", random_rgb(rng, 6, 8), quality=95)
    save_image(folder / "c.tif", random_rgb(rng, 7, 5))
    save_image(folder / "d.tiff", rng.integers(0, 4000, (6, 8), dtype=np.uint16))
    (folder / "notes.txt").write_text("not an image")
    data = load_unlabelled(folder)
    names = [p.split("/")[-1] for p, _ in data.files]
    assert names == ["a.png", "b.jpg", "c.tif", "d.tiff"] and data.num_examples == 4
    assert data.ignore_label == 255 and data.num_classes == 1
    for (image, mask), (path, _) in zip(read_all(data), data.files):
        np.testing.assert_array_equal(image, read_image(path))
        assert mask.shape == image.shape[:2] and mask.dtype == np.int32
        assert (mask == 255).all()


def test_like_copies_classes_and_ignore_label(tmp_path, rng):
    labelled = _labelled_folder(tmp_path / "labelled", rng)
    save_image(tmp_path / "u" / "x.png", random_rgb(rng, 16, 16))
    data = load_unlabelled(tmp_path / "u", like=labelled, name="extra")
    assert data.class_names == ("bg", "fg") and data.name == "extra"
    odd = make_synthetic("nuclei", 2, (16, 16))
    odd = drop_labels(odd, ignore_label=7)
    data = load_unlabelled(tmp_path / "u", like=odd)
    assert data.ignore_label == 7 and (read_all(data)[0][1] == 7).all()


def test_recursive_and_excluded_suffixes(tmp_path, rng):
    save_image(tmp_path / "top.png", random_rgb(rng, 4, 4))
    save_image(tmp_path / "top_mask.png", random_rgb(rng, 4, 4))
    save_image(tmp_path / "sub" / "deep.jpg", random_rgb(rng, 4, 4))
    assert load_unlabelled(tmp_path).num_examples == 2
    assert load_unlabelled(tmp_path, exclude_suffixes=("_mask.png",)).num_examples == 1
    assert load_unlabelled(tmp_path, recursive=True).num_examples == 3


def test_missing_or_empty_folder_is_named(tmp_path):
    with raises_naming(tmp_path / "nowhere", FileNotFoundError):
        load_unlabelled(tmp_path / "nowhere")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(MissingDataError, match=r"empty_folder: no image files ending in \["):
        load_unlabelled(empty)


def test_unreadable_file_is_named_before_training(tmp_path, rng):
    save_image(tmp_path / "good.png", random_rgb(rng, 4, 4))
    write_corrupt(tmp_path / "broken.png")
    with raises_naming(tmp_path / "broken.png", ValueError):
        load_unlabelled(tmp_path)
    # Without validation the file fails when read, still naming it.
    data = load_unlabelled(tmp_path, validate=False)
    with pytest.raises((tf.errors.OpError, ValueError), match="broken.png"):
        read_all(data)


def test_header_channels(tmp_path, rng):
    grey16 = save_image(tmp_path / "g.tif", rng.integers(0, 4000, (4, 4), dtype=np.uint16))
    rgba = save_image(tmp_path / "c.png", rng.integers(0, 256, (4, 4, 4), dtype=np.uint8))
    pages = tmp_path / "p.tif"
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (0, 9)]
    frames[0].save(pages, save_all=True, append_images=frames[1:])
    assert (image_channels(grey16), image_channels(rgba), image_channels(pages)) == (1, 3, 2)
    with raises_naming(write_corrupt(tmp_path / "bad.png"), ValueError):
        image_channels(tmp_path / "bad.png")


def test_channels_that_differ_from_the_labelled_set_are_named(tmp_path, rng):
    grey_set = _labelled_folder(tmp_path / "grey_labelled", rng, grey=True)
    colour = tmp_path / "colour"
    save_image(colour / "a.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    save_image(colour / "b.jpg", random_rgb(rng, 16, 16))
    with pytest.raises(BadDataError,
                       match=r"b\.jpg: unlabelled image .*is colour.*grey_labelled.*grey"):
        load_unlabelled(colour, like=grey_set)
    # Found again by make_pipeline when the unlabelled data was read without `like`.
    with pytest.raises(ValueError, match=r"b\.jpg"):
        make_pipeline(grey_set, 4, training=True, crop_size=16,
                      unlabelled=load_unlabelled(colour))
    # A colour file whose channels are equal is a grey image: accepted.
    stored_as_rgb = tmp_path / "grey_as_rgb"
    grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    save_image(stored_as_rgb / "c.png", np.stack([grey] * 3, axis=-1))
    assert load_unlabelled(stored_as_rgb, like=grey_set).num_examples == 1
    # Grey (16-bit TIFF) beside a colour labelled set.
    colour_set = _labelled_folder(tmp_path / "colour_labelled", rng)
    fluorescence = tmp_path / "fluorescence"
    save_image(fluorescence / "dapi.tif", rng.integers(0, 4000, (16, 16), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"dapi\.tif.*fluorescence.*is grey"):
        load_unlabelled(fluorescence, like=colour_set)


def test_drop_labels_keeps_images_and_files(tmp_path, rng):
    labelled = _labelled_folder(tmp_path, rng, count=3)
    dropped = drop_labels(labelled)
    assert dropped.files == labelled.files and dropped.num_examples == 3
    assert dropped.name == "folder_unlabelled"
    for (image, mask), (original, _) in zip(read_all(dropped), read_all(labelled)):
        np.testing.assert_array_equal(image, original)
        assert (mask == 255).all()
    with pytest.raises(ValueError, match="ignore_label=1"):
        drop_labels(labelled, ignore_label=1)
    with pytest.raises(TypeError, match="SegmentationData"):
        drop_labels(labelled.dataset)


def test_split_labelled_keeps_the_first_labels(tmp_path, rng):
    data = _labelled_folder(tmp_path, rng, count=5)
    labelled, rest = split_labelled(data, 2)
    assert (labelled.num_examples, rest.num_examples) == (2, 3)
    assert labelled.files == data.files[:2] and rest.files == data.files[2:]
    everything = read_all(data)
    for (image, mask), (original, original_mask) in zip(read_all(labelled), everything[:2]):
        np.testing.assert_array_equal(image, original)
        np.testing.assert_array_equal(mask, original_mask)
    for (image, mask), (original, _) in zip(read_all(rest), everything[2:]):
        np.testing.assert_array_equal(image, original)
        assert (mask == 255).all()
    for bad in (0, 5, 2.0, True):
        with pytest.raises(ValueError, match=r"num_labelled must be an integer in \[1, 5\)"):
            split_labelled(data, bad)


# --------------------------------------------------------------- mixed batches


def _plain(**kwargs):
    """Augmentation off, so images can be traced back to their source."""
    return dict(scale_range=None, flip=False, rotation=None, color_jitter=False, **kwargs)


def test_mixed_batches_hold_the_ratio_with_all_ignore_unlabelled_masks():
    labelled = make_synthetic("nuclei", 10, (24, 24))
    unlabelled = make_synthetic("fragments", 5, (24, 24), split="val")
    batches = list(make_pipeline(labelled, 5, training=True, crop_size=16, seed=3,
                                 unlabelled=unlabelled, unlabelled_ratio=0.5))
    assert len(batches) == 5  # 10 labelled examples, 2 per batch: one labelled pass
    for images, masks in batches:
        assert images.shape == (5, 16, 16, 3) and masks.shape == (5, 16, 16)
        masks = masks.numpy()
        assert (masks[2:] == 255).all()  # round(0.5 * 5) = 3 unlabelled images, last
        assert (masks[:2] != 255).mean() > 0.5


def test_labelled_part_is_the_labelled_pipeline_and_seeded():
    labelled = make_synthetic("nuclei", 8, (24, 24))
    unlabelled = make_synthetic("fragments", 6, (24, 24), split="val")
    common = dict(training=True, crop_size=16, seed=7)
    mixed = make_pipeline(labelled, 4, unlabelled=unlabelled, unlabelled_ratio=0.25, **common)
    alone = make_pipeline(labelled, 3, **common)
    again = make_pipeline(labelled, 4, unlabelled=unlabelled, unlabelled_ratio=0.25, **common)
    other = make_pipeline(labelled, 4, unlabelled=unlabelled, unlabelled_ratio=0.25,
                          training=True, crop_size=16, seed=8)
    for epoch in range(2):  # each pass draws new shuffles and augmentations, alike
        mixed_batches = [(x.numpy(), y.numpy()) for x, y in mixed]
        alone_batches = [(x.numpy(), y.numpy()) for x, y in alone]
        again_batches = [(x.numpy(), y.numpy()) for x, y in again]
        assert len(mixed_batches) == len(alone_batches) == 2
        for (x, y), (xa, ya), (xr, yr) in zip(mixed_batches, alone_batches, again_batches):
            np.testing.assert_array_equal(x[:3], xa)
            np.testing.assert_array_equal(y[:3], ya)
            np.testing.assert_array_equal(x, xr)
            np.testing.assert_array_equal(y, yr)
        if epoch == 0:
            first_unlabelled = mixed_batches[0][0][3]
    assert not np.array_equal(mixed_batches[0][0][3], first_unlabelled)
    assert not np.array_equal(next(iter(other))[0].numpy()[3], first_unlabelled)


def test_unlabelled_images_come_from_the_unlabelled_set_and_repeat():
    labelled = make_synthetic("nuclei", 8, (16, 16))
    unlabelled = make_synthetic("fragments", 3, (16, 16), split="val")
    sources = [image.astype(np.int64) for image, _ in read_all(unlabelled)]
    batches = list(make_pipeline(labelled, 4, training=True, seed=0, unlabelled=unlabelled,
                                 **_plain()))
    assert len(batches) == 4  # 8 examples seen by 3 unlabelled images, cycled
    seen = []
    for images, _ in batches:
        for image in _denormalised(images.numpy()[2:]):
            matches = [i for i, s in enumerate(sources) if np.abs(image - s).max() <= 1]
            assert len(matches) == 1
            seen.append(matches[0])
    assert sorted(set(seen)) == [0, 1, 2]
    assert sorted(seen[:6]) == [0, 0, 1, 1, 2, 2]  # every image once per pass


def test_unlabelled_images_get_the_same_augmentation():
    labelled = make_synthetic("nuclei", 8, (32, 32))
    unlabelled = make_synthetic("fragments", 8, (32, 32), split="val")
    black = (0.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    images, masks = next(iter(make_pipeline(
        labelled, 8, training=True, seed=0, unlabelled=unlabelled, scale_range=None,
        flip=False, rotation=15.0, color_jitter=False)))
    corners = np.isclose(images.numpy()[:, 0, 0], black, atol=1e-5).all(-1)
    assert corners[:4].sum() >= 3 and corners[4:].sum() >= 3  # rotated, both parts
    assert (masks.numpy()[4:] == 255).all()


def test_parts_of_different_sizes_are_padded_with_ignore():
    labelled = make_synthetic("nuclei", 4, (16, 20))
    unlabelled = make_synthetic("fragments", 4, (24, 12), split="val")
    images, masks = next(iter(make_pipeline(labelled, 4, training=True, seed=0,
                                            unlabelled=unlabelled, **_plain())))
    assert images.shape == (4, 24, 20, 3)
    masks = masks.numpy()
    assert (masks[:2, 16:] == 255).all() and (masks[:2, :16] != 255).mean() > 0.5
    assert (masks[2:] == 255).all()
    np.testing.assert_array_equal(images.numpy()[2:, :, 12:], 0.0)
    np.testing.assert_array_equal(images.numpy()[:2, 16:], 0.0)


def test_mixed_batches_repeat_for_steps_per_epoch():
    labelled = make_synthetic("nuclei", 3, (16, 16))
    unlabelled = make_synthetic("fragments", 2, (16, 16), split="val")
    stream = make_pipeline(labelled, 4, training=True, crop_size=16, seed=0, repeat=True,
                           unlabelled=unlabelled, unlabelled_ratio=0.5)
    shapes = [tuple(m.shape) for _, m in stream.take(5)]
    assert shapes == [(4, 16, 16)] * 5


def test_unlabelled_count_and_bad_mixes():
    assert [unlabelled_count(8, r) for r in (0.125, 0.5, 0.75, 0.9)] == [1, 4, 6, 7]
    labelled = make_synthetic("nuclei", 4, (16, 16))
    unlabelled = make_synthetic("fragments", 2, (16, 16), split="val")
    for ratio in (0.0, 1.0, -0.5, True, "half", 0.05):
        with pytest.raises(ValueError, match="unlabelled_ratio"):
            make_pipeline(labelled, 4, training=True, unlabelled=unlabelled,
                          unlabelled_ratio=ratio)
    with pytest.raises(ValueError, match="training"):
        make_pipeline(labelled, 4, training=False, unlabelled=unlabelled)
    with pytest.raises(TypeError, match="unlabelled must be a SegmentationData"):
        make_pipeline(labelled, 4, training=True, unlabelled=unlabelled.dataset)
    with pytest.raises(ValueError, match=r"3 labelled images.*unlabelled_ratio=0.25"):
        make_pipeline(make_synthetic("nuclei", 2, (16, 16)), 4, training=True,
                      unlabelled=unlabelled, unlabelled_ratio=0.25)
