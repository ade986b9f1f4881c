"""Training and evaluation steps on PyTorch (autograd)."""

import torch
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


def inference_scope():
    # The teacher's forward pass records no autograd graph.
    return torch.no_grad()


def train_step(model, data):
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    model.zero_grad()
    total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=True)
    model.optimizer.scale_loss(total).backward()
    variables = model.trainable_variables
    gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        model.optimizer.apply(gradients, variables)
    return model.record_step(total.detach(), terms, x, y, y_pred.detach(), sample_weight)


def test_step(model, data):
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    with torch.no_grad():
        total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=False)
    return model.record_step(total, terms, x, y, y_pred, sample_weight)
