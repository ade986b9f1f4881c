"""build_segmenter: logits, levels, argument checks, presets that cannot be
fetched, presets of the wrong architecture."""

import keras
import numpy as np
import pytest

from keras_sard.models import SEGMENTER_BACKBONES, build_segmenter, level_names, tiny_overrides


def test_logits_at_the_input_resolution_and_tappable_levels(tmp_path):
    model = build_segmenter("resnet50", num_classes=4, image_size=64, decoder_channels=16, name="seg",
                            **tiny_overrides("resnet50"))
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype("float32")
    logits = model(x)
    assert tuple(logits.shape) == (2, 64, 64, 4)
    for i, layer in enumerate(level_names("seg")):
        stride = 4 * 2**i
        assert model.get_layer(layer).output.shape[1:3] == (64 // stride, 64 // stride)
    path = tmp_path / "seg.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(logits), rtol=1e-5, atol=1e-5
    )


def test_small_backbone_and_its_decoder_width():
    model = build_segmenter("small", num_classes=2, image_size=None, widths=(8, 16, 16, 32))
    assert tuple(model(np.zeros((1, 32, 64, 3), "float32")).shape) == (1, 32, 64, 2)
    assert model.get_layer("small_decoder_classifier").input.shape[-1] == 16  # widths[1]
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_segmenter("small", 2, 32, weights="anything")


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="Unknown backbone 'swin_huge'.*swin_tiny"):
        build_segmenter("swin_huge", 2, 64)
    with pytest.raises(ValueError, match="image_size"):
        build_segmenter("resnet50", 2, None)  # UPerNet's pooling needs a fixed size
    with pytest.raises(ValueError, match="image_size"):
        build_segmenter("resnet50", 2, (64, 72))
    assert set(SEGMENTER_BACKBONES) >= {"swin_tiny", "swin_large", "resnet50", "resnet101", "mit_b0", "small"}


def test_a_preset_that_cannot_be_fetched_says_so(monkeypatch):
    import keras_hub

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'api.kaggle.com'")

    monkeypatch.setattr(keras_hub.models.ResNetBackbone, "from_preset", offline)
    with pytest.raises(RuntimeError) as caught:
        build_segmenter("resnet50", 2, 64, weights="resnet_50_imagenet")
    message = str(caught.value)
    for part in ("'resnet_50_imagenet'", "network access", "weights=None", "Failed to resolve"):
        assert part in message
    assert isinstance(caught.value.__cause__, ConnectionError)
