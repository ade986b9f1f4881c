"""Training and evaluation steps on JAX: stateless, through keras.StatelessScope."""

import contextlib

import jax
import keras
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


def inference_scope():
    # Gradients are taken only where jax.grad asks; the teacher's outputs are
    # stop_gradient-ed by the Distiller.
    return contextlib.nullcontext()


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


def _record(model, metrics_variables, total, terms, x, y, y_pred, sample_weight):
    mapping = list(zip(model.metrics_variables, metrics_variables))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = model.record_step(total, terms, x, y, y_pred, sample_weight)
    return logs, _current_values(scope, model.metrics_variables)


def train_step(model, state, data):
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    def loss_fn(trainable):
        return _forward(model, trainable, non_trainable, optimizer_variables, x, y, sample_weight, True)

    (_, (total, terms, y_pred, non_trainable)), gradients = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    trainable, optimizer_variables = model.optimizer.stateless_apply(
        optimizer_variables, gradients, trainable
    )
    logs, metrics_variables = _record(model, metrics_variables, total, terms, x, y, y_pred, sample_weight)
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    _, (total, terms, y_pred, non_trainable) = _forward(
        model, trainable, non_trainable, None, x, y, sample_weight, False
    )
    logs, metrics_variables = _record(model, metrics_variables, total, terms, x, y, y_pred, sample_weight)
    return logs, (trainable, non_trainable, metrics_variables)
