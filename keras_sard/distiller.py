"""The Distiller: a Keras model that trains a student against a frozen teacher.

One training step runs the teacher once (inference mode, no gradient) and the
student once, reads every tapped feature map from those two passes, and
minimises

    L = μ·L_task + Σ (each distillation loss's weighted terms)

over the student's weights and the distillation losses' own (P_S, g_θ, ...).
The step itself is overridden once per backend in `keras_sard.backend`; the
rest is shared `keras.ops` code here.

Example::

    import keras, numpy as np
    from keras_sard import Distiller
    from keras_sard.losses import SARDLoss
    from keras_sard.metrics import BoundaryIoU, MeanIoU

    def segmenter(width, name):
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                name=f"{name}_features")(inputs)
        return keras.Model(inputs, keras.layers.Conv2D(2, 1)(x), name=name)

    teacher, student = segmenter(16, "teacher"), segmenter(8, "student")
    distiller = Distiller(
        teacher, student,
        distillation_losses=[SARDLoss(["teacher_features"], ["student_features"],
                                      radius=2, hidden_channels=16)],
    )
    distiller.compile(optimizer="adamw", metrics=[MeanIoU(2), BoundaryIoU(2)])
    x = np.random.rand(8, 32, 32, 3).astype("float32")
    y = np.random.randint(0, 2, size=(8, 32, 32))
    distiller.fit(x, y, epochs=1, batch_size=4, verbose=0)
    trained_student = distiller.student
"""

import keras
from keras import ops, tree

from keras_sard.backend import steps
from keras_sard.losses.base import DistillationLoss, check_weight
from keras_sard.losses.task import SegmentationLoss, prepare_labels
from keras_sard.taps import FeatureTaps

__all__ = ["Distiller"]


def _input_shapes(model):
    try:
        return [tuple(t.shape) for t in tree.flatten(model.inputs)]
    except (AttributeError, ValueError, TypeError):
        return None


def _check_inputs_compatible(teacher, student):
    teacher_shapes, student_shapes = _input_shapes(teacher), _input_shapes(student)
    if teacher_shapes is None or student_shapes is None:
        return
    compatible = len(teacher_shapes) == len(student_shapes) and all(
        len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a[1:], b[1:]))
        for a, b in zip(teacher_shapes, student_shapes)
    )
    if not compatible:
        raise ValueError(
            "The teacher and the student must take the same input: the teacher "
            f"expects {teacher_shapes}, the student {student_shapes} (batch first, "
            "None = any size)."
        )


def _output_shape(model, role):
    try:
        outputs = tree.flatten(model.outputs)
    except (AttributeError, ValueError):
        return None
    if len(outputs) != 1:
        raise ValueError(
            f"The {role} must have one output, the segmentation logits; it has "
            f"{len(outputs)}."
        )
    return tuple(outputs[0].shape)


