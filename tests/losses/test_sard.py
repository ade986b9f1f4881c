"""SARD's losses against NumPy references (spec §2)."""

import keras
import numpy as np
import pytest

from helpers import gradients, to_numpy
from keras_sard.losses import (
    DenoisingHead,
    DistributionAlignmentLoss,
    FeatureConsistencyLoss,
    SARDLoss,
    weighted_squared_error,
)
from keras_sard.structure import StructureWeights
from references import (
    random_features,
    ref_conv2d,
    ref_resize_bilinear,
    ref_weighted_squared_error,
    ref_weights,
)

RTOL = 1e-5


def close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(float(to_numpy(actual)), float(expected), rtol=rtol)


def conv_weights(layer):
    kernel, bias = (to_numpy(v) for v in layer.weights)
    return kernel, bias


def ref_project_student(loss, student, size):
    kernel, bias = conv_weights(loss.student_projection)
    projected = ref_conv2d(student, kernel, bias)
    if projected.shape[1:3] != tuple(size):
        projected = ref_resize_bilinear(projected, size)
    return projected


@pytest.fixture
def noise_draws(monkeypatch):
    """keras.random.normal replaced by known arrays (recorded in order), so
    L_DA has a reference."""
    draws = []

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        rng = np.random.default_rng(100 + len(draws))
        draws.append(rng.normal(size=tuple(int(s) for s in shape)).astype("float32"))
        return keras.ops.convert_to_tensor(draws[-1])

    monkeypatch.setattr(keras.random, "normal", normal)
    return draws


def ref_alignment(loss, teacher_hat, student_hat, noise, weights, denoiser_input="concat",
                  channel_reduction="mean"):
    head = loss.denoiser
    k1, b1 = conv_weights(head.hidden)
    k2, b2 = conv_weights(head.output_conv)
    noisy = np.sqrt(loss.alpha) * teacher_hat + np.sqrt(1 - loss.alpha) * noise
    seen = np.concatenate([student_hat, noisy], -1) if denoiser_input == "concat" else student_hat
    hidden = np.maximum(ref_conv2d(seen, k1, b1), 0)
    predicted = ref_conv2d(hidden, k2, b2)
    return ref_weighted_squared_error(noise, predicted, weights, channel_reduction)


@pytest.mark.parametrize("shape", [(2, 7, 9, 4), (3, 6, 6, 1)])
def test_weighted_squared_error(rng, shape):
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    w = rng.random(shape[:3])
    w /= w.sum(axis=(1, 2), keepdims=True)
    close(weighted_squared_error(a, b, w), ref_weighted_squared_error(a, b, w))
    close(weighted_squared_error(a, b), ref_weighted_squared_error(a, b))
    close(weighted_squared_error(a, b, w, "sum"), ref_weighted_squared_error(a, b, w, "sum"))
    close(weighted_squared_error(a, b, channel_reduction="sum"),
          ref_weighted_squared_error(a, b, channel_reduction="sum"))


@pytest.mark.parametrize(
    "teacher_shape, student_shape",
    [((2, 9, 11, 6), (2, 9, 11, 3)), ((2, 10, 14, 5), (2, 5, 7, 8)), ((1, 6, 8, 4), (1, 9, 12, 2))],
)
def test_feature_consistency_matches_reference(rng, teacher_shape, student_shape):
    teacher = random_features(rng, teacher_shape)
    student = rng.normal(size=student_shape).astype("float32")
    weights = StructureWeights(radius=2)(teacher)
    loss = FeatureConsistencyLoss()
    value = loss(teacher, student, weights)
    student_hat = ref_project_student(loss, student, teacher_shape[1:3])
    ref_w = ref_weights(teacher, radius=2)
    close(value, ref_weighted_squared_error(teacher, student_hat, ref_w))
    # uniform weighting
    close(loss(teacher, student), ref_weighted_squared_error(teacher, student_hat))


