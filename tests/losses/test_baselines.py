"""The baselines (KD, CWD, DKD, MGD) against NumPy references (spec §3)."""

import keras
import numpy as np
import pytest
from scipy.special import rel_entr, softmax

from helpers import gradients, to_numpy
from keras_sard.losses import ChannelWiseKD, DecoupledKD, LogitKD, MaskedGenerativeKD
from references import ref_conv2d, ref_resize_bilinear

RTOL = 1e-5
IGNORE = 255


def close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(float(to_numpy(actual)), float(expected), rtol=rtol)


# ----------------------------------------------------------------- references


def ref_on_teacher_grid(teacher, student):
    """float64 logits, the student's resized to the teacher's size, one
    channel read as the two-class logits [0, z]."""
    teacher, student = np.asarray(teacher, "float64"), np.asarray(student, "float64")
    if student.shape[1:3] != teacher.shape[1:3]:
        student = ref_resize_bilinear(student, teacher.shape[1:3])
    return teacher, student


def ref_two_class(z):
    return np.concatenate([np.zeros_like(z), z], -1) if z.shape[-1] == 1 else z


def ref_grid_labels(labels, size):
    """Nearest labels at the centres of the logit grid: row i ← floor((i + ½)·H/h)."""
    labels = np.asarray(labels)
    if labels.ndim == 4:
        labels = labels[..., 0]
    big_h, big_w = labels.shape[1:3]
    rows = [min(int(np.floor((i + 0.5) * big_h / size[0])), big_h - 1) for i in range(size[0])]
    cols = [min(int(np.floor((j + 0.5) * big_w / size[1])), big_w - 1) for j in range(size[1])]
    return labels[:, rows][:, :, cols]


def ref_kd(teacher, student, temperature, labels=None):
    teacher, student = ref_on_teacher_grid(teacher, student)
    p = softmax(ref_two_class(teacher) / temperature, axis=-1)
    q = softmax(ref_two_class(student) / temperature, axis=-1)
    kl = rel_entr(p, q).sum(-1)
    if labels is not None:
        kl = kl[ref_grid_labels(labels, teacher.shape[1:3]) != IGNORE]
    return temperature**2 * kl.mean()


def ref_cwd(teacher, student, temperature):
    teacher, student = ref_on_teacher_grid(teacher, student)
    b, h, w, c = teacher.shape
    total = 0.0
    for i in range(b):
        for k in range(c):
            p = softmax(teacher[i, :, :, k].ravel() / temperature)
            q = softmax(student[i, :, :, k].ravel() / temperature)
            total += rel_entr(p, q).sum()
    return temperature**2 * total / (b * c)


def ref_dkd(teacher, student, labels, alpha, beta, temperature):
    """Pixel by pixel, from probabilities in float64 (the DKD paper's form)."""
    teacher, student = ref_on_teacher_grid(teacher, student)
    labels = ref_grid_labels(labels, teacher.shape[1:3])
    p = softmax(ref_two_class(teacher) / temperature, axis=-1)
    q = softmax(ref_two_class(student) / temperature, axis=-1)
    values = []
    for b, i, j in zip(*np.nonzero(labels != IGNORE)):
        t = labels[b, i, j]
        pt, qt = p[b, i, j], q[b, i, j]
        tckd = rel_entr([pt[t], 1 - pt[t]], [qt[t], 1 - qt[t]]).sum()
        rest_p, rest_q = np.delete(pt, t), np.delete(qt, t)
        nckd = rel_entr(rest_p / rest_p.sum(), rest_q / rest_q.sum()).sum()
        values.append(temperature**2 * (alpha * tckd + beta * nckd))
    return np.mean(values)


def ref_mgd(loss, teacher, student, draws):
    """Sum over levels of Σ (generator(mask · align(student)) − teacher)² / B."""
    total = 0.0
    for level, (t, s) in enumerate(zip(teacher, student)):
        s = np.asarray(s, "float64")
        aligner = loss.aligners[level]
        if aligner is not None:
            kernel, bias = (to_numpy(v) for v in aligner.weights)
            s = ref_conv2d(s, kernel, bias)
        if s.shape[1:3] != t.shape[1:3]:
            s = ref_resize_bilinear(s, t.shape[1:3])
        keep = (draws[level] >= loss.mask_ratio).astype("float64")
        generator = loss.generators[level]
        k1, b1 = (to_numpy(v) for v in generator.hidden.weights)
        k2, b2 = (to_numpy(v) for v in generator.output_conv.weights)
        generated = ref_conv2d(np.maximum(ref_conv2d(s * keep, k1, b1), 0), k2, b2)
        total += ((generated - t) ** 2).sum() / t.shape[0]
    return loss.weight * total


