"""MGD, the feature baseline of the paper's tables, as a Distiller loss
(spec §3): masked generative distillation (Yang et al. 2022), where a
generator rebuilds the teacher's feature map from the randomly masked
student's.  Float32 under any mixed-precision policy."""

import keras
from keras import ops

from keras_sard.losses.base import DistillationLoss, SeedStateSaving
from keras_sard.losses.heads import DenoisingHead
from keras_sard.maps import resize_like
from keras_sard.validation import check_number, check_rank4, check_seed

__all__ = ["MaskedGenerativeKD"]


@keras.saving.register_keras_serializable(package="keras_sard")
class MaskedGenerativeKD(SeedStateSaving, DistillationLoss):
    """Masked generative distillation (MGD) on feature maps.

    Per tapped level: the student's map goes through a 1×1 alignment conv to
    the teacher's channels (only where they differ), is resized bilinearly to
    the teacher's H×W, and a random fraction ``mask_ratio`` of its pixels is
    zeroed (one draw per pixel, shared by the channels: a pixel is masked
    where ``u < mask_ratio``, u ~ U[0, 1)).  A generator conv3×3-ReLU-conv3×3
    (hidden width = the teacher's channels) rebuilds the teacher's map from
    it.  The loss is ``Σ (generated − F_T)² / B``, summed over pixels and
    channels (hence the small default weight), and over levels where several
    are tapped; the paper's setting taps the last backbone level only.

    Args:
        teacher_layers, student_layers: the feature layers, one pair per level.
        mask_ratio: 0 < p < 1, the masked fraction (0.75).
        weight: the loss weight (2e-5).
        seed: seed of the masks (a `keras.random.SeedGenerator` whose state is
            saved with the weights, so a resumed run draws the masks it would
            have).
        name: the logged term (``"mgd"``).

    The alignment convs and generators are trained with the student and
    saved with the Distiller.

    Example::

        import numpy as np
        from keras_sard.losses import MaskedGenerativeKD
        loss = MaskedGenerativeKD(["teacher_level_4"], ["student_level_4"], seed=0)
        teacher = np.random.randn(2, 4, 4, 16).astype("float32")
        student = np.random.randn(2, 4, 4, 8).astype("float32")
        loss([teacher], [student])["mgd"]
    """

    seed_generators_to_save = ("seed_generator",)

    def __init__(self, teacher_layers, student_layers, mask_ratio=0.75, weight=2e-5,
                 seed=None, **kwargs):
        kwargs.setdefault("name", "mgd")
        if teacher_layers is None or student_layers is None:
            raise ValueError(
                "MGD reads feature maps: `teacher_layers` and `student_layers` must "
                "name the layers to tap (the paper's: the last backbone level)."
            )
        super().__init__(teacher_layers, student_layers, weight=weight, **kwargs)
        self.mask_ratio = check_number(mask_ratio, "mask_ratio", inclusive=False, maximum=1.0)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed")
        self.aligners = []
        self.generators = []

    def build(self, teacher_outputs_shape, student_outputs_shape):
        self.check_level_counts(teacher_outputs_shape, student_outputs_shape)
        aligners, generators = [], []
        for level, (teacher_shape, student_shape) in enumerate(
            zip(teacher_outputs_shape, student_outputs_shape)
        ):
            teacher_shape = check_rank4(teacher_shape, "teacher_features")
            student_shape = check_rank4(student_shape, "student_features")
            channels = teacher_shape[-1]
            aligner = None
            if student_shape[-1] != channels:
                aligner = keras.layers.Conv2D(
                    channels, 1, name=f"align_level_{level}", dtype="float32"
                )
                aligner.build(student_shape)
            generator = DenoisingHead(channels, channels, name=f"generator_level_{level}")
            generator.build(teacher_shape)
            aligners.append(aligner)
            generators.append(generator)
        self.aligners, self.generators = aligners, generators

    def draw_mask(self, shape):
        """A float32 keep-mask of `shape` (B, H, W, 1): 0 where a pixel is
        masked (probability `mask_ratio`), 1 elsewhere.  Advances the seed."""
        draws = keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)
        return ops.cast(draws >= self.mask_ratio, "float32")

    def call(self, teacher_outputs, student_outputs, labels=None):
        total = 0.0
        for level, (teacher, student) in enumerate(zip(teacher_outputs, student_outputs)):
            teacher = ops.stop_gradient(ops.cast(teacher, "float32"))
            student = ops.cast(student, "float32")
            if self.aligners[level] is not None:
                student = self.aligners[level](student)
            student = resize_like(student, teacher)
            shape = ops.shape(teacher)
            keep = self.draw_mask((shape[0], shape[1], shape[2], 1))
            generated = self.generators[level](student * keep)
            batch = ops.cast(shape[0], "float32")
            total = total + ops.sum(ops.square(generated - teacher)) / batch
        return {self.name: self.weight * total}

    def compute_output_shape(self, *args, **kwargs):
        return {name: () for name in self.term_names}

    def get_config(self):
        config = super().get_config()
        config.update(mask_ratio=self.mask_ratio, seed=self.seed)
        return config
