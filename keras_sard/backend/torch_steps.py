"""Training and evaluation steps on PyTorch (autograd), on one device.

Keras' PyTorch trainer has no distribution support: `fit` runs on one device
(the GPU Keras picked, or the CPU).  Wrapping the Distiller in
DistributedDataParallel outside `fit` is not supported.
"""

import keras
import torch


def inference_scope():
    # The teacher's forward pass records no autograd graph.
    return torch.no_grad()


def replica_position():
    """(this replica, replicas): one device, so always (0, 1)."""
    return 0, 1


def _check_labels(model, y):
    """Eager, so a batch with invalid labels stops before the forward pass (where
    torch's one_hot would fail on an out-of-range id with a vaguer message).
    Returns the label errors and whether the batch may go on."""
    label_errors = model.label_errors(y)
    if float(label_errors[0]) > 0:
        model.update_step_checks(False, label_errors)  # fit() raises on it
        return label_errors, False
    return label_errors, True


def train_step(model, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    label_errors, labels_valid = _check_labels(model, y)
    if not labels_valid:
        return model.step_logs(y)
    student_state = model.student.non_trainable_variables
    before = [v.value.detach().clone() for v in student_state]
    model.zero_grad()
    total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=True)
    model.optimizer.scale_loss(total).backward()
    variables = model.trainable_variables
    gradients = [v.value.grad for v in variables]
    valid = bool(model.step_is_valid(total.detach(), gradients))
    with torch.no_grad():
        if valid:
            model.optimizer.apply(gradients, variables)
            model.update_metrics(total.detach(), terms, x, y, y_pred.detach(), sample_weight)
        else:
            # A skipped step leaves the student's BatchNorm statistics as they were.
            for variable, value in zip(student_state, before):
                variable.assign(value)
        model.update_step_checks(valid, label_errors)
    return model.step_logs(y)


def test_step(model, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    label_errors, labels_valid = _check_labels(model, y)
    if not labels_valid:
        return model.step_logs(y)
    with torch.no_grad():
        total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=False)
        valid = bool(model.step_is_valid(total))
        if valid:
            model.update_metrics(total, terms, x, y, y_pred, sample_weight)
        model.update_step_checks(valid, label_errors)
    return model.step_logs(y)


def keep_state(model, outputs):
    """PyTorch updates the variables in place: nothing to write back."""
