"""keras-hub backbones by name: the presets' hyperparameters, written here.

`build_backbone(name, image_size, weights=None)` builds a keras-hub backbone
class from its constructor (random weights; works offline) or, with
``weights="<preset>"``, through ``from_preset`` (downloads; needs network
access).  Offline, keras-hub's ``from_preset(load_weights=False)`` still
fetches the preset's config, so the architectures live in `BACKBONES`.

Names: ``swin_tiny``, ``swin_small``, ``swin_base``, ``swin_large`` (keras-hub
`SwinTransformerBackbone`), ``resnet50``, ``resnet101`` (`ResNetBackbone`,
v1), ``mit_b0`` … ``mit_b5`` (`MiTBackbone`, SegFormer's encoder).
`tiny_overrides(name)` gives a few-block, few-channel configuration of the
same architecture, for tests.

Example::

    from keras_sard.models.backbones import build_backbone, tiny_overrides

    backbone = build_backbone("resnet50", 64, **tiny_overrides("resnet50"))
    backbone.count_params()
"""

import copy

from keras_sard.models.levels import normalize_image_size

__all__ = ["BACKBONES", "PRESETS", "build_backbone", "family", "tiny_overrides"]

_SWIN = {
    "swin_tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7),
    "swin_small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7),
    "swin_base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7),
    "swin_large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=7),
}
_RESNET_V1 = dict(
    input_conv_filters=[64],
    input_conv_kernel_sizes=[7],
    stackwise_num_filters=[64, 128, 256, 512],
    stackwise_num_strides=[1, 2, 2, 2],
    block_type="bottleneck_block",
    use_pre_activation=False,
)
_RESNET = {
    "resnet50": dict(_RESNET_V1, stackwise_num_blocks=[3, 4, 6, 3]),
    "resnet101": dict(_RESNET_V1, stackwise_num_blocks=[3, 4, 23, 3]),
}
_MIT_COMMON = dict(
    num_layers=4,
    layerwise_num_heads=[1, 2, 5, 8],
    layerwise_sr_ratios=[8, 4, 2, 1],
    max_drop_path_rate=0.1,
    layerwise_patch_sizes=[7, 3, 3, 3],
    layerwise_strides=[4, 2, 2, 2],
)
_MIT = {
    "mit_b0": dict(_MIT_COMMON, hidden_dims=[32, 64, 160, 256], layerwise_depths=[2, 2, 2, 2]),
    "mit_b1": dict(_MIT_COMMON, hidden_dims=[64, 128, 320, 512], layerwise_depths=[2, 2, 2, 2]),
    "mit_b2": dict(_MIT_COMMON, hidden_dims=[64, 128, 320, 512], layerwise_depths=[3, 4, 6, 3]),
    "mit_b3": dict(_MIT_COMMON, hidden_dims=[64, 128, 320, 512], layerwise_depths=[3, 4, 18, 3]),
    "mit_b4": dict(_MIT_COMMON, hidden_dims=[64, 128, 320, 512], layerwise_depths=[3, 8, 27, 3]),
    "mit_b5": dict(_MIT_COMMON, hidden_dims=[64, 128, 320, 512], layerwise_depths=[3, 6, 40, 3]),
}

#: name -> (keras-hub class name, constructor hyperparameters).
BACKBONES = {
    **{name: ("SwinTransformerBackbone", config) for name, config in _SWIN.items()},
    **{name: ("ResNetBackbone", config) for name, config in _RESNET.items()},
    **{name: ("MiTBackbone", config) for name, config in _MIT.items()},
}

#: name -> keras-hub presets with these hyperparameters (ImageNet-1k for Swin
#: and ResNet; ADE20K/Cityscapes-trained encoders for MiT).
PRESETS = {
    "swin_tiny": ("swin_tiny_patch4_window7_224",),
    "swin_small": ("swin_small_patch4_window7_224",),
    "swin_base": ("swin_base_patch4_window7_224", "swin_base_patch4_window12_384"),
    "swin_large": ("swin_large_patch4_window7_224", "swin_large_patch4_window12_384"),
    "resnet50": ("resnet_50_imagenet",),
    "resnet101": ("resnet_101_imagenet",),
    **{name: (f"{name}_ade20k_512", f"{name}_cityscapes_1024") for name in _MIT},
}

# Few blocks and channels, same architecture; within a family the tiny
# versions differ in depth only (bigger models deeper), so they share weight
# shapes — JAX compiles each new shape's initializer once, which dominates
# building tiny models there.
_TINY_SWIN = dict(embed_dim=8, num_heads=(1, 2, 2, 4), window_size=2, drop_path=0.0)
_TINY = {
    "swin_tiny": dict(_TINY_SWIN, depths=(2, 1, 1, 1)),
    "swin_small": dict(_TINY_SWIN, depths=(2, 1, 2, 1)),
    "swin_base": dict(_TINY_SWIN, depths=(2, 1, 2, 1)),
    "swin_large": dict(_TINY_SWIN, depths=(2, 2, 2, 1)),
    "resnet50": dict(input_conv_filters=[8], stackwise_num_filters=[64, 8, 8, 8], stackwise_num_blocks=[1, 1, 1, 1]),
    "resnet101": dict(input_conv_filters=[8], stackwise_num_filters=[64, 8, 8, 8], stackwise_num_blocks=[1, 1, 2, 1]),
    **{
        name: dict(hidden_dims=[8, 8, 16, 16], layerwise_depths=[1, 1, 1, 1], layerwise_num_heads=[1, 1, 1, 1])
        for name in _MIT
    },
}