@pytest.fixture
def uniform_draws(monkeypatch):
    """keras.random.uniform replaced by known arrays (recorded in order)."""
    draws = []

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        rng = np.random.default_rng(200 + len(draws))
        draws.append(rng.random(size=tuple(int(s) for s in shape)).astype("float32"))
        return keras.ops.convert_to_tensor(draws[-1])

    monkeypatch.setattr(keras.random, "uniform", uniform)
    return draws


def random_labels(rng, shape, num_classes, ignore_fraction=0.2):
    labels = rng.integers(0, max(num_classes, 2), size=shape)
    labels[rng.random(shape) < ignore_fraction] = IGNORE
    return labels


# Teacher logits, student logits (another size: resized), labels' size.
LOGIT_CASES = [
    ((2, 7, 9, 5), (2, 7, 9, 5), (7, 9)),
    ((2, 9, 11, 3), (2, 5, 6, 3), (9, 11)),  # student upsampled
    ((1, 6, 8, 4), (1, 9, 12, 4), (12, 16)),  # student downsampled, labels 2× the grid
    ((2, 7, 5, 1), (2, 7, 5, 1), (14, 15)),  # one sigmoid channel, labels of odd ratio
]


# ------------------------------------------------------------------------ KD


@pytest.mark.parametrize("teacher_shape, student_shape, label_size", LOGIT_CASES)
def test_kd_matches_reference(rng, teacher_shape, student_shape, label_size):
    teacher = 3 * rng.normal(size=teacher_shape).astype("float32")
    student = 3 * rng.normal(size=student_shape).astype("float32")
    labels = random_labels(rng, (teacher_shape[0],) + label_size, teacher_shape[-1])
    loss = LogitKD(temperature=2.5, weight=0.7)
    close(loss([teacher], [student])["kd"], 0.7 * ref_kd(teacher, student, 2.5))
    close(loss([teacher], [student], labels=labels)["kd"], 0.7 * ref_kd(teacher, student, 2.5, labels))
    # (B, H, W, 1) labels are the same labels
    close(loss([teacher], [student], labels=labels[..., None])["kd"], 0.7 * ref_kd(teacher, student, 2.5, labels))


def test_kd_ignores_labels_when_ignore_label_is_none(rng):
    teacher = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    student = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    labels = np.full((2, 5, 7), IGNORE)
    close(LogitKD(ignore_label=None)([teacher], [student], labels=labels)["kd"], ref_kd(teacher, student, 1.0))
    # every pixel ignored: 0, not 0/0
    assert float(to_numpy(LogitKD()([teacher], [student], labels=labels)["kd"])) == 0.0


def test_kd_gradient_is_t_times_q_minus_p_on_valid_pixels(rng):
    """d/dz_S of T²·mean KL = T·(softmax(z_S/T) − softmax(z_T/T)) / N_valid, 0 on ignore pixels."""
    teacher = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    student = keras.Variable(rng.normal(size=(2, 5, 6, 4)).astype("float32"))
    labels = random_labels(rng, (2, 5, 6), 4)
    loss = LogitKD(temperature=2.0)
    (grad,) = gradients(lambda: loss([teacher], [student.value], labels=labels)["kd"], [student])
    valid = (labels != IGNORE)[..., None]
    p = softmax(teacher.astype("float64") / 2.0, axis=-1)
    q = softmax(to_numpy(student).astype("float64") / 2.0, axis=-1)
    expected = 2.0 * (q - p) * valid / valid.sum()
    # atol: float32's resolution of q and p themselves (q − p cancels), scaled as the gradient
    np.testing.assert_allclose(to_numpy(grad), expected, rtol=RTOL, atol=1e-6 * 2.0 / valid.sum())


# ----------------------------------------------------------------------- CWD


