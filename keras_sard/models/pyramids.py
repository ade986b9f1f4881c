"""keras-hub backbones as 4-level feature pyramids (strides 4, 8, 16, 32).

`build_pyramid(backbone, name)` wraps a keras-hub backbone — its own layers
and weights, nothing re-implemented — into a functional model whose outputs
are four channels_last maps, each from a layer named ``f"{name}_level_{i}"``
(i = 1..4) that a Distiller can tap:

* Swin (`SwinTransformerBackbone`): each stage's tokens *before* its patch
  merging, through one LayerNorm per level as in dense-prediction Swin,
  reshaped to maps.  Levels 1–3 get new LayerNorms (ones/zeros); level 4
  uses the backbone's own final ``norm``, so its tokens are exactly the
  keras-hub backbone's output.  keras-hub's Swin is built for one
  ``image_shape``: build the backbone for the size you need
  (`keras_sard.models.backbones.build_backbone` does).
* ResNet (`ResNetBackbone`): ``pyramid_outputs`` P2..P5.
* MiT (`MiTBackbone`, SegFormer's encoder): ``pyramid_outputs`` P1..P4
  (strides 4..32; keras-hub names them one lower).

The backbone lives in one `BackboneFeatures` layer whose config is the
backbone's keras-hub config, so models save and load as ``.keras`` files.

Example::

    import numpy as np
    from keras_sard.models.backbones import build_backbone, tiny_overrides
    from keras_sard.models.pyramids import build_pyramid

    backbone = build_backbone("swin_tiny", 64, **tiny_overrides("swin_tiny"))
    pyramid = build_pyramid(backbone, name="student")
    [tuple(f.shape) for f in pyramid(np.zeros((1, 64, 64, 3), "float32"))]
    # [(1, 16, 16, 8), (1, 8, 8, 16), (1, 4, 4, 32), (1, 2, 2, 64)]
"""

import keras
from keras import layers, ops

from keras_sard.models.levels import PYRAMID_STRIDES, level_names, normalize_image_size

__all__ = ["BackboneFeatures", "build_pyramid", "pyramid_family"]


def pyramid_family(backbone):
    """``"swin"``, ``"resnet"`` or ``"mit"`` for a keras-hub backbone instance;
    ValueError for any other backbone."""
    import keras_hub

    models = keras_hub.models
    for family, cls in (
        ("swin", models.SwinTransformerBackbone),
        ("resnet", models.ResNetBackbone),
        ("mit", models.MiTBackbone),
    ):
        if isinstance(backbone, cls):
            return family
    raise ValueError(
        "backbone must be a keras-hub SwinTransformerBackbone, ResNetBackbone or "
        f"MiTBackbone; got {type(backbone).__name__}."
    )


def _check_backbone(backbone, family):
    config = backbone.get_config()
    if family == "swin":
        if config["patch_size"] != 4 or len(config["depths"]) != 4:
            raise ValueError(
                "A Swin pyramid needs patch_size 4 and 4 stages (strides 4..32); the "
                f"backbone has patch_size {config['patch_size']} and depths {config['depths']}."
            )
        if config.get("data_format", "channels_last") != "channels_last":
            raise ValueError("The Swin backbone must be channels_last.")
    elif family == "resnet":
        if len(config["stackwise_num_filters"]) != 4 or list(config["stackwise_num_strides"]) != [1, 2, 2, 2]:
            raise ValueError(
                "A ResNet pyramid needs 4 stacks with strides [1, 2, 2, 2] (P2..P5); the "
                f"backbone has stackwise_num_strides {config['stackwise_num_strides']}."
            )
        if keras.config.image_data_format() != "channels_last":
            raise ValueError("ResNet pyramids need keras.config.image_data_format() == 'channels_last'.")
    elif family == "mit":
        if config["num_layers"] != 4 or list(config["layerwise_strides"]) != [4, 2, 2, 2]:
            raise ValueError(
                "A MiT pyramid needs 4 levels with strides [4, 2, 2, 2]; the backbone has "
                f"num_layers {config['num_layers']} and strides {config['layerwise_strides']}."
            )
    image_shape = tuple(config["image_shape"])
    try:
        normalize_image_size(image_shape[:2], allow_none=family == "resnet")
    except ValueError as error:
        raise ValueError(f"The backbone's image_shape {image_shape}: {error}") from None
    if image_shape[2] != 3:
        raise ValueError(f"The backbone must take RGB images; its image_shape is {image_shape}.")


@keras.saving.register_keras_serializable(package="keras_sard")
class BackboneFeatures(layers.Layer):
    """The four pyramid maps of a keras-hub backbone (see the module docstring).

    Args:
        backbone: a keras-hub `SwinTransformerBackbone`, `ResNetBackbone` or
            `MiTBackbone` (or its serialized config, when loading).

    Call on images ``(batch, H, W, 3)``; returns a list of four maps.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.family = pyramid_family(backbone)
        _check_backbone(backbone, self.family)
        self.backbone = backbone
        if self.family == "swin":
            config = backbone.get_config()
            self.dims = [config["embed_dim"] * 2**i for i in range(4)]
            self.stage_norms = [
                layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name=f"norm_level_{i + 1}")
                for i in range(3)
            ]
            for norm, dim in zip(self.stage_norms, self.dims):
                norm.build((None, None, dim))
        else:
            keys = ("P2", "P3", "P4", "P5") if self.family == "resnet" else ("P1", "P2", "P3", "P4")
            outputs = [backbone.pyramid_outputs[key] for key in keys]
            self.extractor = keras.Model(backbone.input, outputs, name=f"{backbone.name}_pyramid")
        self.built = True

    def build(self, input_shape):
        self.built = True

    def _swin_levels(self, images):
        backbone = self.backbone
        height, width = backbone.image_shape[0] // 4, backbone.image_shape[1] // 4
        x = backbone.patch_embedding(images)
        x = backbone.get_layer("pos_drop")(x)
        levels = []
        for i, stage in enumerate(backbone.stages):
            for block in stage.blocks:
                x = block(x)
            norm = self.stage_norms[i] if i < 3 else backbone.norm
            levels.append(ops.reshape(norm(x), (-1, height, width, self.dims[i])))
            if stage.downsample is not None:
                x = stage.downsample(x, H=height, W=width)
                height, width = height // 2, width // 2
        return levels

    def call(self, images):
        if self.family == "swin":
            return self._swin_levels(images)
        return list(self.extractor(images))

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        if self.family == "swin":
            channels = self.dims
        else:
            channels = [int(t.shape[-1]) for t in self.extractor.outputs]
        return [
            (batch, None if height is None else height // s, None if width is None else width // s, c)
            for s, c in zip(PYRAMID_STRIDES, channels)
        ]

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config


def build_pyramid(backbone, name="backbone"):
    """A functional model: images → four maps from layers ``f"{name}_level_{i}"``.

    Args:
        backbone: a keras-hub Swin, ResNet or MiT backbone (its image_shape
            divisible by 32; ResNet may take any size).
        name: model name and prefix of the level layers.
    """
    features = BackboneFeatures(backbone, name=f"{name}_features")
    image_shape = tuple(backbone.image_shape)
    inputs = keras.Input(image_shape, name=f"{name}_input")
    maps = features(inputs)
    levels = [layers.Identity(name=n)(m) for n, m in zip(level_names(name), maps)]
    return keras.Model(inputs, levels, name=name)
