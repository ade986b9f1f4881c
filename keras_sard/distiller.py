"""The Distiller: a Keras model that trains a student against a frozen teacher.

One training step runs the teacher at most once (inference mode, no
gradient) and the student once, reads every tapped feature map from those two
passes, and minimises

    L = μ·L_task + Σ (each distillation loss's weighted terms)

over the student's weights and the distillation losses' own (P_S, g_θ, ...).
The teacher runs only as far as the losses read: all of it when a loss reads
its logits, up to its deepest tapped layers when they read features only (a
segmenter's decoder is skipped), not at all without a distillation loss.  The
step itself is overridden once per backend in `keras_sard.backend`; the rest
is shared `keras.ops` code here.

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

import math

import keras
from keras import ops, tree

from keras_sard.backend import steps
from keras_sard.losses.base import DistillationLoss, check_weight
from keras_sard.losses.task import SegmentationLoss, prepare_labels
from keras_sard.taps import FeatureTaps
from keras_sard.validation import model_inputs

__all__ = ["Distiller"]


def _input_shapes(model):
    inputs = model_inputs(model)
    return None if inputs is None else [tuple(t.shape) for t in inputs]


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


class _TeacherPass:
    """What the Distiller runs of the teacher: the teacher itself, a model cut
    after its tapped layers (`FeatureTaps.truncated_model`), or None.  Held
    in this plain object, out of Keras' sight: a cut model shares the
    teacher's layers and weights, is derived again at construction (and so
    at loading), and must be neither tracked nor saved."""

    __slots__ = ("model",)

    def __init__(self, model):
        self.model = model


def _teacher_pass(teacher, taps, losses):
    if not losses:
        return None  # "scratch": nothing reads the teacher
    if any(loss.teacher_layers is None for loss in losses):
        return teacher  # its logits are read
    return taps.truncated_model() or teacher


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
    shape = tuple(outputs[0].shape)
    if len(shape) != 4:
        raise ValueError(
            f"The {role} must output segmentation logits of shape (batch, height, "
            f"width, classes) (channels_last); its output has shape {shape}."
        )
    return shape


_LABEL_LOGS = ("invalid_labels", "invalid_labels_min", "invalid_labels_max")


class _InvalidLabels(keras.metrics.Metric):
    """Label pixels seen this epoch that are no class id and not the ignore
    label, and the range of their values.  Its logs never reach the user: the
    Distiller raises a ValueError as soon as the count is non-zero."""

    def __init__(self, name="invalid_labels"):
        super().__init__(name=name, dtype="float32")
        self.count = self.add_variable((), "zeros", name="count")
        # Every replica holds the same (all-gathered) range: read it once.
        self.low = self.add_variable(
            (), keras.initializers.Constant(math.inf), name="low", aggregation="only_first_replica"
        )
        self.high = self.add_variable(
            (), keras.initializers.Constant(-math.inf), name="high", aggregation="only_first_replica"
        )

    def update_state(self, count, low, high):
        self.count.assign_add(count)
        self.low.assign(ops.minimum(self.low, low))
        self.high.assign(ops.maximum(self.high, high))

    def reset_state(self):
        self.count.assign(0.0)
        self.low.assign(math.inf)
        self.high.assign(-math.inf)

    def result(self):
        return dict(zip(_LABEL_LOGS, (ops.convert_to_tensor(v) for v in (self.count, self.low, self.high))))


def _raise_on_invalid_labels(logs, num_classes, ignore_label):
    if not isinstance(logs, dict):
        return
    values = [logs.pop(key, None) for key in _LABEL_LOGS]
    if values[0] is None or not float(values[0]) > 0:
        return
    low, high = (float(v) for v in values[1:])
    span = f" (their values span [{low:g}, {high:g}])" if math.isfinite(low) else ""
    classes = "" if num_classes is None else f" in [0, {num_classes})"
    ignore = "" if ignore_label is None else f" or the ignore label {ignore_label}"
    raise ValueError(
        f"Labels must be integer class ids{classes}{ignore}; this batch holds "
        f"pixels that are not{span}. The step was not applied. Map the dataset's "
        "ids to train ids (e.g. Cityscapes' 34 label ids → 19 train ids), give "
        "the student one output channel per class, and keep labels integers."
    )


def _check_metrics_have_labels(model, y):
    if y is None and model._compile_metrics is not None:
        raise ValueError(
            "The metrics passed to compile() need labels, and the data gave "
            "none; compile without metrics to distil on unlabelled images."
        )


def _check_compiled(model, method):
    # Keras' PyTorch trainer reaches the optimizer before checking this.
    if not model.compiled:
        raise ValueError(f"You must call compile() before {method}().")


@keras.saving.register_keras_serializable(package="keras_sard")
class Distiller(keras.Model):
    """Distil a frozen teacher into a student with a custom training step.

    Args:
        teacher: a Keras model (functional or Sequential), already trained.
            It is frozen (``teacher.trainable = False``) and always runs in
            inference mode, only as far as the losses read (see above; a
            functional or Sequential teacher whose tapped layers are its own
            top-level layers is cut after them, any other runs whole).
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

    Bad batches (checked inside the compiled step, on every backend):

    - labels that are neither a class id in ``[0, K)`` (K = the student's
      output channels, 2 when it has one) nor the task loss's ignore label,
      or not integers: the step is not applied and `fit`/`evaluate` raise a
      ValueError right after it;
    - a non-finite loss (NaN/Inf in the images, the teacher's features or a
      diverging loss) or non-finite gradients: the step is skipped — no
      optimizer update (AdamW's decay and moments included), the student's
      BatchNorm statistics and the metrics left as they were — and counted in
      the ``skipped_steps`` log (per epoch).  Under ``mixed_float16`` the
      LossScaleOptimizer keeps handling overflowing gradients itself.

    Scale: on JAX, `keras.distribution` (DataParallel, ModelParallel) gives
    the numbers of one device on the same global batch; on TensorFlow, build
    and compile under a `tf.distribute.MirroredStrategy` scope (see
    `keras_sard.backend.tensorflow_steps` for what is per replica); PyTorch
    trains on one device.  Mixed-precision policies leave every loss term and
    structure map float32.
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
        if task_loss is not None and not callable(task_loss):
            raise TypeError(
                "`task_loss` must be a loss called as loss(labels, logits, "
                f"sample_weight), e.g. SegmentationLoss(); got {task_loss!r}."
            )
        self.task_loss = task_loss if task_loss is not None else SegmentationLoss()
        self.task_loss_weight = check_weight(task_loss_weight, "task_loss_weight")
        self._teacher_taps = FeatureTaps(
            teacher, [n for loss in losses for n in (loss.teacher_layers or ())], "teacher"
        )
        self._student_taps = FeatureTaps(
            student, [n for loss in losses for n in (loss.student_layers or ())], "student"
        )
        self._teacher_pass = _TeacherPass(_teacher_pass(teacher, self._teacher_taps, losses))
        self._build_losses()
        names = ["task_loss"] + [n for loss in losses for n in loss.term_names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Two distillation losses log the same term names {duplicates}; give "
                "each loss its own `name`."
            )
        self.term_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.skipped_steps = keras.metrics.Sum(name="skipped_steps")
        self._invalid_labels = _InvalidLabels()
        channels = (_output_shape(student, "student") or (None,))[-1]
        self.num_classes = None if channels is None else max(int(channels), 2)
        self.ignore_label = getattr(self.task_loss, "ignore_label", 255)
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
        """One teacher pass (as far as the losses read; none without a
        distillation loss), one student forward pass and every loss term.

        Returns ``(total, terms, student_logits)`` with `terms` a dict of
        float32 scalars (weights applied) whose sum is `total`.
        """
        teacher_logits, teacher_features = None, {}
        teacher = self._teacher_pass.model
        if teacher is not None:
            with steps.inference_scope(), self._teacher_taps.record() as teacher_features:
                outputs = teacher(x, training=False)
            if teacher is self.teacher:
                teacher_logits = ops.stop_gradient(outputs)
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

    def label_errors(self, y):
        """``(count, smallest, largest)`` of the label values in `y` that are no
        class id in ``[0, num_classes)``, not the ignore label, or not integers;
        float32 scalars (±inf bounds when there are none).  Traceable."""
        if y is None:
            zero = ops.zeros((), "float32")
            return zero, zero + math.inf, zero - math.inf
        labels = ops.convert_to_tensor(y)
        values = ops.cast(labels, "float32")
        valid = values >= 0
        if "float" in str(labels.dtype):
            valid = ops.logical_and(valid, ops.equal(values, ops.floor(values)))
        if self.num_classes is not None:
            valid = ops.logical_and(valid, values < self.num_classes)
        if self.ignore_label is not None:
            valid = ops.logical_or(valid, ops.equal(values, float(self.ignore_label)))
        invalid = ops.logical_not(valid)
        count = ops.sum(ops.cast(invalid, "float32"))
        low = ops.min(ops.where(invalid, values, math.inf))
        high = ops.max(ops.where(invalid, values, -math.inf))
        return count, low, high

    def step_is_valid(self, total, gradients=None, label_count=None):
        """True when the step may be applied: finite loss, valid labels, and
        finite gradients (those are left to a LossScaleOptimizer, which lowers
        its scale on overflow instead)."""
        valid = ops.all(ops.isfinite(total))
        if label_count is not None:
            valid = ops.logical_and(valid, ops.equal(label_count, 0))
        if gradients is not None and not isinstance(
            self.optimizer, keras.optimizers.LossScaleOptimizer
        ):
            for gradient in gradients:
                if gradient is not None:
                    valid = ops.logical_and(valid, ops.all(ops.isfinite(gradient)))
        return valid

    def update_metrics(self, total, terms, x, y, y_pred, sample_weight=None):
        """Update the loss trackers and the compiled metrics with one batch."""
        batch = ops.shape(tree.flatten(x)[0])[0]
        self._loss_tracker.update_state(total, sample_weight=batch)
        for name, value in terms.items():
            self.term_trackers[name].update_state(value, sample_weight=batch)
        if y is not None and self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)

    def update_step_checks(self, applied, label_errors, share=1.0):
        """Count a skipped step and record invalid labels.  `share` is this
        replica's part (1/num_replicas under tf.distribute, where every replica
        adds its share of the same, all-reduced values)."""
        skipped = 1.0 - ops.cast(applied, "float32")
        self.skipped_steps.update_state(skipped * share)
        count, low, high = label_errors
        self._invalid_labels.update_state(count * share, low, high)

    def step_logs(self, y):
        """Every metric's result, the label check's included (`fit` pops it)."""
        _check_metrics_have_labels(self, y)
        return super().get_metrics_result()

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras' symbolic build calls this before the first step.
        _check_metrics_have_labels(self, y)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_metrics_result(self):
        logs = super().get_metrics_result()
        for key in _LABEL_LOGS:
            logs.pop(key, None)
        return logs

    # ------------------------------------------------- the per-backend steps

    def train_step(self, *args):
        return steps.train_step(self, *args)

    def test_step(self, *args):
        return steps.test_step(self, *args)

    def make_train_function(self, force=False):
        super().make_train_function(force)
        self.train_function = self._checked(self.train_function)
        return self.train_function

    def make_test_function(self, force=False):
        super().make_test_function(force)
        self.test_function = self._checked(self.test_function)
        return self.test_function

    def _checked(self, function):
        """`function` (Keras' compiled step loop) followed, in Python, by the
        label check: the one place where an error can be raised on every
        backend, jit_compile (XLA drops TF assertions) and tf.distribute
        included."""
        if function is None or getattr(function, "_keras_sard_checked", False):
            return function

        def checked(*args, **kwargs):
            outputs = function(*args, **kwargs)
            logs = outputs[0] if isinstance(outputs, tuple) else outputs
            try:
                _raise_on_invalid_labels(logs, self.num_classes, self.ignore_label)
            except ValueError:
                # Leave the model as the (skipped) step left it, ready for
                # the next call once the data is fixed.
                steps.keep_state(self, outputs)
                self._invalid_labels.reset_state()
                raise
            return outputs

        checked._keras_sard_checked = True
        return checked

    # ------------------------------------------------------------- compile

    def fit(self, *args, **kwargs):
        _check_compiled(self, "fit")
        return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        _check_compiled(self, "evaluate")
        return super().evaluate(*args, **kwargs)

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
