"""Backbones by name: sizes keras-hub can run, tiny configurations, presets of
the wrong architecture."""

import pytest

from keras_sard.models import BACKBONES, PRESETS, build_backbone, tiny_overrides
from keras_sard.models.backbones import family


@pytest.mark.parametrize("name, image_size", [("swin_tiny", 48), ("mit_b0", (80, 80)), ("resnet50", (64, 100))])
def test_sizes_not_divisible_by_32_are_rejected(name, image_size):
    with pytest.raises(ValueError, match="image_size"):
        build_backbone(name, image_size, **tiny_overrides(name))


def test_sizes_keras_hub_cannot_run_are_rejected():
    with pytest.raises(ValueError, match=r"image_size 32 .*window_size 2.*at least 64"):
        build_backbone("swin_tiny", 32, **tiny_overrides("swin_tiny"))
    with pytest.raises(ValueError, match=r"image_size \(64, 96\) is not square"):
        build_backbone("mit_b0", (64, 96), **tiny_overrides("mit_b0"))
    with pytest.raises(ValueError, match="image_size is required"):
        build_backbone("swin_tiny", None)
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet18'.*resnet50"):
        build_backbone("resnet18", 64)


def test_names_presets_and_tiny_configurations_agree():
    assert set(PRESETS) == set(BACKBONES)
    for name, (_, config) in BACKBONES.items():
        tiny = tiny_overrides(name)
        assert set(tiny) - {"drop_path"} <= set(config), name  # same constructor, smaller numbers
        assert family(name) in name
    # Within a family, tiny versions differ in depth only (shared weight shapes).
    assert {k: v for k, v in tiny_overrides("swin_large").items() if k != "depths"} == {
        k: v for k, v in tiny_overrides("swin_tiny").items() if k != "depths"
    }


def test_a_preset_of_another_architecture_is_rejected(monkeypatch):
    import keras_hub

    deeper = build_backbone("resnet101", 64, **tiny_overrides("resnet101"))
    monkeypatch.setattr(keras_hub.models.ResNetBackbone, "from_preset", lambda *a, **k: deeper)
    with pytest.raises(ValueError, match=r"'resnet_101_imagenet' is not a resnet50.*stackwise_num_blocks"):
        build_backbone("resnet50", 64, weights="resnet_101_imagenet", **tiny_overrides("resnet50"))
