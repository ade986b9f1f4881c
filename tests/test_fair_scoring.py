"""Fair scoring: `keras_sard.training` re-estimates a model's BatchNorm statistics
after a short schedule (`fair_batchnorm`), before it is scored, saved or
exported.  The statistics are checked against a float64 NumPy forward pass
done by hand over the documented batches, and the scores against a twin model
holding those statistics."""

import itertools

import keras
import numpy as np
import pytest
from helpers import to_numpy
from references import ref_conv2d

from keras_sard import training
from keras_sard.batchnorm import Recalibration
from keras_sard.data import IMAGENET_MEAN, IMAGENET_STD

SIZE = 32
EPS = 1e-3  # Keras' BatchNormalization epsilon
BATCH = 4
NUM_BATCHES = 3


def build_model(name="model", momentum=0.99):
    """conv → BN → ReLU → conv → BN → ReLU → 1×1 logits (2 classes)."""
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv_1")(inputs)
    x = layers.ReLU()(layers.BatchNormalization(momentum=momentum, name="bn_1")(x))
    x = layers.Conv2D(4, 3, padding="same", name="conv_2")(x)
    x = layers.ReLU()(layers.BatchNormalization(momentum=momentum, name="bn_2")(x))
    return keras.Model(inputs, layers.Conv2D(2, 1, name="head")(x), name=name)


def short_schedule(**changes):
    return training.Schedule(steps_per_epoch=2, batch_size=BATCH, learning_rate=1e-2,
                             gradient_accumulation_steps=1,
                             recalibration_batches=NUM_BATCHES).replace(**changes)


@pytest.fixture(scope="module")
def task():
    return training.load_task("synthetic", image_size=SIZE, num_examples=8, kind="nuclei")


def documented_batches(task, seed):
    """What `fair_batchnorm` documents it reads: the first batches of the
    training pipeline seeded with seed + BATCHNORM_SEED_OFFSET."""
    batches = task.train_batches(BATCH, seed + training.BATCHNORM_SEED_OFFSET)
    return [images.numpy() for images, _ in itertools.islice(iter(batches), NUM_BATCHES)]


def parameters(model, name):
    return [to_numpy(v).astype("float64") for v in model.get_layer(name).weights]


def reference_statistics(model, batches):
    """Per BN layer, the batch-size-weighted mean of the batch mean and biased
    batch variance, each BN normalising by its own batch statistics."""
    sums = {"bn_1": [0.0, 0.0], "bn_2": [0.0, 0.0]}
    total = 0
    for x in batches:
        h = x.astype("float64")
        for conv, bn in (("conv_1", "bn_1"), ("conv_2", "bn_2")):
            h = ref_conv2d(h, *parameters(model, conv))
            mean, variance = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
            sums[bn][0] += len(x) * mean
            sums[bn][1] += len(x) * variance
            gamma, beta = parameters(model, bn)[:2]
            h = np.maximum(gamma * (h - mean) / np.sqrt(variance + EPS) + beta, 0.0)
        total += len(x)
    return {name: (s[0] / total, s[1] / total) for name, s in sums.items()}


def moving_statistics(model):
    return {name: (to_numpy(model.get_layer(name).moving_mean).copy(),
                   to_numpy(model.get_layer(name).moving_variance).copy())
            for name in ("bn_1", "bn_2")}


def twin_with(model, statistics):
    twin = build_model(model.name)
    twin.set_weights(model.get_weights())
    for name, (mean, variance) in statistics.items():
        twin.get_layer(name).moving_mean.assign(np.asarray(mean, "float32"))
        twin.get_layer(name).moving_variance.assign(np.asarray(variance, "float32"))
    return twin


class StatisticsAtTrainEnd(keras.callbacks.Callback):
    """The moving statistics as training left them (before re-estimation)."""

    def on_train_end(self, logs=None):
        self.statistics = moving_statistics(self.model)


def assert_statistics_match(model, expected):
    for name, (mean, variance) in moving_statistics(model).items():
        want_mean, want_variance = expected[name]
        np.testing.assert_allclose(mean, want_mean, rtol=1e-5,
                                   atol=1e-5 * np.abs(want_mean).max())
        np.testing.assert_allclose(variance, want_variance, rtol=1e-5)


