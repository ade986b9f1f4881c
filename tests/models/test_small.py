"""The small CPU segmenter: level strides and channels, logits, sizes, saving."""

import keras
import numpy as np
import pytest

from keras_sard.models import build_small_segmenter, level_names


def test_levels_strides_channels_and_logits():
    widths = (8, 16, 16, 32)
    model = build_small_segmenter(num_classes=5, image_size=(64, 96), widths=widths, decoder_channels=16, name="net")
    assert level_names("net") == tuple(f"net_level_{i}" for i in range(1, 5))
    for i, (name, channels) in enumerate(zip(level_names("net"), widths)):
        stride = 4 * 2**i
        assert model.get_layer(name).output.shape[1:] == (64 // stride, 96 // stride, channels)
    x = np.random.default_rng(0).random((2, 64, 96, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x))
    assert logits.shape == (2, 64, 96, 5)
    assert np.all(np.isfinite(logits))


def test_any_size_when_image_size_is_none():
    model = build_small_segmenter(num_classes=2, widths=(8, 8, 16, 16), decoder_channels=16, name="free")
    for size in ((32, 32), (96, 64)):
        out = model(np.zeros((1, *size, 3), "float32"))
        assert tuple(out.shape) == (1, *size, 2)


@pytest.mark.parametrize("image_size", [48, (64, 40), (33, 64)])
def test_sizes_not_divisible_by_32_are_rejected(image_size):
    with pytest.raises(ValueError, match="image_size"):
        build_small_segmenter(num_classes=2, image_size=image_size)


def test_bad_widths_are_rejected():
    with pytest.raises(ValueError, match="widths"):
        build_small_segmenter(num_classes=2, image_size=32, widths=(8, 16, 32))


def test_keras_round_trip(tmp_path):
    model = build_small_segmenter(num_classes=3, image_size=32, widths=(8, 8, 16, 16), decoder_channels=16, name="rt")
    x = np.random.default_rng(1).random((1, 32, 32, 3)).astype("float32")
    path = tmp_path / "small.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )
