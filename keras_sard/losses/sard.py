"""SARD's losses: structure-weighted feature consistency and distribution
alignment (spec §2; the supplement's Eq. 25–26 and the main text's Eq. 11, 13).

Per tapped level, with W the teacher's structure weights (`StructureWeights`):

- ``L_FC = mean_b Σ_i W(i) · mean_c (F̂_S − F̂_T)²`` with ``F̂_S = P_S(F_S)``
  (a trainable 1×1 conv to the teacher's channels, resized bilinearly to the
  teacher's H×W) and ``F̂_T = P_T(F_T)`` (identity, or a frozen 1×1).
- ``L_DA = mean_b Σ_i W(i) · mean_c (g_θ(concat(F̂_S, F̃_T)) − ε)²`` with
  ``F̃_T = sqrt(α)·F̂_T + sqrt(1 − α)·ε``, ε ~ N(0, I): denoising score matching.

`SARDLoss` is what the Distiller uses: it taps several levels, gives each its
own W, P_S and g_θ, averages over levels and weights the two terms.
"""

import inspect

import keras
from keras import ops

from keras_sard.backend import batch_normal
from keras_sard.losses.base import DistillationLoss, SeedStateSaving
from keras_sard.losses.heads import DenoisingHead
from keras_sard.maps import resize_like
from keras_sard.structure import StructureWeights
from keras_sard.validation import (check_choice, check_int, check_number, check_rank4,
                                   check_seed, check_weight)

__all__ = [
    "weighted_squared_error",
    "DenoisingHead",
    "FeatureConsistencyLoss",
    "DistributionAlignmentLoss",
    "SARDLoss",
]

TEACHER_PROJECTIONS = ("identity", "frozen")
WEIGHTINGS = ("structure", "uniform")
# The per-pixel error over channels: "mean" (an O(1) term next to the task
# loss at the paper's λ = 1, whatever C_T) or "sum" (grows with C_T).
CHANNEL_REDUCTIONS = ("mean", "sum")
# What g_θ sees: "concat" = concat(F̂_S, F̃_T), or "student" = F̂_S alone
# (the literal summary, under which g_θ cannot predict the noise).
DENOISER_INPUTS = ("concat", "student")
# g_θ's hidden width by default: the paper's 128, capped at the teacher's
# channels C_T (a narrow teacher's heads would otherwise outweigh it).
MAX_HIDDEN_CHANNELS = 128


def weighted_squared_error(target, prediction, weights=None, channel_reduction="mean"):
    """``mean_b Σ_i W(i) · mean_c (prediction − target)²``, float32.

    Args:
        target, prediction: (B, H, W, C).
        weights: (B, H, W), each image summing to 1; None for uniform weights
            1/(H·W), i.e. the plain mean squared error.
        channel_reduction: ``"mean"`` over channels (above) or ``"sum"``.
    """
    check_choice(channel_reduction, CHANNEL_REDUCTIONS, "channel_reduction")
    target = ops.cast(target, "float32")
    prediction = ops.cast(prediction, "float32")
    reduce = ops.mean if channel_reduction == "mean" else ops.sum
    error = reduce(ops.square(prediction - target), axis=-1)
    if weights is None:
        return ops.mean(error)
    weights = ops.cast(weights, "float32")
    return ops.mean(ops.sum(weights * error, axis=(1, 2)))