def test_frozen_teacher_projection(rng):
    teacher = random_features(rng, (2, 6, 6, 5))
    student = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    loss = FeatureConsistencyLoss(teacher_projection="frozen")
    value = loss(teacher, student)
    (kernel,) = (to_numpy(v) for v in loss.teacher_projector.weights)
    assert not loss.teacher_projector.trainable
    assert len(loss.trainable_weights) == 2  # P_S kernel and bias only
    teacher_hat = ref_conv2d(teacher, kernel)
    close(value, ref_weighted_squared_error(teacher_hat, ref_project_student(loss, student, (6, 6))))


def test_distribution_alignment_matches_reference(rng, noise_draws):
    teacher_hat = rng.normal(size=(2, 7, 5, 4)).astype("float32")
    student_hat = rng.normal(size=(2, 7, 5, 4)).astype("float32")
    weights = rng.random((2, 7, 5))
    weights /= weights.sum(axis=(1, 2), keepdims=True)
    loss = DistributionAlignmentLoss(alpha=0.3, hidden_channels=6, seed=0)
    value = loss(teacher_hat, student_hat, weights)
    close(value, ref_alignment(loss, teacher_hat, student_hat, noise_draws[-1], weights))


def test_distribution_alignment_choices_match_reference(rng, noise_draws):
    # The [choice]s switched: g_θ sees F̂_S alone; the channel sum.
    teacher_hat = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    student_hat = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    loss = DistributionAlignmentLoss(alpha=0.6, hidden_channels=4, seed=1,
                                     channel_reduction="sum", denoiser_input="student")
    value = loss(teacher_hat, student_hat)
    assert loss.denoiser.hidden.kernel.shape == (3, 3, 3, 4)  # C inputs, not 2C
    close(value, ref_alignment(loss, teacher_hat, student_hat, noise_draws[-1], None,
                               denoiser_input="student", channel_reduction="sum"))


def test_sard_loss_choices_match_reference(rng, noise_draws):
    teacher = random_features(rng, (2, 7, 8, 5))
    student = rng.normal(size=(2, 7, 8, 3)).astype("float32")
    loss = SARDLoss(["t"], ["s"], radius=1, hidden_channels=4, seed=2, padding="zero",
                    channel_reduction="sum", denoiser_input="student")
    terms = loss([teacher], [student])
    w = ref_weights(teacher, radius=1, padding="zero")
    s_hat = ref_project_student(loss.consistency[0], student, teacher.shape[1:3])
    close(terms["sard_fc"], ref_weighted_squared_error(teacher, s_hat, w, "sum"))
    close(terms["sard_da"], 0.5 * ref_alignment(loss.alignment[0], teacher, s_hat, noise_draws[0], w,
                                                "student", "sum"))
    config = loss.get_config()
    assert (config["padding"], config["channel_reduction"], config["denoiser_input"]) == (
        "zero", "sum", "student")
    assert SARDLoss.from_config(config).get_config() == config


def test_sard_loss_averages_levels(rng, noise_draws):
    teachers = [random_features(rng, (2, 8, 8, 6)), random_features(rng, (2, 4, 4, 10))]
    students = [rng.normal(size=(2, 8, 8, 3)).astype("float32"), rng.normal(size=(2, 2, 2, 5)).astype("float32")]
    loss = SARDLoss(["t1", "t2"], ["s1", "s2"], radius=1, hidden_channels=4, seed=3,
                    feature_weight=1.5, alignment_weight=0.25)
    terms = loss(teachers, students)
    assert set(terms) == {"sard_fc", "sard_da"}
    fc = da = 0.0
    for level, (t, s) in enumerate(zip(teachers, students)):
        w = ref_weights(t, radius=1)
        s_hat = ref_project_student(loss.consistency[level], s, t.shape[1:3])
        fc += ref_weighted_squared_error(t, s_hat, w)
        da += ref_alignment(loss.alignment[level], t, s_hat, noise_draws[level], w)
    close(terms["sard_fc"], 1.5 * fc / 2)
    close(terms["sard_da"], 0.25 * da / 2)


