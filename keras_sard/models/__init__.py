"""Teacher and student segmenters.

- `build_small_segmenter`: a small plain-conv pyramid + UPerNet (CPU-sized).
- `build_segmenter(backbone, ...)`: keras-hub Swin / ResNet / MiT backbones
  as 4-level pyramids (`build_pyramid`) with an UPerNet decoder.
- `get_recipe(name)`: the paper's teacher → student pairs.

Every model's tappable levels are ``f"{name}_level_{i}"``, i = 1..4
(strides 4, 8, 16, 32): `level_names(name)`.  Names load on first access:
the recipe registry (`keras_sard.models.recipes`) is read without Keras.
"""

from keras_sard.lazy import lazy_exports

_EXPORTS = {
    "BACKBONES": "keras_sard.models.backbones",
    "PRESETS": "keras_sard.models.backbones",
    "build_backbone": "keras_sard.models.backbones",
    "tiny_overrides": "keras_sard.models.backbones",
    "level_names": "keras_sard.models.levels",
    "BackboneFeatures": "keras_sard.models.pyramids",
    "build_pyramid": "keras_sard.models.pyramids",
    "RECIPE_INFO": "keras_sard.models.recipes",
    "RECIPES": "keras_sard.models.recipes",
    "Recipe": "keras_sard.models.recipes",
    "RecipeModels": "keras_sard.models.recipes",
    "get_recipe": "keras_sard.models.recipes",
    "SEGMENTER_BACKBONES": "keras_sard.models.segmenter",
    "build_segmenter": "keras_sard.models.segmenter",
    "build_small_segmenter": "keras_sard.models.small",
    "ResizeLike": "keras_sard.models.upernet",
    "upernet_decoder": "keras_sard.models.upernet",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
