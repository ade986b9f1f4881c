"""Training and evaluation steps on TensorFlow (GradientTape)."""

import contextlib

import tensorflow as tf
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


def inference_scope():
    # Teacher variables are not trainable, so the tape never watches them.
    return contextlib.nullcontext()


def train_step(model, data):
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=True)
        scaled = model.optimizer.scale_loss(total)
    variables = model.trainable_variables
    gradients = tape.gradient(scaled, variables)
    model.optimizer.apply(gradients, variables)
    return model.record_step(total, terms, x, y, y_pred, sample_weight)


def test_step(model, data):
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=False)
    return model.record_step(total, terms, x, y, y_pred, sample_weight)