def test_uniform_weighting_and_levels(rng):
    teachers = [random_features(rng, (1, 6, 6, 4)) for _ in range(3)]
    students = [rng.normal(size=(1, 6, 6, 2)).astype("float32") for _ in range(3)]
    loss = SARDLoss(["a", "b", "c"], ["x", "y", "z"], weighting="uniform", levels=(2, 0),
                    alignment_weight=0.0)
    assert loss.teacher_layers == ("c", "a") and loss.student_layers == ("z", "x")
    assert loss.term_names == ("sard_fc",) and not loss.alignment
    terms = loss([teachers[2], teachers[0]], [students[2], students[0]])
    assert set(terms) == {"sard_fc"}
    ref = np.mean([
        ref_weighted_squared_error(t, ref_project_student(loss.consistency[i], s, (6, 6)))
        for i, (t, s) in enumerate([(teachers[2], students[2]), (teachers[0], students[0])])
    ])
    close(terms["sard_fc"], ref)


def test_gradients_reach_projection_and_head_not_teacher(rng):
    """Only P_S and g_θ (and the student) get gradients; W carries none."""
    teacher = keras.Variable(random_features(rng, (1, 6, 6, 4)), trainable=True)
    student = keras.Variable(rng.normal(size=(1, 6, 6, 2)).astype("float32"))
    loss = SARDLoss(["t"], ["s"], radius=1, hidden_channels=4, seed=0)
    loss([teacher], [student])  # build
    variables = [teacher, student] + loss.trainable_variables
    grads = gradients(lambda: sum(loss([teacher.value], [student.value]).values()), variables)
    assert grads[0] is None or np.all(to_numpy(grads[0]) == 0)
    assert all(g is not None and np.any(to_numpy(g) != 0) for g in grads[1:])


def test_same_seed_same_noise_and_saving(tmp_path, rng):
    teacher = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    student = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    first = DistributionAlignmentLoss(hidden_channels=4, seed=7)
    second = DistributionAlignmentLoss(hidden_channels=4, seed=7)
    first.build((2, 6, 6, 4), (2, 6, 6, 4))
    second.build((2, 6, 6, 4), (2, 6, 6, 4))
    second.set_weights(first.get_weights())
    np.testing.assert_array_equal(to_numpy(first(teacher, student)), to_numpy(second(teacher, student)))


