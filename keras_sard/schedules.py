"""How a model is trained: the optimiser, the learning rate and the steps.

The paper's optimiser (spec §5): AdamW, learning rate 1e-4, weight decay 0.01,
a cosine decay over all steps, batch 8 with gradients accumulated over 2
steps.  `Schedule` holds these settings; every one can be overridden (a small
model trained from scratch on the synthetic data wants a larger learning
rate, see `SYNTHETIC_SCHEDULE`).  Each recipe of `keras_sard.models.recipes`
names the schedules of its teacher and its student.

This module does not import Keras (`Schedule.optimizer` does, when called),
so the recipe registry and the command line's help can read it.

>>> SYNTHETIC_SCHEDULE.learning_rate, PAPER_SCHEDULE.gradient_accumulation_steps
(0.001, 2)
"""

import dataclasses
import math
from typing import Optional

from keras_sard.validation import check_int

__all__ = ["PAPER_SCHEDULE", "SYNTHETIC_SCHEDULE", "SYNTHETIC_TEACHER_SCHEDULE", "Schedule"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How one model is trained.

    Args:
        epochs: passes of ``steps_per_epoch`` steps.
        steps_per_epoch: None: one pass over the training set
            (``num_examples // batch_size`` steps, at least 1).
        batch_size: images per step (8 in the paper).
        learning_rate: the peak of the cosine decay (1e-4).
        weight_decay: AdamW's decoupled weight decay (0.01).
        gradient_accumulation_steps: steps whose gradients are averaged
            before one update (2 in the paper: an effective batch of 16);
            1 for none.
        recalibrate_batchnorm: after training, re-estimate the model's
            BatchNorm statistics on training images before it is scored,
            saved or exported (`keras_sard.training.fair_batchnorm`): None
            (auto) where the schedule is short for the model's BatchNorm
            momentum (`keras_sard.batchnorm.has_stale_batchnorm`), True
            always, False never.
        recalibration_batches: how many training batches (of
            ``batch_size``) the statistics are averaged over (16).

    The learning rate decays from ``learning_rate`` to 0 along a cosine over
    all ``epochs * steps_per_epoch`` steps.

    >>> Schedule().learning_rate, Schedule().gradient_accumulation_steps
    (0.0001, 2)
    >>> Schedule(batch_size=4).steps(num_examples=10)
    2
    """

    epochs: int = 1
    steps_per_epoch: Optional[int] = None
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    gradient_accumulation_steps: int = 2
    recalibrate_batchnorm: Optional[bool] = None
    recalibration_batches: int = 16

    def __post_init__(self):
        check_int(self.epochs, "epochs")
        check_int(self.steps_per_epoch, "steps_per_epoch", allow_none=True)
        check_int(self.batch_size, "batch_size")
        check_int(self.gradient_accumulation_steps, "gradient_accumulation_steps")
        check_int(self.recalibration_batches, "recalibration_batches")
        if not any(self.recalibrate_batchnorm is v for v in (None, True, False)):
            raise ValueError("`recalibrate_batchnorm` must be None (auto), True or False; got "
                             f"{self.recalibrate_batchnorm!r}.")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < math.inf):
            raise ValueError(f"`learning_rate` must be a number > 0; got {self.learning_rate!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < math.inf):
            raise ValueError(f"`weight_decay` must be a number ≥ 0; got {self.weight_decay!r}.")

    def replace(self, **changes):
        """A copy with `changes`; None values leave a setting as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def steps(self, num_examples):
        """Steps per epoch for a training set of `num_examples`."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return max(1, int(num_examples) // self.batch_size)

    def optimizer(self, total_steps):
        """AdamW with a cosine decay to 0 over `total_steps` steps.

        With gradient accumulation Keras counts every step (not every
        update) in the schedule, so `total_steps` is the number of batches.
        """
        import keras  # here, not at the top: the recipe registry reads this module keras-free

        learning_rate = keras.optimizers.schedules.CosineDecay(
            float(self.learning_rate), decay_steps=max(1, int(total_steps)))
        accumulate = self.gradient_accumulation_steps
        return keras.optimizers.AdamW(
            learning_rate=learning_rate,
            weight_decay=float(self.weight_decay),
            gradient_accumulation_steps=accumulate if accumulate > 1 else None,
        )


PAPER_SCHEDULE = Schedule()
"""The paper's optimiser: AdamW 1e-4, weight decay 0.01, cosine, batch 8, accumulation 2."""

SYNTHETIC_SCHEDULE = Schedule(epochs=12, learning_rate=1e-3, gradient_accumulation_steps=1)
"""For a student of the "small" recipe from random weights on 64 synthetic
images: 96 steps of batch 8, a larger learning rate and no accumulation (with
so few steps, halving the number of updates costs more than the larger batch
gives)."""

SYNTHETIC_TEACHER_SCHEDULE = SYNTHETIC_SCHEDULE.replace(epochs=36)
"""The teacher's: three times the students' steps, so it has something to teach."""
