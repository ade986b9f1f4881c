"""Precise BatchNorm statistics (keras_sard.batchnorm) against a NumPy forward
pass done by hand: batch statistics per layer, averaged, set into a twin model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sard.batchnorm import (
    STALE_FRACTION_THRESHOLD,
    Recalibration,
    batchnorm_layers,
    has_stale_batchnorm,
    recalibrate_batchnorm,
    stale_fraction,
)
from tests.helpers import to_numpy
from tests.references import ref_conv2d

SIZE = 8
EPS = 1e-3  # Keras' BatchNormalization epsilon


def build_model():
    """A nested BN (inside a sub-model), a dropout, a BN after it, a frozen BN."""
    layers = keras.layers
    inner_inputs = keras.Input((SIZE, SIZE, 3))
    h = layers.Conv2D(4, 3, padding="same", name="inner_conv")(inner_inputs)
    h = layers.BatchNormalization(name="inner_bn")(h)
    inner = keras.Model(inner_inputs, layers.ReLU()(h), name="inner")
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Dropout(0.5, name="dropout")(inner(inputs))
    x = layers.Conv2D(5, 3, padding="same", name="outer_conv")(x)
    x = layers.BatchNormalization(name="outer_bn")(x)
    x = layers.ReLU()(x)
    frozen = layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    x = frozen(x)
    return keras.Model(inputs, layers.Conv2D(2, 1, name="head")(x), name="net")


def trained_model(rng, steps=3):
    model = build_model()
    frozen = model.get_layer("frozen_bn")
    frozen.moving_mean.assign(rng.normal(size=5).astype("float32"))
    frozen.moving_variance.assign(rng.uniform(0.5, 2.0, size=5).astype("float32"))
    images, labels = data(rng, 4 * steps)
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return model


def data(rng, n):
    images = (3.0 * rng.normal(size=(n, SIZE, SIZE, 3)) + 1.5).astype("float32")
    labels = (images[..., 0] > 1.5).astype("int32")
    return images, labels


def weights(model, name):
    layer = model.get_layer("inner").get_layer(name) if name.startswith("inner") else \
        model.get_layer(name)
    return [to_numpy(v).astype("float64") for v in layer.weights]


def reference_statistics(model, batches):
    """Per BN layer, the batch-size-weighted average of the batch mean and the
    biased batch variance, from a float64 forward pass where each BN layer
    normalises by its own batch statistics and dropout is off."""
    k1, b1 = weights(model, "inner_conv")
    g1, be1 = weights(model, "inner_bn")[:2]
    k2, b2 = weights(model, "outer_conv")
    g2, be2 = weights(model, "outer_bn")[:2]
    sums = {"inner_bn": [0.0, 0.0], "outer_bn": [0.0, 0.0]}
    total = 0
    for x in batches:
        n = len(x)
        h = ref_conv2d(x, k1, b1)
        m, v = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        sums["inner_bn"][0] += n * m
        sums["inner_bn"][1] += n * v
        h = np.maximum(g1 * (h - m) / np.sqrt(v + EPS) + be1, 0.0)
        h = ref_conv2d(h, k2, b2)
        m, v = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        sums["outer_bn"][0] += n * m
        sums["outer_bn"][1] += n * v
        total += n
    return {name: (s[0] / total, s[1] / total) for name, s in sums.items()}


def twin_with_statistics(model, statistics):
    twin = build_model()
    twin.set_weights(model.get_weights())
    for name, (mean, variance) in statistics.items():
        layer = twin.get_layer("inner").get_layer(name) if name.startswith("inner") else \
            twin.get_layer(name)
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(variance.astype("float32"))
    return twin


def moving_statistics(model, name):
    layer = model.get_layer("inner").get_layer(name) if name.startswith("inner") else \
        model.get_layer(name)
    return to_numpy(layer.moving_mean), to_numpy(layer.moving_variance)


def assert_matches_reference(model, expected, images):
    for name, (mean, variance) in expected.items():
        got_mean, got_variance = moving_statistics(model, name)
        np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-5 * np.abs(mean).max())
        np.testing.assert_allclose(got_variance, variance, rtol=1e-5)
    twin = twin_with_statistics(model, expected)
    got = to_numpy(model(images, training=False))
    want = to_numpy(twin(images, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_recalibrated_model_scores_as_the_hand_reference(rng):
    model = trained_model(rng)
    images, _ = data(rng, 12)
    stale = to_numpy(model(images, training=False))
    expected = reference_statistics(model, [images[i:i + 4] for i in range(0, 12, 4)])

    done = recalibrate_batchnorm(model, images, batch_size=4)

    assert done == Recalibration(("inner/inner_bn", "outer_bn"), 3, 12)
    assert_matches_reference(model, expected, images)
    # The test can fail: three steps leave the moving statistics far from these.
    assert np.abs(to_numpy(model(images, training=False)) - stale).max() > 1e-2


def test_uneven_batches_from_a_dataset_of_pairs_are_weighted_by_size(rng):
    model = trained_model(rng)
    images, masks = data(rng, 10)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)  # 4, 4, 2
    expected = reference_statistics(model, [images[:4], images[4:8], images[8:]])

    done = recalibrate_batchnorm(model, dataset)

    assert (done.batches, done.examples) == (3, 10)
    assert_matches_reference(model, expected, images)


def test_num_batches_limits_the_pass(rng):
    model = trained_model(rng)
    images, _ = data(rng, 12)
    expected = reference_statistics(model, [images[:4], images[4:8]])
    done = recalibrate_batchnorm(model, images, num_batches=2, batch_size=4)
    assert (done.batches, done.examples) == (2, 8)
    assert_matches_reference(model, expected, images)


def test_nothing_else_changes(rng):
    model = trained_model(rng)
    iterations = int(to_numpy(model.optimizer.iterations))
    recalibrated = {f"{p}/moving_{s}" for p in ("inner_bn", "outer_bn")  # variable paths
                    for s in ("mean", "variance")}
    before = {v.path: to_numpy(v).copy() for v in model.variables}
    optimizer_before = [to_numpy(v).copy() for v in model.optimizer.variables]
    momenta = {path: layer.momentum for path, layer in batchnorm_layers(model).items()}

    recalibrate_batchnorm(model, data(rng, 8)[0], batch_size=4)

    after = {v.path: to_numpy(v) for v in model.variables}
    assert set(after) == set(before) and recalibrated <= set(after)
    for path, value in before.items():
        if path not in recalibrated:
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    for path in recalibrated:
        assert not np.array_equal(after[path], before[path]), path
    for old, new in zip(optimizer_before, model.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(new), old)
    assert int(to_numpy(model.optimizer.iterations)) == iterations
    assert {path: layer.momentum for path, layer in batchnorm_layers(model).items()} == momenta
    assert all("call" not in layer.__dict__ for layer in batchnorm_layers(model).values())
    # Inference afterwards uses the moving statistics again (not batch ones):
    one = data(rng, 2)[0]
    np.testing.assert_allclose(to_numpy(model(one[:1], training=False))[0],
                               to_numpy(model(one, training=False))[0], rtol=1e-5, atol=1e-6)


def test_frozen_layers_and_frozen_submodels_are_left_alone(rng):
    model = build_model()
    model.get_layer("inner").trainable = False
    assert list(batchnorm_layers(model)) == ["outer_bn"]
    inner_before = moving_statistics(model, "inner_bn")
    done = recalibrate_batchnorm(model, data(rng, 4)[0], batch_size=4)
    assert done.layers == ("outer_bn",)
    for old, new in zip(inner_before, moving_statistics(model, "inner_bn")):
        np.testing.assert_array_equal(new, old)


def test_model_without_batchnorm_is_a_no_op(rng):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recalibrate_batchnorm(model, np.zeros((4, 4), "float32"), batch_size=2) == \
        Recalibration((), 0, 0)


def test_non_finite_statistics_raise_and_restore(rng):
    model = trained_model(rng)
    before = moving_statistics(model, "outer_bn")
    images, _ = data(rng, 8)
    images[5] = np.nan
    with pytest.raises(FloatingPointError, match="not finite"):
        recalibrate_batchnorm(model, images, batch_size=4)
    for old, new in zip(before, moving_statistics(model, "outer_bn")):
        np.testing.assert_array_equal(new, old)
    assert all("call" not in layer.__dict__ for layer in batchnorm_layers(model).values())
    assert all(layer.momentum == 0.99 for layer in batchnorm_layers(model).values())


def test_bad_input_is_named(rng):
    model = build_model()
    images, masks = data(rng, 4)
    with pytest.raises(ValueError, match="batch_size"):
        recalibrate_batchnorm(model, images)
    with pytest.raises(ValueError, match="endless"):
        recalibrate_batchnorm(model, tf.data.Dataset.from_tensors((images, masks)).repeat())
    with pytest.raises(ValueError, match="no example"):
        recalibrate_batchnorm(model, [])
    with pytest.raises(ValueError, match="already batched"):
        recalibrate_batchnorm(model, tf.data.Dataset.from_tensors(images), batch_size=4)
    with pytest.raises(ValueError, match="num_batches"):
        recalibrate_batchnorm(model, images, num_batches=0, batch_size=4)
    renorm = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(renorm=True)])
    with pytest.raises(ValueError, match="renorm"):
        recalibrate_batchnorm(renorm, np.zeros((4, 4), "float32"), batch_size=2)


def test_stale_fraction_and_the_short_schedule_rule():
    assert stale_fraction(0.99, 96) == pytest.approx(0.99 ** 96)
    assert stale_fraction(0.99, 0) == 1.0 and stale_fraction(0.0, 3) == 0.0
    # The documented consequence of the threshold at Keras' default momentum.
    assert stale_fraction(0.99, 458) > STALE_FRACTION_THRESHOLD >= stale_fraction(0.99, 459)
    model = build_model()
    assert has_stale_batchnorm(model, 458) and not has_stale_batchnorm(model, 459)
    assert not has_stale_batchnorm(model, 96, threshold=0.5)
    model.get_layer("outer_bn").momentum = 0.9
    assert has_stale_batchnorm(model, 100)  # the inner layer (0.99) still is
    no_bn = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert not has_stale_batchnorm(no_bn, 1)
    for bad in (-0.1, 1.5, "0.9"):
        with pytest.raises(ValueError, match="momentum"):
            stale_fraction(bad, 3)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            stale_fraction(0.9, bad)
    with pytest.raises(ValueError, match="threshold"):
        has_stale_batchnorm(model, 3, threshold=2)


def test_a_shared_layer_averages_every_call(rng):
    layers = keras.layers
    shared = layers.BatchNormalization(name="shared_bn")
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.ReLU()(shared(layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)))
    x = shared(layers.Conv2D(4, 3, padding="same", name="conv_b")(x))
    model = keras.Model(inputs, x)
    images, _ = data(rng, 8)
    ka, ba = [to_numpy(v).astype("float64") for v in model.get_layer("conv_a").weights]
    kb, bb = [to_numpy(v).astype("float64") for v in model.get_layer("conv_b").weights]
    means, variances = [], []
    for batch in (images[:4], images[4:]):
        h = ref_conv2d(batch, ka, ba)
        m, v = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        means.append(m)
        variances.append(v)
        h = ref_conv2d(np.maximum((h - m) / np.sqrt(v + EPS), 0.0), kb, bb)  # gamma 1, beta 0
        means.append(h.mean(axis=(0, 1, 2)))
        variances.append(h.var(axis=(0, 1, 2)))

    done = recalibrate_batchnorm(model, images, batch_size=4)

    assert done.layers == ("shared_bn",)
    np.testing.assert_allclose(to_numpy(shared.moving_mean), np.mean(means, axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(shared.moving_variance), np.mean(variances, axis=0),
                               rtol=1e-5)


class PartlyUsed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3, padding="same")
        self.used = keras.layers.BatchNormalization(name="used_bn")
        self.unused = keras.layers.BatchNormalization(name="unused_bn")

    def call(self, x, training=False):
        return self.used(self.conv(x), training=training)


def test_a_layer_that_does_not_run_keeps_its_statistics(rng):
    model = PartlyUsed()
    model(np.zeros((1, SIZE, SIZE, 3), "float32"))
    model.unused(np.zeros((1, SIZE, SIZE, 4), "float32"))  # built, with statistics to keep
    model.unused.moving_mean.assign(np.arange(4, dtype="float32"))
    before = (to_numpy(model.unused.moving_mean).copy(),
                                 to_numpy(model.unused.moving_variance).copy())
    done = recalibrate_batchnorm(model, data(rng, 4)[0], batch_size=2)
    assert done.layers == ("used_bn",) and done.examples == 4
    np.testing.assert_array_equal(to_numpy(model.unused.moving_mean), before[0])
    np.testing.assert_array_equal(to_numpy(model.unused.moving_variance), before[1])
    assert model.unused.momentum == 0.99 and "call" not in model.unused.__dict__
