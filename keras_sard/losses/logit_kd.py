"""The logit baselines of the paper's tables as Distiller losses (spec §3).

Three published methods that distil the teacher's class scores, run by the
same `keras_sard.Distiller` on the same data and schedule as SARD (the
feature baseline, MGD, is `keras_sard.losses.mgd`):

- `LogitKD` (vanilla KD, Hinton et al.): per-pixel KL between the teacher's
  and the student's class distributions at temperature T.
- `ChannelWiseKD` (CWD, Shu et al. 2021): per-channel KL between spatial
  distributions, softmax over H·W at temperature τ.
- `DecoupledKD` (DKD, Zhao et al. 2022): per-pixel KL split into the target
  class's share (TCKD) and the distribution over the other classes (NCKD).

The logit losses read the models' outputs (``teacher_layers=None``) or one
named logits layer of each model; the student's logits are resized
bilinearly to the teacher's H×W where they differ.  Everything is float32
under any mixed-precision policy, and every KL term is computed from
log-softmaxes (no log of a softmax, no division), so logits of order 1e3
stay finite in value and gradient.

Choices where the methods leave something open (each is an argument or
documented rule):

- One output channel (binary masks, read through a sigmoid as by the task
  loss) is taken as the two-class logits ``[0, z]``, so ``softmax`` gives
  ``(1 − σ(z), σ(z))``; KD and DKD then compare Bernoulli distributions.
- Labels whose size differs from the teacher's logits are sampled at the
  centres of the logit grid (nearest neighbour): the losses are computed on
  the teacher's grid and the labels only mark which of its pixels count (and,
  for DKD, their class).
"""

import keras
from keras import ops

from keras_sard.losses.base import DistillationLoss
from keras_sard.maps import prepare_labels, resize_like
from keras_sard.validation import (IGNORE_LABEL, check_ignore_label, check_number, check_rank4,
                                   check_weight)

__all__ = ["LogitKD", "ChannelWiseKD", "DecoupledKD"]


def _as_two_classes(logits):
    """(…, 1) sigmoid logits z as the softmax logits [0, z]; others unchanged."""
    if logits.shape[-1] == 1:
        return ops.concatenate([ops.zeros_like(logits), logits], axis=-1)
    return logits


def _kl(log_p, log_q, axis):
    """Σ p·(log p − log q) along `axis`, from log-probabilities."""
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=axis)


def labels_on_grid(labels, size):
    """Integer labels (B, H, W) sampled at the pixel centres of an (h, w) grid.

    Pixel ``i`` of the grid takes the label at row ``floor((i + ½)·H/h)`` (and
    likewise for columns): nearest-neighbour resampling that never mixes
    class ids.  Labels already of size (h, w) are returned unchanged.
    """
    labels = prepare_labels(labels)
    size = tuple(size)
    if tuple(labels.shape[1:3]) == size and None not in size:
        return labels
    source = ops.shape(labels)
    for axis, target in ((1, size[0]), (2, size[1])):
        index = (ops.arange(0, target, dtype="float32") + 0.5) * (
            ops.cast(source[axis], "float32") / ops.cast(target, "float32")
        )
        index = ops.minimum(ops.cast(ops.floor(index), "int32"), source[axis] - 1)
        labels = ops.take(labels, index, axis=axis)
    return labels


class _LogitLoss(DistillationLoss):
    """Shared parts of the losses that read logits (B, H, W, K)."""

    def __init__(self, teacher_layers=None, student_layers=None, weight=1.0,
                 temperature=1.0, **kwargs):
        super().__init__(teacher_layers, student_layers, weight=weight, **kwargs)
        if self.teacher_layers is not None and len(self.teacher_layers) != 1:
            raise ValueError(
                f"{type(self).__name__} reads one logits map per model: `teacher_layers` "
                "and `student_layers` must be None (the models' outputs) or name one "
                f"layer each; got {self.teacher_layers!r} and {self.student_layers!r}."
            )
        self.temperature = check_number(temperature, "temperature", inclusive=False)

    def build(self, teacher_outputs_shape, student_outputs_shape):
        shapes = []
        for argument, outputs in (
            ("teacher_outputs", teacher_outputs_shape),
            ("student_outputs", student_outputs_shape),
        ):
            if len(outputs) != 1:
                raise ValueError(
                    f"`{argument}` must hold one logits map; got {len(outputs)}."
                )
            shapes.append(check_rank4(outputs[0], argument))
        if shapes[0][-1] != shapes[1][-1]:
            raise ValueError(
                "The teacher's and the student's logits must have the same number of "
                f"classes; got teacher logits {shapes[0]} and student logits {shapes[1]}."
            )

    def logits(self, teacher_outputs, student_outputs):
        """Teacher logits (no gradient) and student logits at the teacher's
        H×W, float32, each divided by the temperature."""
        (teacher,), (student,) = teacher_outputs, student_outputs
        if teacher.shape[-1] != student.shape[-1]:
            raise ValueError(
                "The teacher's and the student's logits must have the same number of "
                f"classes; got {tuple(teacher.shape)} and {tuple(student.shape)}."
            )
        teacher = ops.stop_gradient(ops.cast(teacher, "float32"))
        student = resize_like(ops.cast(student, "float32"), teacher)
        return teacher / self.temperature, student / self.temperature

    def compute_output_shape(self, *args, **kwargs):
        return {name: () for name in self.term_names}

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config