def _round_trip(layer, inputs, tmp_path):
    """Save a functional model around `layer` and reload it; outputs must match."""
    symbolic = [keras.Input(x.shape[1:]) for x in inputs]
    model = keras.Model(symbolic, layer(*symbolic))
    path = str(tmp_path / "loss.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    return model, loaded


@pytest.mark.parametrize(
    "make",
    [
        lambda: FeatureConsistencyLoss(teacher_projection="frozen"),
        lambda: DistributionAlignmentLoss(alpha=0.2, hidden_channels=5, seed=4),
        lambda: FeatureConsistencyLoss(channel_reduction="sum"),
        lambda: DistributionAlignmentLoss(hidden_channels=3, seed=1, channel_reduction="sum",
                                          denoiser_input="student"),
    ],
)
def test_level_losses_round_trip(tmp_path, rng, make):
    layer = make()
    inputs = [rng.normal(size=(2, 6, 6, 4)).astype("float32") for _ in range(2)]
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model, loaded = _round_trip(layer, inputs, tmp_path)
    np.testing.assert_allclose(to_numpy(loaded(inputs)), to_numpy(model(inputs)), rtol=1e-6)


def test_sard_loss_round_trip(tmp_path, rng):
    loss = SARDLoss(["a", "b"], ["c", "d"], levels=(1,), radius=2, scales=(1, 2), beta_corner=0.5,
                    teacher_projection="frozen", hidden_channels=4, seed=11)
    teacher = random_features(rng, (2, 8, 8, 4))
    student = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    config = loss.get_config()
    clone = SARDLoss.from_config(config)
    assert clone.get_config() == config
    t_in, s_in = keras.Input((8, 8, 4)), keras.Input((4, 4, 3))
    model = keras.Model([t_in, s_in], loss([t_in], [s_in]))
    path = str(tmp_path / "sard.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    before = model([teacher, student])
    after = loaded([teacher, student])
    for key in ("sard_fc", "sard_da"):
        np.testing.assert_allclose(to_numpy(after[key]), to_numpy(before[key]), rtol=1e-6)


def test_sard_loss_takes_its_structure_defaults_from_structure_weights():
    """StructureWeights' signature is the one home of the structure map's
    defaults: SARDLoss forwards its arguments and restates none."""
    import inspect

    from keras_sard.losses.sard import STRUCTURE_ARGUMENTS

    loss = SARDLoss(["a"], ["b"])
    defaults = StructureWeights().get_config()
    assert {k: loss.get_config()[k] for k in STRUCTURE_ARGUMENTS} == {
        k: defaults[k] for k in STRUCTURE_ARGUMENTS}
    assert {"beta_edge", "radius", "padding", "scales"} <= set(STRUCTURE_ARGUMENTS)
    assert not set(STRUCTURE_ARGUMENTS) & set(inspect.signature(SARDLoss).parameters)
    assert SARDLoss(["a"], ["b"], radius=3, eps=1e-6).structure.get_config()["eps"] == 1e-6


def test_sard_loss_loads_configs_saved_before_structure_arguments_were_forwarded():
    old = {"name": "sard", "trainable": True, "dtype": "float32", "teacher_layers": ["a"],
           "student_layers": ["b"], "feature_weight": 1.0, "alignment_weight": 0.5,
           "weighting": "structure", "levels": None, "teacher_projection": "identity",
           "alpha": 0.5, "hidden_channels": 8, "seed": 3, "channel_reduction": "mean",
           "denoiser_input": "concat", "beta_edge": 2.0, "beta_corner": 0.0,
           "beta_density": 1.0, "scales": [1, 2], "sigma0": 4.0, "radius": 2,
           "density": "exact", "normalize": "mean", "padding": "zero"}
    loss = SARDLoss.from_config(old)
    assert (loss.structure.beta_corner, loss.structure.radius, loss.structure.padding) == (
        0.0, 2, "zero")
    assert SARDLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_denoising_head_keeps_its_registered_name():
    """Old .keras files name g_θ and MGD's generator 'keras_sard>DenoisingHead'."""
    assert keras.saving.get_registered_name(DenoisingHead) == "keras_sard>DenoisingHead"


def test_denoising_head_round_trip(tmp_path, rng):
    head = DenoisingHead(3, hidden_channels=5)
    x = rng.normal(size=(1, 5, 5, 6)).astype("float32")
    model, loaded = _round_trip(head, [x], tmp_path)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6)


def test_channel_mismatch_names_teacher_channels(rng):
    loss = FeatureConsistencyLoss(teacher_channels=8)
    with pytest.raises(ValueError, match="`teacher_channels`=8.*6"):
        loss(rng.normal(size=(1, 4, 4, 6)), rng.normal(size=(1, 4, 4, 3)))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FeatureConsistencyLoss(teacher_projection="learned"), "`teacher_projection`"),
        (lambda: FeatureConsistencyLoss(teacher_channels=0), "`teacher_channels`"),
        (lambda: DistributionAlignmentLoss(alpha=1.0), "`alpha`"),
        (lambda: DistributionAlignmentLoss(alpha=0), "`alpha`"),
        (lambda: DistributionAlignmentLoss(hidden_channels=0), "`hidden_channels`"),
        (lambda: SARDLoss(["a"], ["b", "c"]), "`teacher_layers` and `student_layers`"),
        (lambda: SARDLoss(None, None), "`teacher_layers`"),
        (lambda: SARDLoss(["a"], ["b"], levels=(1,)), "`levels`"),
        (lambda: SARDLoss(["a"], ["b"], feature_weight=-1), "`feature_weight`"),
        (lambda: SARDLoss(["a"], ["b"], weighting="flat"), "`weighting`"),
        (lambda: SARDLoss(["a"], ["b"], beta_edge=-1), "`beta_edge`"),
        (lambda: SARDLoss(["a"], ["b"], radius=-1), "`radius`"),
        (lambda: SARDLoss(["a"], ["b"], padding="same"), "`padding` must be one of"),
        (lambda: SARDLoss(["a"], ["b"], channel_reduction="max"), "`channel_reduction` must be one of"),
        (lambda: SARDLoss(["a"], ["b"], denoiser_input="teacher"), "`denoiser_input` must be one of"),
        (lambda: FeatureConsistencyLoss(channel_reduction=None), "`channel_reduction`"),
        (lambda: DistributionAlignmentLoss(denoiser_input="noisy"), "`denoiser_input`"),
    ],
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_rank_names_the_input(rng):
    with pytest.raises(ValueError, match="`student_features`.*rank-4"):
        FeatureConsistencyLoss()(rng.normal(size=(1, 4, 4, 3)), rng.normal(size=(4, 4, 3)))
    with pytest.raises(ValueError, match="`teacher_outputs` must hold 2"):
        SARDLoss(["a", "b"], ["c", "d"])([rng.normal(size=(1, 4, 4, 3))], [rng.normal(size=(1, 4, 4, 3))])


