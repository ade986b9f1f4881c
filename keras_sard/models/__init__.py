"""Teacher and student segmenters.

- `build_small_segmenter`: a small plain-conv pyramid + UPerNet (CPU-sized).
- `build_segmenter(backbone, ...)`: keras-hub Swin / ResNet / MiT backbones
  as 4-level pyramids (`build_pyramid`) with an UPerNet decoder.
- `get_recipe(name)`: the paper's teacher → student pairs.

Every model's tappable levels are ``f"{name}_level_{i}"``, i = 1..4
(strides 4, 8, 16, 32): `level_names(name)`.
"""

from keras_sard.models.backbones import BACKBONES, PRESETS, build_backbone, tiny_overrides
from keras_sard.models.levels import level_names
from keras_sard.models.pyramids import BackboneFeatures, build_pyramid
from keras_sard.models.recipes import RECIPE_INFO, RECIPES, Recipe, RecipeModels, get_recipe
from keras_sard.models.segmenter import SEGMENTER_BACKBONES, build_segmenter
from keras_sard.models.small import build_small_segmenter
from keras_sard.models.upernet import ResizeLike, upernet_decoder

__all__ = [
    "BACKBONES",
    "PRESETS",
    "RECIPES",
    "RECIPE_INFO",
    "SEGMENTER_BACKBONES",
    "BackboneFeatures",
    "Recipe",
    "RecipeModels",
    "ResizeLike",
    "build_backbone",
    "build_pyramid",
    "build_segmenter",
    "build_small_segmenter",
    "get_recipe",
    "level_names",
    "tiny_overrides",
    "upernet_decoder",
]