def _grid_size(x):
    """The spatial size (H, W) of (B, H, W, K), static where known."""
    size = tuple(x.shape[1:3])
    return tuple(ops.shape(x)[1:3]) if None in size else size


def _valid_mean(per_pixel, valid):
    """Mean of (B, H, W) over the pixels where `valid` (float 0/1) is 1; 0 if none."""
    if valid is None:
        return ops.mean(per_pixel)
    return ops.sum(valid * per_pixel) / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package="keras_sard")
class LogitKD(_LogitLoss):
    """Vanilla logit KD: ``T²·KL(softmax(z_T/T) ‖ softmax(z_S/T))`` per pixel.

    The KL is over the classes, then averaged over the pixels of the
    teacher's logit grid; where labels are given, pixels labelled
    ``ignore_label`` are left out of the mean (labels are not otherwise used).

    Args:
        temperature: T > 0 (1.0).
        weight: the loss weight (1.0).
        ignore_label: label value left out of the mean (255), or None.
        teacher_layers, student_layers: None (the models' logits, the
            default) or one logits layer name each.
        name: the logged term (``"kd"``).

    Example::

        import numpy as np
        from keras_sard.losses import LogitKD
        teacher = np.random.randn(2, 8, 8, 3).astype("float32")
        student = np.random.randn(2, 4, 4, 3).astype("float32")  # resized to 8×8
        LogitKD(temperature=2.0)([teacher], [student])["kd"]
    """

    def __init__(self, temperature=1.0, weight=1.0, ignore_label=IGNORE_LABEL,
                 teacher_layers=None, student_layers=None, **kwargs):
        kwargs.setdefault("name", "kd")
        super().__init__(teacher_layers, student_layers, weight=weight,
                         temperature=temperature, **kwargs)
        self.ignore_label = check_ignore_label(ignore_label)

    def call(self, teacher_outputs, student_outputs, labels=None):
        teacher, student = self.logits(teacher_outputs, student_outputs)
        teacher, student = _as_two_classes(teacher), _as_two_classes(student)
        per_pixel = _kl(ops.log_softmax(teacher, axis=-1), ops.log_softmax(student, axis=-1), -1)
        valid = None
        if labels is not None and self.ignore_label is not None:
            labels = labels_on_grid(labels, _grid_size(teacher))
            valid = ops.cast(ops.not_equal(labels, self.ignore_label), "float32")
        value = self.temperature**2 * _valid_mean(per_pixel, valid)
        return {self.name: self.weight * value}

    def get_config(self):
        config = super().get_config()
        config.update(ignore_label=self.ignore_label)
        return config


@keras.saving.register_keras_serializable(package="keras_sard")
class ChannelWiseKD(_LogitLoss):
    """Channel-wise distillation (CWD): each class channel as a spatial distribution.

    For every image and channel, ``softmax`` over the H·W positions of
    ``z/τ``; the loss is ``τ²·KL(teacher ‖ student)`` summed over H·W, averaged
    over images and channels.  Label-free: every pixel counts.

    Args:
        temperature: τ > 0 (4.0).
        weight: the loss weight (3.0).
        teacher_layers, student_layers: None (the models' logits) or one
            layer name each.
        name: the logged term (``"cwd"``).

    Example::

        import numpy as np
        from keras_sard.losses import ChannelWiseKD
        teacher = np.random.randn(2, 8, 8, 3).astype("float32")
        student = np.random.randn(2, 8, 8, 3).astype("float32")
        ChannelWiseKD()([teacher], [student])["cwd"]
    """

    def __init__(self, temperature=4.0, weight=3.0, teacher_layers=None,
                 student_layers=None, **kwargs):
        kwargs.setdefault("name", "cwd")
        super().__init__(teacher_layers, student_layers, weight=weight,
                         temperature=temperature, **kwargs)

    def call(self, teacher_outputs, student_outputs, labels=None):
        teacher, student = self.logits(teacher_outputs, student_outputs)
        channels = teacher.shape[-1]
        teacher = ops.reshape(teacher, (ops.shape(teacher)[0], -1, channels))
        student = ops.reshape(student, (ops.shape(student)[0], -1, channels))
        per_channel = _kl(ops.log_softmax(teacher, axis=1), ops.log_softmax(student, axis=1), 1)
        value = self.temperature**2 * ops.mean(per_channel)
        return {self.name: self.weight * value}


