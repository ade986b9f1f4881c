"""Training and evaluation steps on JAX: stateless, through keras.StatelessScope.

Under `keras.distribution` (DataParallel, ModelParallel) the step is one SPMD
program over the global batch: every sum and mean, the SARD noise and the
validity check are global, exactly as on one device.
"""

import contextlib

import jax
import jax.numpy as jnp
import keras


def inference_scope():
    # Gradients are taken only where jax.grad asks; the teacher's outputs are
    # stop_gradient-ed by the Distiller.
    return contextlib.nullcontext()


def replica_position():
    """(this replica, replicas): one SPMD program, so always (0, 1)."""
    return 0, 1


def _cond(predicate, true_fn, false_fn, *operands):
    """jax.lax.cond, or a plain branch when eager (run_eagerly=True), where
    lax.cond would trace both branches at every step."""
    if isinstance(predicate, jax.core.Tracer):
        return jax.lax.cond(predicate, true_fn, false_fn, *operands)
    return true_fn(*operands) if bool(predicate) else false_fn(*operands)


def _current_values(scope, variables):
    values = []
    for variable in variables:
        value = scope.get_current_value(variable)
        values.append(variable.value if value is None else value)
    return values


def _forward(model, trainable, non_trainable, optimizer_variables, x, y, sample_weight, training):
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    if optimizer_variables is not None:
        mapping += list(zip(model.optimizer.variables, optimizer_variables))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=training)
        scaled = model.optimizer.scale_loss(total) if training else total
    return scaled, (total, terms, y_pred, _current_values(scope, model.non_trainable_variables))


def _keep_student_state(model, valid, before, after):
    """The new non-trainable values, except that a skipped step leaves the
    student's (BatchNorm statistics) as they were."""
    student = {id(v) for v in model.student.non_trainable_variables}
    return [
        jnp.where(valid, new, old) if id(v) in student else new
        for v, old, new in zip(model.non_trainable_variables, before, after)
    ]


def _record(model, metrics_variables, valid, label_errors, total, terms, x, y, y_pred, sample_weight):
    def update(metrics_variables):
        mapping = list(zip(model.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            model.update_metrics(total, terms, x, y, y_pred, sample_weight)
        return _current_values(scope, model.metrics_variables)

    # A skipped batch leaves every metric as it was (its labels may not even
    # fit the confusion matrix).
    metrics_variables = _cond(valid, update, list, list(metrics_variables))
    mapping = list(zip(model.metrics_variables, metrics_variables))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        model.update_step_checks(valid, label_errors)
        logs = model.step_logs(y)
    return logs, _current_values(scope, model.metrics_variables)


def train_step(model, state, data):
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

    def loss_fn(trainable):
        return _forward(model, trainable, non_trainable, optimizer_variables, x, y, sample_weight, True)

    (_, (total, terms, y_pred, new_non_trainable)), gradients = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    label_errors = model.label_errors(y)
    valid = model.step_is_valid(total, gradients, label_errors[0])
    # A skipped step never reaches the optimizer: no decay, no moments, no
    # iteration (what LossScaleOptimizer does with non-finite gradients).
    trainable, optimizer_variables = _cond(
        valid,
        lambda: model.optimizer.stateless_apply(optimizer_variables, gradients, trainable),
        lambda: (list(trainable), list(optimizer_variables)),
    )
    non_trainable = _keep_student_state(model, valid, non_trainable, new_non_trainable)
    logs, metrics_variables = _record(
        model, metrics_variables, valid, label_errors, total, terms, x, y, y_pred, sample_weight
    )
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    _, (total, terms, y_pred, non_trainable) = _forward(
        model, trainable, non_trainable, None, x, y, sample_weight, False
    )
    label_errors = model.label_errors(y)
    valid = model.step_is_valid(total, label_count=label_errors[0])
    logs, metrics_variables = _record(
        model, metrics_variables, valid, label_errors, total, terms, x, y, y_pred, sample_weight
    )
    return logs, (trainable, non_trainable, metrics_variables)


_STATE_NAMES = {
    4: ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables"),
    3: ("trainable_variables", "non_trainable_variables", "metrics_variables"),
}


def keep_state(model, outputs):
    """Write the state a step function returned back into the model's
    variables, before an error leaves `fit`/`evaluate` (Keras' JAX trainer
    holds it outside the variables until the epoch ends)."""
    if not (isinstance(outputs, tuple) and len(outputs) == 2):
        return
    state = outputs[1]
    names = _STATE_NAMES.get(len(state))
    if names is None:
        return
    model._jax_state = dict(zip(names, state))
    model._jax_state_synced = False
    model.jax_state_sync()
