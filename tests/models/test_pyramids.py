"""Feature pyramids from keras-hub backbones: strides, channels, reuse of the
backbone's weights, size checks, saving."""

import keras
import numpy as np
import pytest

from keras_sard.models import build_backbone, build_pyramid, level_names, tiny_overrides
from keras_sard.models.backbones import BACKBONES

SIZE = 64  # the tiny Swin (window 2) needs the stride-32 stage to hold a window


def expected_channels(name):
    """Level channels from the configuration alone."""
    config = {**BACKBONES[name][1], **tiny_overrides(name)}
    if name.startswith("swin"):
        return [config["embed_dim"] * 2**i for i in range(4)]
    if name.startswith("resnet"):  # bottleneck blocks: 4x the stack's filters
        return [4 * f for f in config["stackwise_num_filters"]]
    return list(config["hidden_dims"])


def images(n=2, size=SIZE):
    return np.random.default_rng(0).random((n, size, size, 3)).astype("float32")


def check_levels(pyramid, outputs, backbone, name):
    """Strides 4..32, the configuration's channels, and the pyramid owns exactly
    the backbone's weights (+ Swin's three new level norms)."""
    assert len(outputs) == 4
    for i, (output, layer_name, channels) in enumerate(zip(outputs, level_names(pyramid.name), expected_channels(name))):
        stride = 4 * 2**i
        assert tuple(output.shape) == (2, SIZE // stride, SIZE // stride, channels)
        assert tuple(pyramid.get_layer(layer_name).output.shape) == (None, SIZE // stride, SIZE // stride, channels)
    extra = sum(2 * c for c in expected_channels(name)[:3]) if name.startswith("swin") else 0
    assert pyramid.count_params() == backbone.count_params() + extra


@pytest.mark.parametrize("name", ["resnet50", "mit_b0"])
def test_levels_have_strides_4_to_32_and_the_backbone_channels(name):
    backbone = build_backbone(name, SIZE, **tiny_overrides(name))
    pyramid = build_pyramid(backbone, name="net")
    check_levels(pyramid, pyramid(images()), backbone, name)


def test_swin_pyramid_reuses_the_keras_hub_backbone(tmp_path):
    import keras_hub

    backbone = keras_hub.models.SwinTransformerBackbone(image_shape=(SIZE, SIZE, 3), **tiny_overrides("swin_tiny"))
    pyramid = build_pyramid(backbone, name="swin")
    x = images()
    outputs = pyramid(x)
    check_levels(pyramid, outputs, backbone, "swin_tiny")
    tokens = keras.ops.convert_to_numpy(backbone(x))  # keras-hub: final norm of stage 4
    level_4 = keras.ops.convert_to_numpy(outputs[3])
    # Row-major reshape of the (h*w, C) tokens, as keras-hub's own blocks do.
    np.testing.assert_array_equal(level_4.reshape(tokens.shape), tokens)
    # Levels 1–3 pass through fresh LayerNorms: zero mean, unit variance per token.
    for level in outputs[:3]:
        level = keras.ops.convert_to_numpy(level).astype("float64")
        np.testing.assert_allclose(level.mean(-1), 0.0, atol=1e-5)
        np.testing.assert_allclose(level.var(-1), 1.0, rtol=1e-3)  # LayerNorm's epsilon 1e-5
    # The backbone's variables are the pyramid's, not copies.
    pyramid_ids = {id(v) for v in pyramid.weights}
    assert all(id(v) in pyramid_ids for v in backbone.weights)
    # Saving keeps the keras-hub config and every weight.
    path = tmp_path / "swin_pyramid.keras"
    pyramid.save(path)
    restored = keras.saving.load_model(path)
    for a, b in zip(restored(x), outputs):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


def test_backbones_of_other_sizes_or_kinds_are_rejected():
    import keras_hub

    resnet = keras_hub.models.ResNetBackbone(
        image_shape=(48, 48, 3), block_type="bottleneck_block", input_conv_filters=[8], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 8, 8, 8], stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2],
    )
    with pytest.raises(ValueError, match="image_size"):
        build_pyramid(resnet)
    with pytest.raises(ValueError, match="SwinTransformerBackbone, ResNetBackbone or MiTBackbone"):
        build_pyramid(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 1)]))