@pytest.mark.parametrize("teacher_shape, student_shape, label_size", LOGIT_CASES)
def test_cwd_matches_reference(rng, teacher_shape, student_shape, label_size):
    teacher = 3 * rng.normal(size=teacher_shape).astype("float32")
    student = 3 * rng.normal(size=student_shape).astype("float32")
    loss = ChannelWiseKD()
    assert (loss.temperature, loss.weight) == (4.0, 3.0)
    close(loss([teacher], [student])["cwd"], 3.0 * ref_cwd(teacher, student, 4.0))
    labels = random_labels(rng, (teacher_shape[0],) + label_size, teacher_shape[-1])
    close(ChannelWiseKD(temperature=1.5, weight=1.0)([teacher], [student], labels=labels)["cwd"],
          ref_cwd(teacher, student, 1.5))  # label-free: labels change nothing


# ----------------------------------------------------------------------- DKD


@pytest.mark.parametrize("teacher_shape, student_shape, label_size", LOGIT_CASES)
def test_dkd_matches_reference(rng, teacher_shape, student_shape, label_size):
    teacher = 3 * rng.normal(size=teacher_shape).astype("float32")
    student = 3 * rng.normal(size=student_shape).astype("float32")
    labels = random_labels(rng, (teacher_shape[0],) + label_size, teacher_shape[-1])
    default = DecoupledKD()
    assert (default.alpha, default.beta, default.temperature) == (1.0, 2.0, 1.0)
    close(default([teacher], [student], labels=labels)["dkd"],
          ref_dkd(teacher, student, labels, 1.0, 2.0, 1.0))
    loss = DecoupledKD(alpha=0.5, beta=3.0, temperature=2.0, weight=1.5)
    close(loss([teacher], [student], labels=labels)["dkd"],
          1.5 * ref_dkd(teacher, student, labels, 0.5, 3.0, 2.0))


def test_dkd_without_ignore_pixels_and_with_alpha_or_beta_zero(rng):
    teacher = 2 * rng.normal(size=(2, 5, 7, 4)).astype("float32")
    student = 2 * rng.normal(size=(2, 5, 7, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(2, 5, 7))
    for alpha, beta in ((1.0, 0.0), (0.0, 1.0)):
        close(DecoupledKD(alpha=alpha, beta=beta)([teacher], [student], labels=labels)["dkd"],
              ref_dkd(teacher, student, labels, alpha, beta, 1.0))


def test_dkd_needs_labels(rng):
    logits = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    assert DecoupledKD.requires_labels and not LogitKD.requires_labels
    with pytest.raises(ValueError, match="`labels`"):
        DecoupledKD()([logits], [logits])


def test_dkd_confident_student_is_finite(rng):
    """1 − p_t underflows to 0 for a certain student: log space keeps it finite."""
    teacher = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    values = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(2, 5, 6))
    values[0, 0, 0, labels[0, 0, 0]] = 1e4  # certain and right
    values[0, 0, 1, (labels[0, 0, 1] + 1) % 4] = 1e4  # certain and wrong
    teacher[0, 1, 1, labels[0, 1, 1]] = 1e4  # certain teacher
    student = keras.Variable(values)
    loss = DecoupledKD()
    value = loss([teacher], [student.value], labels=labels)["dkd"]
    (grad,) = gradients(lambda: loss([teacher], [student.value], labels=labels)["dkd"], [student])
    assert np.isfinite(to_numpy(value)) and np.all(np.isfinite(to_numpy(grad)))


@pytest.mark.parametrize("make", [LogitKD, ChannelWiseKD, DecoupledKD])
def test_large_logits_stay_finite(rng, make):
    teacher = 1e3 * rng.normal(size=(2, 5, 6, 4)).astype("float32")
    student = keras.Variable(1e3 * rng.normal(size=(2, 5, 6, 4)).astype("float32"))
    labels = random_labels(rng, (2, 5, 6), 4)
    loss = make()
    (name,) = loss.term_names
    value = loss([teacher], [student.value], labels=labels)[name]
    (grad,) = gradients(lambda: loss([teacher], [student.value], labels=labels)[name], [student])
    assert np.isfinite(to_numpy(value)) and float(to_numpy(value)) > 0
    assert np.all(np.isfinite(to_numpy(grad))) and np.any(to_numpy(grad) != 0)


