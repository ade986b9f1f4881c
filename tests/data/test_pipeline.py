"""The input pipeline: shapes, determinism, aligned geometry, fills, normalisation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_sard.data.augment import ColorJitter, augment_pair, rotate_pair
from keras_sard.data.base import SegmentationData
from keras_sard.data.pipeline import IMAGENET_MEAN, IMAGENET_STD, make_pipeline, normalize
from keras_sard.data.synthetic import make_synthetic

# Four well separated colours; the colour of a pixel encodes its label.
COLOURS = np.array([[20, 20, 20], [230, 30, 30], [30, 230, 30], [30, 30, 230]], np.uint8)


def _block_data(num_examples=4, size=(48, 64), block=8, seed=0):
    """Images whose colour encodes a blocky random label mask."""
    rng = np.random.default_rng(seed)
    height, width = size
    masks = rng.integers(0, 4, (num_examples, height // block, width // block))
    masks = masks.repeat(block, axis=1).repeat(block, axis=2).astype(np.int32)
    images = COLOURS[masks]
    dataset = tf.data.Dataset.from_tensor_slices((images, masks))
    return SegmentationData(dataset=dataset, num_classes=4,
                            class_names=("a", "b", "c", "d"),
                            num_examples=num_examples, name="blocks"), images, masks


def _decode_labels(images):
    """Nearest COLOURS entry of each pixel of normalised float images."""
    pixels = np.asarray(images) * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
    pixels = pixels * 255.0
    dist = np.linalg.norm(pixels[..., None, :] - COLOURS[None, None, None], axis=-1)
    return dist.argmin(-1), dist.min(-1)


def _interior(mask):
    """Pixels whose 3x3 neighbourhood holds one label (and no ignore)."""
    padded = np.pad(mask, 1, mode="edge")
    same = np.ones(mask.shape, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            same &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]] == mask
    return same & (mask != 255)


def test_training_batches_shapes_and_dtypes():
    data = make_synthetic("nuclei", num_examples=5, image_size=(40, 40))
    batches = make_pipeline(data, batch_size=2, training=True, crop_size=(32, 24), seed=1)
    seen = list(batches)
    assert len(seen) == 2  # drop_remainder in training
    images, masks = seen[0]
    assert images.shape == (2, 32, 24, 3) and images.dtype == tf.float32
    assert masks.shape == (2, 32, 24) and masks.dtype == tf.int32
    values = set(np.unique(np.concatenate([m.numpy().ravel() for _, m in seen])).tolist())
    assert values <= {0, 1, 255}


def test_eval_keeps_everything_and_pads_to_multiple():
    data = make_synthetic("fragments", num_examples=3, image_size=(40, 50))
    plain = list(make_pipeline(data, batch_size=2, training=False))
    assert [tuple(m.shape) for _, m in plain] == [(2, 40, 50), (1, 40, 50)]
    padded = list(make_pipeline(data, batch_size=3, training=False, pad_to_multiple=32))
    images, masks = padded[0]
    assert images.shape == (3, 64, 64, 3) and masks.shape == (3, 64, 64)
    masks, images = masks.numpy(), images.numpy()
    assert (masks[:, 40:] == 255).all() and (masks[:, :, 50:] == 255).all()
    assert (masks[:, :40, :50] != 255).all()
    black = (0.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(images[:, 50, 60], np.broadcast_to(black, (3, 3)), atol=1e-6)
    resized = next(iter(make_pipeline(data, batch_size=1, training=False, eval_size=(32, 16))))
    assert resized[0].shape == (1, 32, 16, 3) and resized[1].shape == (1, 32, 16)


def test_normalisation_values():
    data, images, masks = _block_data(num_examples=2)
    batch_images, batch_masks = next(iter(make_pipeline(data, batch_size=2, training=False)))
    expected = (images / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(batch_images.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(batch_masks.numpy(), masks)
    custom = next(iter(make_pipeline(data, batch_size=2, training=False,
                                     mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))))[0]
    np.testing.assert_allclose(custom.numpy(), images / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_allclose(normalize(tf.constant(images)).numpy(), expected, atol=1e-5)


def test_same_seed_same_batches_new_epoch_new_draws():
    data = make_synthetic("fragments", num_examples=6, image_size=(32, 32))
    first = make_pipeline(data, batch_size=3, training=True, crop_size=24, seed=5)
    second = make_pipeline(data, batch_size=3, training=True, crop_size=24, seed=5)
    other = make_pipeline(data, batch_size=3, training=True, crop_size=24, seed=6)
    epoch_a = [(x.numpy(), y.numpy()) for x, y in first]
    epoch_b = [(x.numpy(), y.numpy()) for x, y in second]
    for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(next(iter(other))[0].numpy(), epoch_a[0][0])
    epoch_a2 = [x.numpy() for x, _ in first]
    assert not np.array_equal(epoch_a2[0], epoch_a[0][0])


def test_full_augmentation_keeps_image_and_mask_aligned():
    data, _, _ = _block_data(num_examples=8)
    batches = make_pipeline(data, batch_size=8, training=True, crop_size=(40, 40), seed=3,
                            color_jitter=False)
    images, masks = (t.numpy() for t in next(iter(batches)))
    decoded, _ = _decode_labels(images)
    interior = np.stack([_interior(m) for m in masks])
    assert interior.sum() > 2000
    agreement = (decoded[interior] == masks[interior]).mean()
    assert agreement > 0.99, agreement
    assert (masks == 255).any()  # rotation / padding left ignore pixels


def test_flip_moves_image_and_mask_together():
    data, images, masks = _block_data(num_examples=1)
    flipped = 0
    for seed in range(6):
        image, mask = next(iter(make_pipeline(
            data, batch_size=1, training=True, seed=seed, scale_range=None, rotation=None,
            color_jitter=False)))
        image = np.rint((image.numpy()[0] * IMAGENET_STD + IMAGENET_MEAN) * 255)
        mask = mask.numpy()[0]
        if np.array_equal(mask, masks[0]):
            np.testing.assert_array_equal(image, images[0])
        else:
            flipped += 1
            np.testing.assert_array_equal(mask, masks[0][:, ::-1])
            np.testing.assert_array_equal(image, images[0][:, ::-1])
    assert 0 < flipped < 6  # both outcomes were checked


def test_rotation_fills_mask_with_ignore_and_image_with_zero():
    image = tf.ones((33, 33, 3))
    mask = tf.zeros((33, 33), tf.int32)
    rotated_image, rotated_mask = rotate_pair(image, mask, tf.constant(math.radians(15.0)))
    rotated_image, rotated_mask = rotated_image.numpy(), rotated_mask.numpy()
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert rotated_mask[corner] == 255
        np.testing.assert_allclose(rotated_image[corner], 0.0)
    assert rotated_mask[16, 16] == 0 and np.allclose(rotated_image[16, 16], 1.0)
    assert set(np.unique(rotated_mask).tolist()) == {0, 255}
    # Area outside the rotated square: 2 * tan(15 deg) / ... about 11% of pixels.
    outside = (rotated_mask == 255).mean()
    assert 0.05 < outside < 0.2, outside
    # A custom ignore label is used as the fill.
    _, custom = rotate_pair(image, mask, tf.constant(0.3), ignore_label=99)
    assert custom.numpy()[0, 0] == 99


def test_rotation_in_pipeline_marks_outside_as_ignore():
    data, _, _ = _block_data(num_examples=8)
    images, masks = next(iter(make_pipeline(
        data, batch_size=8, training=True, seed=0, scale_range=None, flip=False,
        rotation=15.0, color_jitter=False)))
    images, masks = images.numpy(), masks.numpy()
    ignored = masks == 255
    assert ignored.any(axis=(1, 2)).sum() >= 6  # nearly every angle leaves corners
    black = (0.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    corners = ignored[:, 0, 0]
    np.testing.assert_allclose(images[corners, 0, 0], np.broadcast_to(black, (corners.sum(), 3)),
                               atol=1e-5)


def test_crop_pads_small_images_with_ignore():
    data, _, _ = _block_data(num_examples=2, size=(16, 16))
    images, masks = next(iter(make_pipeline(
        data, batch_size=2, training=True, crop_size=(24, 32), seed=0, scale_range=None,
        flip=False, rotation=None, color_jitter=False)))
    masks = masks.numpy()
    assert masks.shape == (2, 24, 32)
    assert (masks[:, 16:] == 255).all() and (masks[:, :, 16:] == 255).all()
    assert (masks[:, :16, :16] != 255).all()


def test_scale_changes_size_and_colour_jitter_leaves_mask():
    image = tf.fill((20, 30, 3), 0.5)
    mask = tf.ones((20, 30), tf.int32)
    sizes = set()
    for seed in range(6):
        out_image, out_mask = augment_pair(image, mask, tf.constant([seed, 0]), flip=False,
                                           rotation=None, color_jitter=None)
        assert out_image.shape[:2] == out_mask.shape
        assert 10 <= out_mask.shape[0] <= 40 and 15 <= out_mask.shape[1] <= 60
        sizes.add(tuple(out_mask.shape))
    assert len(sizes) > 1
    jittered, same_mask = augment_pair(image, mask, tf.constant([1, 2]), scale_range=None,
                                       flip=False, rotation=None,
                                       color_jitter=ColorJitter(0.3, 0.3, 0.3))
    assert not np.allclose(jittered.numpy(), 0.5)
    assert jittered.numpy().min() >= 0.0 and jittered.numpy().max() <= 1.0
    np.testing.assert_array_equal(same_mask.numpy(), mask.numpy())


def test_bad_arguments_are_named():
    data = make_synthetic("nuclei", num_examples=2, image_size=(16, 16))
    with pytest.raises(ValueError, match="batch_size"):
        make_pipeline(data, batch_size=4, training=True, crop_size=16)
    with pytest.raises(ValueError, match="crop_size"):
        make_pipeline(data, batch_size=1, training=False, crop_size=16)
    with pytest.raises(ValueError, match="pad_to_multiple"):
        make_pipeline(data, batch_size=1, training=True, pad_to_multiple=32)
    with pytest.raises(ValueError, match="std"):
        make_pipeline(data, batch_size=1, training=False, std=(1.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="SegmentationData"):
        make_pipeline(data.dataset, batch_size=1, training=False)
    with pytest.raises(ValueError, match="ColorJitter.brightness"):
        ColorJitter(brightness=1.5)
    for batch_size, shuffle_buffer, name in ((1.5, 8, "batch_size"), (True, 8, "batch_size"), (1, 0, "shuffle_buffer")):
        with pytest.raises(ValueError, match=f"{name} must be an integer"):
            make_pipeline(data, batch_size=batch_size, training=False, shuffle_buffer=shuffle_buffer)


def test_pipeline_feeds_keras_fit_on_this_backend():
    import keras

    data = make_synthetic("fragments", num_examples=4, image_size=(24, 24))
    batches = make_pipeline(data, batch_size=2, training=True, crop_size=16, seed=0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 1)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255))
    history = model.fit(batches, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
