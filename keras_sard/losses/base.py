"""The contract between a distillation loss and the `Distiller`.

A distillation loss is a Keras layer, so whatever it owns (projections,
denoising heads, generators, random seeds) is tracked, trained by the
Distiller's optimizer and saved with it.  It declares what it reads:

- ``teacher_layers`` / ``student_layers``: names of the layers whose outputs it
  needs, level by level (nested names such as ``"backbone/stage_1"`` are
  allowed).  ``None`` means the model's own output, the logits.
- ``requires_labels``: whether it needs the ground-truth labels.

and returns its terms by name, each already multiplied by its weight, so the
Distiller adds them to the total and logs each one.
"""

import keras

from keras_sard.validation import check_weight


class SeedStateSaving:
    """Mixin for layers that draw random numbers (L_DA's noise, MGD's masks).

    Keras saves a layer's weights but not the state of its
    `keras.random.SeedGenerator`s, so a reloaded or resumed
    (``BackupAndRestore``) model would restart its random stream from the seed
    and diverge from an uninterrupted run.  This saves each generator's state
    beside the weights.  The layer lists its generators in
    ``seed_generators_to_save``.
    """

    seed_generators_to_save = ()

    def _seed_state_keys(self):
        return [f"seed_state_{i}" for i in range(len(self.seed_generators_to_save))]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for key, name in zip(self._seed_state_keys(), self.seed_generators_to_save):
            store[key] = keras.ops.convert_to_numpy(getattr(self, name).state.value)

    def load_own_variables(self, store):
        seed_keys = self._seed_state_keys()
        keys = list(store.keys())
        super().load_own_variables({k: store[k] for k in keys if k not in seed_keys})
        for key, name in zip(seed_keys, self.seed_generators_to_save):
            if key in keys:  # files saved before the state was saved lack it
                getattr(self, name).state.assign(store[key])


def as_names(names, argument):
    """A tuple of layer names, or None; `argument` names the caller's argument."""
    if names is None:
        return None
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"`{argument}` must be a non-empty sequence of layer names; got {names!r}."
        )
    return names


class DistillationLoss(keras.layers.Layer):
    """Base class of the losses a `keras_sard.Distiller` applies.

    Args:
        teacher_layers: names of the teacher layers to read, or None for the
            teacher's output (logits).
        student_layers: the matching student layers, or None for its logits.
        weight: multiplies every term this loss returns.

    Subclasses implement ``call(teacher_outputs, student_outputs, labels=None)``
    where the outputs are lists (one tensor per tapped layer, or the single
    logits tensor), and return ``{term_name: scalar}``, weights applied.
    Computation is float32 whatever the mixed-precision policy.
    """

    requires_labels = False

    def __init__(self, teacher_layers=None, student_layers=None, weight=1.0, **kwargs):
        # Losses are computed in float32 under any policy (spec §3, §1.7).
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.teacher_layers = as_names(teacher_layers, "teacher_layers")
        self.student_layers = as_names(student_layers, "student_layers")
        if (self.teacher_layers is None) != (self.student_layers is None) or (
            self.teacher_layers is not None
            and len(self.teacher_layers) != len(self.student_layers)
        ):
            raise ValueError(
                "`teacher_layers` and `student_layers` must pair up level by level "
                f"(or both be None for the logits); got {self.teacher_layers!r} "
                f"and {self.student_layers!r}."
            )
        self.weight = check_weight(weight, "weight")

    def build(self, teacher_outputs_shape, student_outputs_shape):
        """Create weights from the shapes of what the loss reads (lists, one
        shape per tapped layer or the logits).  The Distiller calls this at
        construction, so every variable exists before a step is traced.
        Losses that own no weights need not override it."""

    def check_level_counts(self, teacher_outputs_shape, student_outputs_shape):
        """Raise unless both lists hold one shape per tapped level (for the
        `build` of a loss that owns weights per level)."""
        expected = len(self.teacher_layers)
        for argument, shapes in (
            ("teacher_outputs", teacher_outputs_shape),
            ("student_outputs", student_outputs_shape),
        ):
            if len(shapes) != expected:
                raise ValueError(
                    f"`{argument}` must hold {expected} feature maps (one per level); "
                    f"got {len(shapes)}."
                )

    @property
    def term_names(self):
        """Names of the terms `call` returns (the Distiller logs them)."""
        return (self.name,)

    def get_config(self):
        config = super().get_config()
        config.update(
            teacher_layers=self.teacher_layers,
            student_layers=self.student_layers,
            weight=self.weight,
        )
        return config