@keras.saving.register_keras_serializable(package="keras_sard")
class FeatureConsistencyLoss(keras.layers.Layer):
    """L_FC at one level: structure-weighted MSE of projected features.

    Args:
        teacher_channels: C_T, the channels P_S projects to; None takes them
            from the teacher features at build.  A teacher map with another
            channel count is an error.
        teacher_projection: ``"identity"`` (P_T = I, the default) or
            ``"frozen"`` (a fixed random orthogonal 1×1 conv).  A trainable P_T
            under an MSE can shrink both sides to zero, so none is offered.
        channel_reduction: the squared error's ``"mean"`` over channels (the
            default) or ``"sum"`` (see `weighted_squared_error`).

    Call ``loss(teacher_features, student_features, weights=None)``: weights
    (B, H, W) from `StructureWeights`, or None for uniform.  Returns a float32
    scalar.  Student features of another spatial size are resized to the
    teacher's after projection.

    Example::

        import numpy as np
        from keras_sard.losses import FeatureConsistencyLoss
        from keras_sard.structure import StructureWeights
        teacher = np.random.rand(2, 16, 16, 32).astype("float32")
        student = np.random.rand(2, 8, 8, 12).astype("float32")
        loss = FeatureConsistencyLoss()
        value = loss(teacher, student, StructureWeights(radius=2)(teacher))
    """

    def __init__(self, teacher_channels=None, teacher_projection="identity",
                 channel_reduction="mean", **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.teacher_channels = check_int(teacher_channels, "teacher_channels", allow_none=True)
        self.teacher_projection = check_choice(
            teacher_projection, TEACHER_PROJECTIONS, "teacher_projection")
        self.channel_reduction = check_choice(
            channel_reduction, CHANNEL_REDUCTIONS, "channel_reduction")

    def build(self, teacher_features_shape, student_features_shape):
        teacher_shape = check_rank4(teacher_features_shape, "teacher_features")
        student_shape = check_rank4(student_features_shape, "student_features")
        channels = teacher_shape[-1]
        if self.teacher_channels is not None and self.teacher_channels != channels:
            raise ValueError(
                f"P_S projects the student to `teacher_channels`={self.teacher_channels} "
                f"channels, but `teacher_features` has {channels} (shape {teacher_shape})."
            )
        self.teacher_channels = channels
        self.student_projection = keras.layers.Conv2D(
            channels, 1, name="student_projection", dtype="float32"
        )
        self.student_projection.build(student_shape)
        if self.teacher_projection == "frozen":
            self.teacher_projector = keras.layers.Conv2D(
                channels,
                1,
                use_bias=False,
                kernel_initializer="orthogonal",
                trainable=False,
                name="teacher_projection",
                dtype="float32",
            )
            self.teacher_projector.build(teacher_shape)

    def project(self, teacher_features, student_features):
        """(F̂_T, F̂_S): projected features, the student's at the teacher's H×W."""
        teacher = ops.stop_gradient(ops.cast(teacher_features, "float32"))
        student = ops.cast(student_features, "float32")
        if teacher.shape[-1] != self.teacher_channels:
            raise ValueError(
                f"`teacher_features` has {teacher.shape[-1]} channels; this loss was "
                f"built for `teacher_channels`={self.teacher_channels}."
            )
        if self.teacher_projection == "frozen":
            teacher = self.teacher_projector(teacher)
        return teacher, resize_like(self.student_projection(student), teacher)

    def call(self, teacher_features, student_features, weights=None):
        teacher, student = self.project(teacher_features, student_features)
        return weighted_squared_error(teacher, student, weights, self.channel_reduction)

    def compute_output_shape(self, *args, **kwargs):
        return ()

    def get_config(self):
        config = super().get_config()
        config.update(
            teacher_channels=self.teacher_channels,
            teacher_projection=self.teacher_projection,
            channel_reduction=self.channel_reduction,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_sard")
class DistributionAlignmentLoss(SeedStateSaving, keras.layers.Layer):
    """L_DA at one level: denoising score matching on projected features.

    ``F̃_T = sqrt(α)·F̂_T + sqrt(1 − α)·ε``; the head g_θ sees
    ``concat(F̂_S, F̃_T)`` and predicts ε.  It can only do so where the student
    carries the teacher's content, which is what pulls the two distributions
    together.  (Fed F̂_S alone, g_θ could not predict random noise at all.)

    Args:
        alpha: 0 < α < 1, the signal fraction of the noisy teacher (0.5).
        hidden_channels: width of g_θ's hidden conv; None (the default):
            ``min(128, C_T)``, set at build from the teacher's channels.
        seed: seed of the noise ε (a `keras.random.SeedGenerator`, whose state
            is saved with the weights so a resumed run draws the same noise).
        channel_reduction: ``"mean"`` (default) or ``"sum"`` over channels.
        denoiser_input: ``"concat"`` (default): g_θ sees
            ``concat(F̂_S, F̃_T)``; ``"student"``: F̂_S alone (the literal
            summary of the paper, kept for comparison).

    Call ``loss(teacher_projected, student_projected, weights=None)`` on F̂_T and
    F̂_S of the same shape.  Returns a float32 scalar.

    Example::

        import numpy as np
        from keras_sard.losses import DistributionAlignmentLoss
        teacher = np.random.rand(2, 8, 8, 16).astype("float32")
        loss = DistributionAlignmentLoss(hidden_channels=32, seed=0)
        value = loss(teacher, teacher + 0.1)
    """

    seed_generators_to_save = ("seed_generator",)

    def __init__(self, alpha=0.5, hidden_channels=None, seed=None, channel_reduction="mean",
                 denoiser_input="concat", **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.alpha = check_number(alpha, "alpha", inclusive=False, maximum=1.0)
        self.hidden_channels = check_int(hidden_channels, "hidden_channels", allow_none=True)
        self.seed = check_seed(seed)
        self.channel_reduction = check_choice(
            channel_reduction, CHANNEL_REDUCTIONS, "channel_reduction")
        self.denoiser_input = check_choice(denoiser_input, DENOISER_INPUTS, "denoiser_input")
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")

    def build(self, teacher_projected_shape, student_projected_shape):
        teacher_shape = check_rank4(teacher_projected_shape, "teacher_projected")
        student_shape = check_rank4(student_projected_shape, "student_projected")
        if teacher_shape[-1] != student_shape[-1]:
            raise ValueError(
                "`teacher_projected` and `student_projected` must have the same "
                f"channels (project the student first); got {teacher_shape} and "
                f"{student_shape}."
            )
        hidden = self.hidden_channels or min(MAX_HIDDEN_CHANNELS, teacher_shape[-1])
        self.denoiser = DenoisingHead(teacher_shape[-1], hidden, name="denoiser")
        inputs = 2 if self.denoiser_input == "concat" else 1
        self.denoiser.build(tuple(teacher_shape[:-1]) + (inputs * teacher_shape[-1],))

    def call(self, teacher_projected, student_projected, weights=None):
        teacher = ops.stop_gradient(ops.cast(teacher_projected, "float32"))
        student = ops.cast(student_projected, "float32")
        # One draw per image of the global batch, also under tf.distribute.
        noise = batch_normal(ops.shape(teacher), seed=self.seed_generator)
        noisy = self.alpha**0.5 * teacher + (1.0 - self.alpha) ** 0.5 * noise
        if self.denoiser_input == "concat":
            student = ops.concatenate([student, noisy], axis=-1)
        predicted = self.denoiser(student)
        return weighted_squared_error(noise, predicted, weights, self.channel_reduction)

    def compute_output_shape(self, *args, **kwargs):
        return ()

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, hidden_channels=self.hidden_channels, seed=self.seed,
                      channel_reduction=self.channel_reduction,
                      denoiser_input=self.denoiser_input)
        return config


def _structure_arguments():
    """The arguments of `StructureWeights` (its signature is the one home of
    their defaults)."""
    parameters = inspect.signature(StructureWeights.__init__).parameters.values()
    return tuple(p.name for p in parameters
                 if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD)


STRUCTURE_ARGUMENTS = _structure_arguments()
"""The keyword arguments `SARDLoss` forwards to its `StructureWeights`."""


@keras.saving.register_keras_serializable(package="keras_sard")
class SARDLoss(DistillationLoss):
    """SARD as a Distiller loss: λf·L_FC + λd·L_DA averaged over tapped levels.

    Args:
        teacher_layers, student_layers: the layers to tap, one pair per level
            (e.g. the four backbone levels of strides 4–32).  Each level gets
            its own W, P_S and g_θ.
        feature_weight: λf (1.0).  alignment_weight: λd (0.5); 0 drops L_DA
            and its heads.
        weighting: ``"structure"`` (W from the teacher) or ``"uniform"``
            (W = 1/N; the paper's "Uniform SARD" ablation row).
        levels: indices into the layer lists to use; None uses all.
        teacher_projection: ``"identity"`` or ``"frozen"`` (see
            `FeatureConsistencyLoss`).
        alpha, hidden_channels, seed, denoiser_input: of
            `DistributionAlignmentLoss` (``hidden_channels=None``: g_θ is
            ``min(128, C_T)`` wide at each level).
        channel_reduction: ``"mean"`` (default) or ``"sum"`` over channels,
            in both terms.
        **kwargs: the structure map's arguments (`STRUCTURE_ARGUMENTS`:
            ``beta_edge``, ``beta_corner``, ``beta_density``, ``scales``,
            ``sigma0``, ``radius``, ``density``, ``normalize``, ``eps``,
            ``padding``), passed to its `StructureWeights` with that class's
            defaults; the paper's Table 3 ablations are β settings, e.g. E
            only is ``beta_corner=0, beta_density=0``.  Other keywords
            (``name`` ...) go to the layer.

    Returns ``{"<name>_fc": λf·mean L_FC, "<name>_da": λd·mean L_DA}``; the
    name is ``"sard"`` unless given, so the logs show ``sard_fc`` and ``sard_da``.

    Example::

        from keras_sard.losses import SARDLoss
        loss = SARDLoss(
            teacher_layers=["teacher_level_1", "teacher_level_2"],
            student_layers=["student_level_1", "student_level_2"],
            beta_density=0.0,  # a StructureWeights argument
        )
        loss.structure.beta_density  # 0.0
    """

    def __init__(
        self,
        teacher_layers,
        student_layers,
        feature_weight=1.0,
        alignment_weight=0.5,
        weighting="structure",
        levels=None,
        *,
        teacher_projection="identity",
        alpha=0.5,
        hidden_channels=None,
        seed=None,
        channel_reduction="mean",
        denoiser_input="concat",
        **kwargs,
    ):
        structure_arguments = {
            key: kwargs.pop(key) for key in STRUCTURE_ARGUMENTS if key in kwargs}
        kwargs.pop("weight", None)  # the two terms carry their own weights
        kwargs.setdefault("name", "sard")
        if teacher_layers is None or student_layers is None:
            raise ValueError(
                "SARD reads feature maps: `teacher_layers` and `student_layers` "
                "must name the layers to tap, one pair per level."
            )
        super().__init__(teacher_layers, student_layers, **kwargs)
        self.all_teacher_layers = self.teacher_layers
        self.all_student_layers = self.student_layers
        num_levels = len(self.teacher_layers)
        if levels is not None:
            levels = tuple(levels)
            if not levels or any(
                not isinstance(i, int) or not 0 <= i < num_levels for i in levels
            ) or len(set(levels)) != len(levels):
                raise ValueError(
                    f"`levels` must be distinct indices in [0, {num_levels}); got {levels!r}."
                )
            self.teacher_layers = tuple(self.teacher_layers[i] for i in levels)
            self.student_layers = tuple(self.student_layers[i] for i in levels)
        self.levels = levels
        self.feature_weight = check_weight(feature_weight, "feature_weight")
        self.alignment_weight = check_weight(alignment_weight, "alignment_weight")
        self.weighting = check_choice(weighting, WEIGHTINGS, "weighting")
        self.structure = StructureWeights(**structure_arguments, name="structure_weights")
        self.teacher_projection = teacher_projection
        self.alpha = alpha
        self.hidden_channels = hidden_channels
        self.seed = seed
        self.channel_reduction = check_choice(
            channel_reduction, CHANNEL_REDUCTIONS, "channel_reduction")
        self.denoiser_input = check_choice(denoiser_input, DENOISER_INPUTS, "denoiser_input")
        self.consistency = [
            FeatureConsistencyLoss(
                teacher_projection=teacher_projection,
                channel_reduction=channel_reduction,
                name=f"fc_level_{i}",
            )
            for i in range(len(self.teacher_layers))
        ]
        self.alignment = []
        if self.alignment_weight > 0:
            self.alignment = [
                DistributionAlignmentLoss(
                    alpha,
                    hidden_channels,
                    None if seed is None else seed + i,
                    channel_reduction=channel_reduction,
                    denoiser_input=denoiser_input,
                    name=f"da_level_{i}",
                )
                for i in range(len(self.teacher_layers))
            ]

    @property
    def term_names(self):
        names = (f"{self.name}_fc", f"{self.name}_da")
        return names if self.alignment else names[:1]

    def build(self, teacher_outputs_shape, student_outputs_shape):
        self.check_level_counts(teacher_outputs_shape, student_outputs_shape)
        for level, (teacher_shape, student_shape) in enumerate(
            zip(teacher_outputs_shape, student_outputs_shape)
        ):
            self.consistency[level].build(teacher_shape, student_shape)
            if self.alignment:
                self.alignment[level].build(teacher_shape, teacher_shape)

    def call(self, teacher_outputs, student_outputs, labels=None):
        consistency = alignment = 0.0
        for level, (teacher, student) in enumerate(zip(teacher_outputs, student_outputs)):
            weights = self.structure(teacher) if self.weighting == "structure" else None
            teacher_hat, student_hat = self.consistency[level].project(teacher, student)
            consistency = consistency + weighted_squared_error(
                teacher_hat, student_hat, weights, self.channel_reduction)
            if self.alignment:
                alignment = alignment + self.alignment[level](teacher_hat, student_hat, weights)
        num_levels = float(len(self.teacher_layers))
        names = self.term_names
        terms = {names[0]: self.feature_weight * consistency / num_levels}
        if self.alignment:
            terms[names[1]] = self.alignment_weight * alignment / num_levels
        return terms

    def compute_output_shape(self, *args, **kwargs):
        return {name: () for name in self.term_names}

    def get_config(self):
        config = super().get_config()
        config.pop("weight", None)
        structure = self.structure.get_config()
        config.update(
            teacher_layers=self.all_teacher_layers,
            student_layers=self.all_student_layers,
            feature_weight=self.feature_weight,
            alignment_weight=self.alignment_weight,
            weighting=self.weighting,
            levels=self.levels,
            teacher_projection=self.teacher_projection,
            alpha=self.alpha,
            hidden_channels=self.hidden_channels,
            seed=self.seed,
            channel_reduction=self.channel_reduction,
            denoiser_input=self.denoiser_input,
            **{key: structure[key] for key in STRUCTURE_ARGUMENTS},
        )
        return config