# The hyperparameters a loaded preset must agree with (the rest, e.g. the
# drop-path rate, may differ without changing the architecture).
_ARCHITECTURE_KEYS = {
    "SwinTransformerBackbone": ("embed_dim", "depths", "num_heads", "patch_size"),
    "ResNetBackbone": ("stackwise_num_filters", "stackwise_num_blocks", "block_type", "use_pre_activation"),
    "MiTBackbone": ("hidden_dims", "layerwise_depths", "layerwise_num_heads"),
}


def _check_name(name):
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; known: {sorted(BACKBONES)}.")


def family(name):
    """``"swin"``, ``"resnet"`` or ``"mit"`` for a backbone name."""
    _check_name(name)
    return {"SwinTransformerBackbone": "swin", "ResNetBackbone": "resnet", "MiTBackbone": "mit"}[
        BACKBONES[name][0]
    ]


def tiny_overrides(name):
    """Overrides for `build_backbone` giving a tiny configuration of `name`
    (for tests: a few blocks, 8–256 channels; Swin: window 2, so inputs of at
    least 64×64, and two blocks in stage 1 so shifted windows are exercised).
    Tiny versions of one family differ in depth only."""
    _check_name(name)
    return copy.deepcopy(_TINY[name])


def _image_shape(name, image_size, window_size):
    kind = family(name)
    height, width = normalize_image_size(image_size, allow_none=kind == "resnet")
    if kind == "swin":
        # keras-hub's Swin shrinks the window of a stage smaller than it but
        # keeps the full-size attention bias, which fails: every stage must
        # hold at least one window.
        smallest = min(height, width) // 32
        if smallest < window_size:
            raise ValueError(
                f"image_size {image_size!r} is too small for {name} with window_size "
                f"{window_size}: keras-hub's Swin needs the stride-32 stage to hold a whole "
                f"window, so height and width must be at least {32 * window_size}."
            )
    if kind == "mit" and height != width:
        # keras-hub's SegFormer attention takes H = W = sqrt(tokens).
        raise ValueError(
            f"image_size {image_size!r} is not square: keras-hub's MiT attention assumes "
            "square feature maps, so height must equal width."
        )
    return (height, width, 3)


def _keras_hub_class(class_name):
    import keras_hub

    return getattr(keras_hub.models, class_name)


def _load_preset(name, cls, preset, image_shape, overrides):
    try:
        return cls.from_preset(preset, image_shape=image_shape, **overrides)
    except Exception as error:  # network, Kaggle/HF, or an unknown preset
        raise RuntimeError(
            f"Could not load the keras-hub preset {preset!r} for backbone {name!r} "
            f"({type(error).__name__}: {error}). Presets are downloaded (Kaggle or Hugging "
            "Face), so this needs network access, or a local preset directory. To build "
            f"{name} with random weights instead, pass weights=None. Presets with "
            f"{name}'s hyperparameters: {list(PRESETS.get(name, ()))}."
        ) from error


def build_backbone(name, image_size, weights=None, **overrides):
    """A keras-hub backbone for inputs of `image_size`.

    Args:
        name: a key of `BACKBONES`.
        image_size: int or (height, width), divisible by 32 (Swin: at least
            32 × window_size; MiT: square; ResNet also accepts None for any
            size).
        weights: None (random weights, built offline from the hyperparameters
            in `BACKBONES`) or a keras-hub preset name / local preset
            directory (loaded with ``from_preset``; needs network access).
        **overrides: constructor arguments replacing `BACKBONES[name]`'s
            (e.g. `tiny_overrides(name)`, ``drop_path=0.3``).

    Raises:
        ValueError: unknown name, bad image_size, or a preset whose
            architecture is not `name`'s.
        RuntimeError: the preset could not be fetched.
    """
    _check_name(name)
    class_name, defaults = BACKBONES[name]
    config = {**copy.deepcopy(defaults), **overrides}
    image_shape = _image_shape(name, image_size, config.get("window_size", 0))
    cls = _keras_hub_class(class_name)
    if weights is None:
        return cls(image_shape=image_shape, **config)
    if not isinstance(weights, str):
        raise ValueError(f"weights must be None or a keras-hub preset name; got {weights!r}.")
    backbone = _load_preset(name, cls, weights, image_shape, overrides)
    loaded = backbone.get_config()
    mismatched = {
        key: (loaded.get(key), config[key])
        for key in _ARCHITECTURE_KEYS[class_name]
        if key in config and list(_as_list(loaded.get(key))) != list(_as_list(config[key]))
    }
    if mismatched:
        raise ValueError(
            f"The preset {weights!r} is not a {name}: its {sorted(mismatched)} are "
            f"{[mismatched[k][0] for k in sorted(mismatched)]}, {name} has "
            f"{[mismatched[k][1] for k in sorted(mismatched)]}. Presets for {name}: "
            f"{list(PRESETS.get(name, ()))}."
        )
    return backbone


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]