# ----------------------------------------------------------------------- MGD


@pytest.mark.parametrize(
    "teacher_shapes, student_shapes",
    [
        ([(2, 5, 7, 6)], [(2, 5, 7, 3)]),  # aligned by a 1×1 conv
        # two levels, summed; the second: same channels (no aligner), resized
        ([(2, 5, 7, 6), (2, 6, 5, 4)], [(2, 5, 7, 3), (2, 3, 3, 4)]),
    ],
)
def test_mgd_matches_reference(rng, uniform_draws, teacher_shapes, student_shapes):
    teacher = [rng.normal(size=s).astype("float32") for s in teacher_shapes]
    student = [rng.normal(size=s).astype("float32") for s in student_shapes]
    names = [f"level_{i}" for i in range(len(teacher))]
    loss = MaskedGenerativeKD(names, names, weight=0.5, mask_ratio=0.6, seed=1)
    value = loss(teacher, student)["mgd"]
    for level, (t, s) in enumerate(zip(teacher_shapes, student_shapes)):
        assert (loss.aligners[level] is None) == (t[-1] == s[-1])
        assert uniform_draws[level].shape == t[:3] + (1,)
    close(value, ref_mgd(loss, teacher, student, uniform_draws))


def test_mgd_mask_fraction_and_seed():
    loss = MaskedGenerativeKD(["t"], ["s"], seed=3)
    masks = [to_numpy(loss.draw_mask((4, 16, 16, 1))) for _ in range(8)]
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert abs((1 - np.mean(masks)) - 0.75) < 0.02
    assert abs((1 - masks[0].mean()) - 0.75) < 0.05  # each draw, not just the average
    assert not np.array_equal(masks[0], masks[1])  # the stream advances
    again = MaskedGenerativeKD(["t"], ["s"], seed=3)
    np.testing.assert_array_equal(to_numpy(again.draw_mask((4, 16, 16, 1))), masks[0])
    other = MaskedGenerativeKD(["t"], ["s"], seed=4)
    assert not np.array_equal(to_numpy(other.draw_mask((4, 16, 16, 1))), masks[0])


def test_mgd_gradients_reach_student_aligner_and_generator_not_teacher(rng):
    teacher = keras.Variable(rng.normal(size=(2, 5, 7, 6)).astype("float32"))
    student = keras.Variable(rng.normal(size=(2, 5, 7, 3)).astype("float32"))
    loss = MaskedGenerativeKD(["t"], ["s"], seed=0)
    loss([teacher.value], [student.value])  # build
    assert len(loss.trainable_variables) == 6  # aligner and generator, kernels and biases
    variables = [teacher, student] + loss.trainable_variables
    grads = gradients(lambda: loss([teacher.value], [student.value])["mgd"], variables)
    assert grads[0] is None or np.all(to_numpy(grads[0]) == 0)
    assert all(g is not None and np.any(to_numpy(g) != 0) for g in grads[1:])