@keras.saving.register_keras_serializable(package="keras_sard")
class DecoupledKD(_LogitLoss):
    """Decoupled KD (DKD): ``T²·(α·TCKD + β·NCKD)`` per valid pixel.

    With t the pixel's label and p = softmax(z/T):

    - TCKD = KL between the binary distributions ``(p_t, 1 − p_t)`` of
      teacher and student;
    - NCKD = KL between the distributions over the classes other than t,
      ``p_k / (1 − p_t)``, k ≠ t.

    Both come from log-sum-exps of the logits (``log(1 − p_t)`` is the
    log-sum-exp of the other classes minus that of all), never from the log
    of a probability, so a student that is certain of a pixel gives finite
    values and gradients.  Averaged over the pixels not labelled
    ``ignore_label`` (masked before the one-hot).  With one class channel
    there are no other classes and NCKD is 0.

    Args:
        alpha: α ≥ 0, the TCKD weight (1.0).
        beta: β ≥ 0, the NCKD weight (2.0).
        temperature: T > 0 (1.0).
        weight: the loss weight (1.0).
        ignore_label: label value that counts nowhere (255), or None.
        teacher_layers, student_layers: None (the models' logits) or one
            layer name each.
        name: the logged term (``"dkd"``).

    Needs labels (``requires_labels``).

    Example::

        import numpy as np
        from keras_sard.losses import DecoupledKD
        teacher = np.random.randn(2, 8, 8, 4).astype("float32")
        student = np.random.randn(2, 8, 8, 4).astype("float32")
        labels = np.random.randint(0, 4, size=(2, 8, 8))
        DecoupledKD()([teacher], [student], labels=labels)["dkd"]
    """

    requires_labels = True

    def __init__(self, alpha=1.0, beta=2.0, temperature=1.0, weight=1.0,
                 ignore_label=IGNORE_LABEL, teacher_layers=None, student_layers=None, **kwargs):
        kwargs.setdefault("name", "dkd")
        super().__init__(teacher_layers, student_layers, weight=weight,
                         temperature=temperature, **kwargs)
        self.alpha = check_weight(alpha, "alpha")
        self.beta = check_weight(beta, "beta")
        self.ignore_label = check_ignore_label(ignore_label)

    @staticmethod
    def _log_parts(logits, is_target):
        """log p_t, log(1 − p_t) and the log-probabilities over the other
        classes (the target's entry is meaningless), each from logsumexps."""
        log_all = ops.logsumexp(logits, axis=-1)
        # The target's logit replaced by one far below every other logit:
        # it adds exp(−200) ≈ 0 to the sum, stays finite and gets no gradient.
        fill = ops.stop_gradient(ops.min(logits, axis=-1, keepdims=True) - 200.0)
        others = ops.where(is_target, fill, logits)
        log_others = ops.logsumexp(others, axis=-1)
        log_target = ops.sum(ops.where(is_target, logits, 0.0), axis=-1) - log_all
        return log_target, log_others - log_all, others - log_others[..., None]

    def call(self, teacher_outputs, student_outputs, labels=None):
        if labels is None:
            raise ValueError(
                f"DecoupledKD ({self.name!r}) needs the ground-truth `labels`; got None."
            )
        teacher, student = self.logits(teacher_outputs, student_outputs)
        teacher, student = _as_two_classes(teacher), _as_two_classes(student)
        labels = labels_on_grid(labels, _grid_size(teacher))
        valid = None
        if self.ignore_label is not None:
            valid = ops.not_equal(labels, self.ignore_label)
            labels = ops.where(valid, labels, 0)  # ignore pixels masked before the one-hot
            valid = ops.cast(valid, "float32")
        is_target = ops.one_hot(labels, teacher.shape[-1], dtype="float32") > 0.5

        t_target, t_rest, t_others = self._log_parts(teacher, is_target)
        s_target, s_rest, s_others = self._log_parts(student, is_target)
        tckd = ops.exp(t_target) * (t_target - s_target) + ops.exp(t_rest) * (t_rest - s_rest)
        nckd = ops.sum(
            ops.where(is_target, 0.0, ops.exp(t_others) * (t_others - s_others)), axis=-1
        )
        per_pixel = self.temperature**2 * (self.alpha * tckd + self.beta * nckd)
        value = _valid_mean(per_pixel, valid)
        return {self.name: self.weight * value}

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, beta=self.beta, ignore_label=self.ignore_label)
        return config
