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

Each recipe also owns the `keras_sard.schedules.Schedule` of its teacher and
of its student: the paper's (`PAPER_SCHEDULE`) for the keras-hub pairs, a
shorter one with a larger learning rate for ``"small"``, whose models start
from random weights.  The command line, `keras_sard.training.run_experiment`
and the table runner all take their default schedules from here.  This
module imports Keras only when a model is built, so the command line can
build its help from `RECIPE_INFO`.

>>> get_recipe("swin_l->swin_t").student_schedule.learning_rate
0.0001
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple, Tuple

from keras_sard.models.backbones import tiny_overrides
from keras_sard.models.levels import level_names
from keras_sard.schedules import (PAPER_SCHEDULE, SYNTHETIC_SCHEDULE,
                                  SYNTHETIC_TEACHER_SCHEDULE, Schedule)

if TYPE_CHECKING:
    import keras

__all__ = ["RECIPES", "RECIPE_INFO", "Recipe", "RecipeModels", "get_recipe"]

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
    """A teacher/student pair of backbones (names of `build_segmenter`) and
    the schedules each is trained with.

    Attributes:
        name: the recipe's name (``"swin_l->swin_t"``).
        teacher_backbone, student_backbone: `build_segmenter` backbones.
        teacher_schedule, student_schedule: how `keras_sard.training` trains
            the teacher and distils the student by default.
        description: one line for the command line's help.
    """

    name: str
    teacher_backbone: str
    student_backbone: str
    teacher_schedule: Schedule = PAPER_SCHEDULE
    student_schedule: Schedule = PAPER_SCHEDULE
    description: str = ""

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
        from keras_sard.models.segmenter import build_segmenter  # imports Keras

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


RECIPE_INFO = {
    recipe.name: recipe
    for recipe in (
        Recipe("swin_l->swin_t", "swin_large", "swin_tiny",
               description="Swin-L teacher, Swin-T student (Tables 6-7)"),
        Recipe("swin_b->swin_s", "swin_base", "swin_small",
               description="Swin-B teacher, Swin-S student (Tables 6-7)"),
        Recipe("swin_l->resnet50", "swin_large", "resnet50",
               description="Swin-L teacher, ResNet-50 student (ablation, efficiency)"),
        Recipe("small", "small", "small", SYNTHETIC_TEACHER_SCHEDULE, SYNTHETIC_SCHEDULE,
               description="plain-conv pair that distils on a CPU in minutes"),
    )
}
"""Every recipe by name (`Recipe`)."""

#: The recipe names.
RECIPES = tuple(RECIPE_INFO)


def get_recipe(name):
    """The `Recipe` called `name` (``"→"`` accepted for ``"->"``, case and
    spaces ignored); ValueError listing the known names otherwise.

    >>> get_recipe("Swin_L → Swin_T").student_backbone
    'swin_tiny'
    """
    key = name.replace("→", "->").replace(" ", "").lower() if isinstance(name, str) else name
    if key not in RECIPE_INFO:
        raise ValueError(f"Unknown recipe {name!r}; known recipes: {list(RECIPES)}.")
    return RECIPE_INFO[key]