def test_mgd_round_trip_resumes_the_mask_stream(tmp_path, rng):
    teacher = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    student = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    loss = MaskedGenerativeKD(["t"], ["s"], weight=1.0, seed=5)
    t_in, s_in = keras.Input((6, 6, 4)), keras.Input((6, 6, 3))
    model = keras.Model([t_in, s_in], loss([t_in], [s_in]))
    model([teacher, student])  # advance the stream past its seed
    path = str(tmp_path / "mgd.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    first, second = model([teacher, student])["mgd"], loaded([teacher, student])["mgd"]
    np.testing.assert_allclose(to_numpy(second), to_numpy(first), rtol=1e-6)
    # the masks differ from call to call, so equal values mean equal streams
    assert float(to_numpy(model([teacher, student])["mgd"])) != float(to_numpy(first))


# --------------------------------------------------------------- all of them


def _all_losses():
    return [
        LogitKD(temperature=2.0, weight=0.5, ignore_label=None),
        ChannelWiseKD(temperature=3.0, weight=2.0, name="cwd_logits"),
        DecoupledKD(alpha=0.5, beta=4.0, temperature=1.5, ignore_label=254),
        MaskedGenerativeKD(["a", "b"], ["c", "d"], mask_ratio=0.5, weight=1e-3, seed=9),
    ]


@pytest.mark.parametrize("index", range(4))
def test_config_round_trip(index):
    loss = _all_losses()[index]
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("make", [LogitKD, ChannelWiseKD, DecoupledKD])
def test_logit_losses_keras_round_trip(tmp_path, rng, make):
    teacher = rng.normal(size=(2, 5, 6, 3)).astype("float32")
    student = rng.normal(size=(2, 5, 6, 3)).astype("float32")
    labels = random_labels(rng, (2, 5, 6), 3)
    t_in, s_in = keras.Input((5, 6, 3)), keras.Input((5, 6, 3))
    l_in = keras.Input((5, 6), dtype="int32")
    loss = make(temperature=2.0)
    model = keras.Model([t_in, s_in, l_in], loss([t_in], [s_in], labels=l_in))
    path = str(tmp_path / "loss.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    name = loss.name
    before, after = model([teacher, student, labels]), loaded([teacher, student, labels])
    np.testing.assert_allclose(to_numpy(after[name]), to_numpy(before[name]), rtol=1e-6)
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()


def test_default_names_are_distinct_from_each_other_and_sard():
    names = [
        LogitKD().name, ChannelWiseKD().name, DecoupledKD().name,
        MaskedGenerativeKD(["a"], ["b"]).name,
    ]
    assert names == ["kd", "cwd", "dkd", "mgd"]
    assert not {"sard", "sard_fc", "sard_da"} & set(names)


def test_losses_are_float32_under_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        teacher = keras.ops.cast(rng.normal(size=(2, 6, 6, 4)), "bfloat16")
        student = keras.ops.cast(rng.normal(size=(2, 6, 6, 4)), "bfloat16")
        labels = random_labels(rng, (2, 6, 6), 4)
        labels[labels == IGNORE] = 254  # DecoupledKD's ignore label below
        for loss in _all_losses():
            if isinstance(loss, MaskedGenerativeKD):
                terms = loss([teacher, student], [student, teacher])
            else:
                terms = loss([teacher], [student], labels=labels)
            for value in terms.values():
                assert keras.backend.standardize_dtype(value.dtype) == "float32"
            assert all(v.dtype == "float32" for v in loss.weights if v.trainable)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LogitKD(temperature=0), "`temperature`"),
        (lambda: LogitKD(temperature=-1.0), "`temperature`"),
        (lambda: LogitKD(weight=-1), "`weight`"),
        (lambda: LogitKD(ignore_label=1.5), "`ignore_label`"),
        (lambda: LogitKD(teacher_layers=["a", "b"], student_layers=["c", "d"]), "one logits map"),
        (lambda: LogitKD(teacher_layers=["a"]), "`teacher_layers` and `student_layers`"),
        (lambda: ChannelWiseKD(temperature=0.0), "`temperature`"),
        (lambda: ChannelWiseKD(temperature=float("inf")), "`temperature`"),
        (lambda: ChannelWiseKD(weight=float("nan")), "`weight`"),
        (lambda: DecoupledKD(alpha=-0.1), "`alpha`"),
        (lambda: DecoupledKD(beta=-2), "`beta`"),
        (lambda: DecoupledKD(temperature="1"), "`temperature`"),
        (lambda: MaskedGenerativeKD(["a"], ["b"], mask_ratio=0), "`mask_ratio`"),
        (lambda: MaskedGenerativeKD(["a"], ["b"], mask_ratio=1.0), "`mask_ratio`"),
        (lambda: MaskedGenerativeKD(["a"], ["b"], weight=-2e-5), "`weight`"),
        (lambda: MaskedGenerativeKD(["a"], ["b"], seed=1.5), "`seed`"),
        (lambda: MaskedGenerativeKD(None, None), "`teacher_layers`"),
    ],
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mismatched_inputs_name_the_shapes(rng):
    teacher = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    with pytest.raises(ValueError, match="same number of classes.*3.*2"):
        LogitKD()([teacher], [teacher[..., :2]])
    with pytest.raises(ValueError, match="`student_outputs`.*rank-4"):
        ChannelWiseKD()([teacher], [teacher[0]])
    with pytest.raises(ValueError, match="`teacher_outputs` must hold 2"):
        MaskedGenerativeKD(["a", "b"], ["c", "d"])([teacher], [teacher])