def test_a_short_schedule_scores_as_the_hand_reference(task):
    keras.utils.set_random_seed(3)
    model = build_model()
    at_end = StatisticsAtTrainEnd()
    history = training.train_segmenter(model, task, short_schedule(), seed=3, verbose=0,
                                       callbacks=[at_end])

    assert history.recalibration == Recalibration(("bn_1", "bn_2"), NUM_BATCHES,
                                                  NUM_BATCHES * BATCH)
    expected = reference_statistics(model, documented_batches(task, seed=3))
    assert_statistics_match(model, expected)

    twin = twin_with(model, expected)
    raw = next(iter(task.val.dataset.batch(8)))[0].numpy()
    val_images = ((raw / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).astype(
        "float32")
    want = to_numpy(twin(val_images, training=False))
    got = to_numpy(model(val_images, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert training.evaluate(model, task.val) == pytest.approx(
        training.evaluate(twin, task.val), abs=1e-6)

    # The test can fail: after two batches the moving statistics were ~98 % initial.
    stale = to_numpy(twin_with(model, at_end.statistics)(val_images, training=False))
    assert np.abs(stale - want).max() > 0.1 * np.abs(want).max()
    assert "re-estimated (2 layers, 3 training batches, 12 crops)" in training.batchnorm_note(
        history.recalibration, "model")


def test_distill_re_estimates_the_student_on_the_same_batches(task):
    keras.utils.set_random_seed(0)
    teacher = build_model("teacher")
    teacher.trainable = False
    teacher_before = moving_statistics(teacher)
    student = build_model("student")
    history = training.distill(teacher, student, task, "kd", short_schedule(), seed=5,
                               verbose=0)
    assert history.recalibration.layers == ("bn_1", "bn_2")
    assert_statistics_match(student, reference_statistics(student, documented_batches(task, 5)))
    for name, (mean, variance) in moving_statistics(teacher).items():  # frozen: left alone
        np.testing.assert_array_equal(mean, teacher_before[name][0])
        np.testing.assert_array_equal(variance, teacher_before[name][1])


def test_a_long_schedule_or_off_keeps_the_trained_statistics(task):
    # Momentum 0.5: after 8 batches 0.5**8 = 0.4 % is still initial, under the 1 % rule.
    keras.utils.set_random_seed(0)
    model = build_model(momentum=0.5)
    at_end = StatisticsAtTrainEnd()
    history = training.train_segmenter(model, task, short_schedule(steps_per_epoch=8), verbose=0,
                                       callbacks=[at_end])
    assert history.recalibration is None
    for name, (mean, variance) in moving_statistics(model).items():
        np.testing.assert_array_equal(mean, at_end.statistics[name][0])
        np.testing.assert_array_equal(variance, at_end.statistics[name][1])
    assert "not re-estimated" in training.batchnorm_note(None, "Teacher")


@pytest.mark.parametrize("momentum, schedule, expected", [
    (0.99, dict(steps_per_epoch=2), True),             # 98 % stale
    (0.99, dict(steps_per_epoch=458), True),           # 1.003 %
    (0.99, dict(steps_per_epoch=459), False),          # 0.995 %
    (0.99, dict(steps_per_epoch=200, epochs=3), False),  # every epoch counts
    (0.99, dict(steps_per_epoch=200), True),
    (0.5, dict(steps_per_epoch=6), True),              # 1.6 %
    (0.5, dict(steps_per_epoch=7), False),             # 0.8 %
    (0.99, dict(steps_per_epoch=2, recalibrate_batchnorm=False), False),
    (0.99, dict(steps_per_epoch=500, recalibrate_batchnorm=True), True),
])
def test_auto_turns_on_for_short_schedules(task, momentum, schedule, expected):
    model = build_model(momentum=momentum)
    done = training.fair_batchnorm(model, task, short_schedule(**schedule), seed=0)
    assert (done is not None) == expected
    if expected:
        assert done.layers == ("bn_1", "bn_2") and done.batches == NUM_BATCHES


def test_a_model_without_batchnorm_and_bad_settings(task):
    plain = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(2, 1)])
    assert training.fair_batchnorm(plain, task, short_schedule()) is None
    done = training.fair_batchnorm(plain, task, short_schedule(recalibrate_batchnorm=True))
    assert done.layers == () and "not re-estimated" in training.batchnorm_note(done)
    with pytest.raises(ValueError, match="`recalibrate_batchnorm` must be None"):
        training.Schedule(recalibrate_batchnorm="auto")
    with pytest.raises(ValueError, match="`recalibration_batches`"):
        training.Schedule(recalibration_batches=0)