def test_losses_are_float32_under_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        loss = SARDLoss(["a"], ["b"], radius=1, hidden_channels=4)
        teacher = keras.ops.cast(rng.normal(size=(1, 6, 6, 4)), "bfloat16")
        student = keras.ops.cast(rng.normal(size=(1, 6, 6, 2)), "bfloat16")
        terms = loss([teacher], [student])
        for value in terms.values():
            assert keras.backend.standardize_dtype(value.dtype) == "float32"
        assert all(v.dtype == "float32" for v in loss.weights if v.trainable)
    finally:
        keras.config.set_dtype_policy("float32")


def test_noise_stream_resumes_after_saving(tmp_path, rng):
    """Keras does not save SeedGenerator states; L_DA saves its own, so a
    reloaded (or BackupAndRestore-resumed) loss draws the noise it would have."""
    teacher = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    loss = DistributionAlignmentLoss(hidden_channels=4, seed=5)
    t_in, s_in = keras.Input((6, 6, 4)), keras.Input((6, 6, 4))
    model = keras.Model([t_in, s_in], loss(t_in, s_in))
    model([teacher, teacher])  # advance the stream past its seed
    path = str(tmp_path / "advanced.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded([teacher, teacher])), to_numpy(model([teacher, teacher])))


def test_hidden_channels_default_is_min_128_and_the_teacher_channels():
    # g_θ no wider than the teacher: a 16-channel teacher gets a 16-wide head.
    loss = SARDLoss(["a", "b"], ["c", "d"], seed=0)
    loss.build([(2, 8, 8, 16), (2, 4, 4, 192)], [(2, 8, 8, 4), (2, 4, 4, 8)])
    assert [da.denoiser.hidden_channels for da in loss.alignment] == [16, 128]
    assert loss.alignment[0].denoiser.hidden.kernel.shape == (3, 3, 32, 16)
    config = loss.get_config()
    assert config["hidden_channels"] is None  # "auto" is what is saved, not a width
    restored = SARDLoss.from_config(config)
    restored.build([(2, 8, 8, 16), (2, 4, 4, 192)], [(2, 8, 8, 4), (2, 4, 4, 8)])
    assert [v.shape for v in restored.weights] == [v.shape for v in loss.weights]
    # An explicit width (and a config saved before the default changed) is kept.
    old = SARDLoss.from_config(dict(config, hidden_channels=128))
    old.build([(2, 8, 8, 16), (2, 4, 4, 192)], [(2, 8, 8, 4), (2, 4, 4, 8)])
    assert [da.denoiser.hidden_channels for da in old.alignment] == [128, 128]
    single = DistributionAlignmentLoss(seed=0)
    single.build((1, 4, 4, 300), (1, 4, 4, 300))
    assert single.denoiser.hidden_channels == 128
    assert DistributionAlignmentLoss.from_config(single.get_config()).hidden_channels is None
