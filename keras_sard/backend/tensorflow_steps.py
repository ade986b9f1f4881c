"""Training and evaluation steps on TensorFlow (GradientTape), tf.distribute-aware.

Under `tf.distribute.MirroredStrategy` Keras runs the step once per replica on
that replica's share of the global batch.  The loss each replica computes is
the mean over its share, so the gradient is divided by the number of replicas
before Keras' optimizer sums the replicas' gradients; the loss trackers add
each replica's loss weighted by its images, so the logged loss is the global
mean.  Whether a step is applied is decided once for all replicas.

Per-image terms (SARD's L_FC and L_DA, whose noise is drawn for the global
batch by `keras_sard.backend.batch_normal`; the cross-entropy when every image
has as many labelled pixels) equal a single-device run's.  Batch-pooled
statistics are per replica: the Dice term, and BatchNorm in the student
(``BatchNormalization(synchronized=True)`` syncs it).  Keras' optimizers do
not support ``gradient_accumulation_steps`` under MirroredStrategy.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops


def inference_scope():
    # Teacher variables are not trainable, so the tape never watches them.
    return contextlib.nullcontext()


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_position():
    """(this replica's index, number of replicas) under tf.distribute."""
    context = tf.distribute.get_replica_context()
    if context is None or _num_replicas() == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def _on_all_replicas(valid, label_errors):
    """The same decision and label counts on every replica (an update that one
    replica applies and another skips would hang their all-reduce)."""
    context = tf.distribute.get_replica_context()
    if context is None or _num_replicas() == 1:
        return valid, label_errors
    count, low, high = label_errors
    invalid, count = context.all_reduce(
        tf.distribute.ReduceOp.SUM, [tf.cast(tf.logical_not(valid), tf.float32), count]
    )
    bounds = context.all_gather(tf.stack([low, high])[None], axis=0)
    low, high = tf.reduce_min(bounds[:, 0]), tf.reduce_max(bounds[:, 1])
    return tf.equal(invalid, 0.0), (count, low, high)


def _apply_if(valid, optimizer, gradients, variables):
    """optimizer.apply only when `valid`; never with zeroed gradients."""
    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        ops.cond(valid, lambda: optimizer.apply(gradients, variables), lambda: None)
        return

    # MirroredStrategy: apply() merges across replicas, which a cond in replica
    # context cannot hold; decide in cross-replica context, as Keras'
    # LossScaleOptimizer does.
    def cross_replica(distribution, valid, gradients):
        valid = distribution.experimental_local_results(valid)[0]

        def apply():
            distribution.extended.call_for_each_replica(
                optimizer.apply, args=(gradients, variables)
            )

        ops.cond(valid, apply, lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(valid, gradients))


def _record(model, valid, label_errors, total, terms, x, y, y_pred, sample_weight):
    ops.cond(
        valid,
        lambda: model.update_metrics(total, terms, x, y, y_pred, sample_weight),
        lambda: None,
    )
    model.update_step_checks(valid, label_errors, share=1.0 / _num_replicas())
    return model.step_logs(y)


def train_step(model, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    student_state = model.student.non_trainable_variables
    before = [tf.identity(v.value) for v in student_state]
    with tf.GradientTape() as tape:
        total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=True)
        scaled = model.optimizer.scale_loss(total / _num_replicas())
    variables = model.trainable_variables
    gradients = tape.gradient(scaled, variables)
    label_errors = model.label_errors(y)
    valid = model.step_is_valid(total, gradients, label_errors[0])
    valid, label_errors = _on_all_replicas(valid, label_errors)
    _apply_if(valid, model.optimizer, gradients, variables)
    # A skipped step leaves the student's BatchNorm statistics as they were.
    for variable, value in zip(student_state, before):
        variable.assign(tf.where(valid, variable.value, value))
    return _record(model, valid, label_errors, total, terms, x, y, y_pred, sample_weight)


def test_step(model, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    total, terms, y_pred = model.compute_distillation(x, y, sample_weight, training=False)
    label_errors = model.label_errors(y)
    valid, label_errors = _on_all_replicas(
        model.step_is_valid(total, label_count=label_errors[0]), label_errors
    )
    return _record(model, valid, label_errors, total, terms, x, y, y_pred, sample_weight)


def keep_state(model, outputs):
    """TensorFlow updates the variables in place: nothing to write back."""