@keras.saving.register_keras_serializable(package="keras_sard")
class Distiller(keras.Model):
    """Distil a frozen teacher into a student with a custom training step.

    Args:
        teacher: a Keras model (functional or Sequential), already trained.
            It is frozen (``teacher.trainable = False``) and always runs in
            inference mode.
        student: the Keras model to train; same input as the teacher.
        distillation_losses: `keras_sard.losses.DistillationLoss` instances
            (SARD, the baselines, or several at once).  Each names the layers
            it reads; nested layers are reached by path (``"backbone/stage_1"``)
            or by a unique bare name.  Empty: the student trains on the task
            loss alone ("scratch").
        task_loss: the supervised loss on the student's logits
            (`SegmentationLoss()` by default), or any Keras loss called as
            ``loss(labels, logits, sample_weight)``.
        task_loss_weight: μ (1.0).

    The total ``loss`` and every term (``task_loss``, ``sard_fc``, ...) are
    logged separately, together with the metrics passed to `compile`.
    ``call`` returns the student's prediction; ``distiller.student`` is the
    trained model.  Labels may be omitted (``fit(x)``): then the task loss is
    left out, and only label-free distillation losses (such as SARD) apply.

    Errors at construction: teacher and student with incompatible inputs; a
    tapped layer that does not exist (with the closest names); a tapped map
    a loss cannot read (wrong rank, channels that do not match its
    arguments), naming both layers and their shapes.
    """

    def __init__(
        self,
        teacher,
        student,
        distillation_losses=(),
        task_loss=None,
        task_loss_weight=1.0,
        name="distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model):
                raise TypeError(f"`{role}` must be a keras.Model; got {type(model).__name__}.")
        if teacher is student:
            raise ValueError("`teacher` and `student` must be two different models.")
        _check_inputs_compatible(teacher, student)
        losses = list(distillation_losses or ())
        for loss in losses:
            if not isinstance(loss, DistillationLoss):
                raise TypeError(
                    "`distillation_losses` must hold keras_sard.losses.DistillationLoss "
                    f"instances (SARDLoss, LogitKD, ...); got {type(loss).__name__}. "
                    "The supervised loss goes in `task_loss`."
                )
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.distillation_losses = losses
        self.task_loss = task_loss if task_loss is not None else SegmentationLoss()
        self.task_loss_weight = check_weight(task_loss_weight, "task_loss_weight")
        self._teacher_taps = FeatureTaps(
            teacher, [n for loss in losses for n in (loss.teacher_layers or ())], "teacher"
        )
        self._student_taps = FeatureTaps(
            student, [n for loss in losses for n in (loss.student_layers or ())], "student"
        )
        self._build_losses()
        names = ["task_loss"] + [n for loss in losses for n in loss.term_names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Two distillation losses log the same term names {duplicates}; give "
                "each loss its own `name`."
            )
        self.term_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        # Every variable exists now (teacher, student, losses built above).
        # Saying so makes saving record it, so loading restores the optimizer
        # state too instead of skipping it as "unbuilt".
        self.built = True

    # ------------------------------------------------------------------ build

    def _build_losses(self):
        teacher_shapes = self._teacher_taps.output_shapes()
        student_shapes = self._student_taps.output_shapes()
        teacher_logits = _output_shape(self.teacher, "teacher")
        student_logits = _output_shape(self.student, "student")
        for loss in self.distillation_losses:
            if loss.teacher_layers is None:
                pairs = [("teacher logits", teacher_logits, "student logits", student_logits)]
            else:
                pairs = [
                    (f"teacher layer {t!r}", teacher_shapes[t], f"student layer {s!r}", student_shapes[s])
                    for t, s in zip(loss.teacher_layers, loss.student_layers)
                ]
            if loss.built:
                continue
            if any(shape is None for pair in pairs for shape in pair[1::2]):
                raise ValueError(
                    f"Cannot infer the shapes the loss {loss.name!r} reads ({pairs}). "
                    "Use functional or Sequential models built on a keras.Input, or "
                    "build the loss yourself: loss.build(teacher_shapes, student_shapes)."
                )
            try:
                loss.build([p[1] for p in pairs], [p[3] for p in pairs])
            except ValueError as error:
                described = "; ".join(f"{a} {sa} → {b} {sb}" for a, sa, b, sb in pairs)
                raise ValueError(
                    f"The distillation loss {loss.name!r} cannot read what it taps "
                    f"({described}): {error}"
                ) from error

    # ------------------------------------------------------------ shared step

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_distillation(self, x, y=None, sample_weight=None, training=False):
        """One teacher and one student forward pass and every loss term.

        Returns ``(total, terms, student_logits)`` with `terms` a dict of
        float32 scalars (weights applied) whose sum is `total`.
        """
        with steps.inference_scope(), self._teacher_taps.record() as teacher_features:
            teacher_logits = self.teacher(x, training=False)
        teacher_logits = ops.stop_gradient(teacher_logits)
        teacher_features = {k: ops.stop_gradient(v) for k, v in teacher_features.items()}
        with self._student_taps.record() as student_features:
            student_logits = self.student(x, training=training)

        labels = None if y is None else prepare_labels(y)
        terms = {}
        if labels is not None:
            terms["task_loss"] = self.task_loss_weight * ops.cast(
                self.task_loss(labels, student_logits, sample_weight), "float32"
            )
        for loss in self.distillation_losses:
            if loss.teacher_layers is None:
                teacher_outputs, student_outputs = [teacher_logits], [student_logits]
            else:
                teacher_outputs = [teacher_features[n] for n in loss.teacher_layers]
                student_outputs = [student_features[n] for n in loss.student_layers]
            if loss.requires_labels and labels is None:
                raise ValueError(
                    f"The distillation loss {loss.name!r} needs labels; the data gave none."
                )
            terms.update(loss(teacher_outputs, student_outputs, labels=labels))
        total = sum(terms.values()) if terms else ops.zeros((), "float32")
        return total, terms, student_logits

    def record_step(self, total, terms, x, y, y_pred, sample_weight=None):
        """Update the loss trackers and compiled metrics; return the logs."""
        batch = ops.shape(tree.flatten(x)[0])[0]
        self._loss_tracker.update_state(total, sample_weight=batch)
        for name, value in terms.items():
            self.term_trackers[name].update_state(value, sample_weight=batch)
        if y is None:
            if self._compile_metrics is not None:
                raise ValueError(
                    "The metrics passed to compile() need labels, and the data gave "
                    "none; compile without metrics to distil on unlabelled images."
                )
            return {m.name: m.result() for m in [self._loss_tracker, *self.term_trackers.values()]}
        return self.compute_metrics(x, y, y_pred, sample_weight)

    # ------------------------------------------------- the per-backend steps

    def train_step(self, *args):
        return steps.train_step(self, *args)

    def test_step(self, *args):
        return steps.test_step(self, *args)

    # ------------------------------------------------------------- compile

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """`keras.Model.compile` without `loss`: the Distiller's loss is its
        `task_loss` and `distillation_losses`."""
        if loss is not None:
            raise ValueError(
                "A Distiller computes its own loss: pass the supervised loss as "
                "`Distiller(..., task_loss=...)`, not `compile(loss=...)`."
            )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # What Keras does for models that keep its own `compile` (it skips
        # models that override it): restore the optimizer and the metrics.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ---------------------------------------------------------------- config

    def get_config(self):
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "distillation_losses": [
                keras.saving.serialize_keras_object(loss) for loss in self.distillation_losses
            ],
            "task_loss": keras.saving.serialize_keras_object(self.task_loss),
            "task_loss_weight": self.task_loss_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("teacher", "student", "task_loss"):
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects)
        config["distillation_losses"] = [
            keras.saving.deserialize_keras_object(c, custom_objects)
            for c in config["distillation_losses"]
        ]
        return cls(**config)
