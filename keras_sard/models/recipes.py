"""The paper's teacher → student pairs as named recipes.

``"swin_l->swin_t"``, ``"swin_b->swin_s"`` (Tables 6–7), ``"swin_l->resnet50"``
(ablation, efficiency) — each an UPerNet segmenter on both sides — and
``"small"``, a plain-conv pair that distils on a CPU in minutes.  ``"→"`` may
stand for ``"->"``.

`Recipe.build` returns `RecipeModels` ``(teacher, student, teacher_layers,
student_layers)``: two segmenters named ``"teacher"`` and ``"student"`` and
the four level layers of each (strides 4, 8, 16, 32), paired level by level
for SARD (each level its own W, P_S and g_θ)::

    import keras_sard
    from keras_sard.losses import SARDLoss
    from keras_sard.models import get_recipe

    teacher, student, t_layers, s_layers = get_recipe("small").build(num_classes=3, image_size=64)
    distiller = keras_sard.Distiller(teacher, student, [SARDLoss(t_layers, s_layers)])

The teacher's `teacher_weights` is a backbone preset (an ImageNet start);
train the teacher on your task before distilling.  ``tiny=True`` builds
few-block, few-channel versions of the same architectures (for tests; Swin
then needs 64×64 inputs or larger).
"""

import dataclasses
from typing import NamedTuple, Tuple

import keras

from keras_sard.models.backbones import tiny_overrides
from keras_sard.models.levels import level_names
from keras_sard.models.segmenter import build_segmenter

__all__ = ["RECIPES", "Recipe", "RecipeModels", "get_recipe"]

_SMALL_WIDTHS = {"teacher": (32, 64, 128, 256), "student": (16, 32, 64, 128)}
_SMALL_TINY_WIDTHS = {"teacher": (8, 16, 16, 32), "student": (8, 8, 16, 16)}
_TINY_DECODER_CHANNELS = 16


class RecipeModels(NamedTuple):
    """What `Recipe.build` returns; unpacks as a 4-tuple."""

    teacher: keras.Model
    student: keras.Model
    teacher_layers: Tuple[str, ...]
    student_layers: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A teacher/student pair of backbones (names of `build_segmenter`)."""

    name: str
    teacher_backbone: str
    student_backbone: str

    def _overrides(self, role, backbone, tiny):
        if backbone == "small":
            return {"widths": (_SMALL_TINY_WIDTHS if tiny else _SMALL_WIDTHS)[role]}
        return tiny_overrides(backbone) if tiny else {}

    @property
    def teacher_layers(self):
        """The teacher's four level layers (strides 4, 8, 16, 32)."""
        return level_names("teacher")

    @property
    def student_layers(self):
        """The student's four level layers, paired with `teacher_layers`."""
        return level_names("student")

    def _build_one(self, role, backbone, num_classes, image_size, weights, tiny, kwargs):
        overrides = self._overrides(role, backbone, tiny)
        if tiny:
            overrides["decoder_channels"] = _TINY_DECODER_CHANNELS
        return build_segmenter(
            backbone, num_classes, image_size, weights=weights, name=role, **{**overrides, **kwargs}
        )

    def build_teacher(self, num_classes, image_size, weights=None, tiny=False, **kwargs):
        """The teacher alone, a segmenter named ``"teacher"`` (arguments as
        `build`; `weights` is its backbone preset)."""
        return self._build_one("teacher", self.teacher_backbone, num_classes, image_size,
                               weights, tiny, kwargs)

    def build_student(self, num_classes, image_size, weights=None, tiny=False, **kwargs):
        """The student alone, a segmenter named ``"student"``: what to build
        when the teacher is trained and saved already.

        >>> get_recipe("small").build_student(2, 64, tiny=True).name
        'student'
        """
        return self._build_one("student", self.student_backbone, num_classes, image_size,
                               weights, tiny, kwargs)

    def build(self, num_classes, image_size, teacher_weights=None, student_weights=None, tiny=False, **kwargs):
        """Build the teacher and the student.

        Args:
            num_classes: logits channels of both.
            image_size: int or (height, width), divisible by 32.
            teacher_weights, student_weights: keras-hub presets of the
                backbones (None: random weights, offline).
            tiny: few-block, few-channel versions (tests).
            **kwargs: more `build_segmenter` arguments for both models
                (e.g. ``decoder_channels``).

        Returns:
            `RecipeModels(teacher, student, teacher_layers, student_layers)`.
        """
        return RecipeModels(
            self.build_teacher(num_classes, image_size, teacher_weights, tiny, **kwargs),
            self.build_student(num_classes, image_size, student_weights, tiny, **kwargs),
            self.teacher_layers,
            self.student_layers,
        )


_RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("swin_l->swin_t", "swin_large", "swin_tiny"),
        Recipe("swin_b->swin_s", "swin_base", "swin_small"),
        Recipe("swin_l->resnet50", "swin_large", "resnet50"),
        Recipe("small", "small", "small"),
    )
}

#: The recipe names.
RECIPES = tuple(_RECIPES)


def get_recipe(name):
    """The `Recipe` called `name` (``"→"`` accepted for ``"->"``, case and
    spaces ignored); ValueError listing the known names otherwise.

    >>> get_recipe("Swin_L → Swin_T").student_backbone
    'swin_tiny'
    """
    key = name.replace("→", "->").replace(" ", "").lower() if isinstance(name, str) else name
    if key not in _RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; known recipes: {list(RECIPES)}.")
    return _RECIPES[key]
