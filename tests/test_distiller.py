"""The Distiller: one forward each, gradients, fit/evaluate/predict, saving, errors."""

import os

import keras
import numpy as np
import pytest

from helpers import tiny_batch, tiny_segmenter, to_numpy
from keras_sard import Distiller
from keras_sard.losses import LogitKD, MaskedGenerativeKD, SARDLoss
from keras_sard.metrics import BoundaryIoU, MeanIoU

BACKEND = keras.backend.backend()
LEVELS_T = ["teacher_level_1", "teacher_level_2"]
LEVELS_S = ["student_level_1", "student_level_2"]


def sard(**kwargs):
    kwargs.setdefault("radius", 2)
    kwargs.setdefault("hidden_channels", 8)
    kwargs.setdefault("seed", 0)
    return SARDLoss(LEVELS_T, LEVELS_S, **kwargs)


def make_distiller(losses=None, teacher=None, student=None, **kwargs):
    teacher = teacher or tiny_segmenter("teacher", 8)
    student = student or tiny_segmenter("student", 4)
    return Distiller(teacher, student, [sard()] if losses is None else losses, **kwargs)


def compile_(distiller, optimizer=None, **kwargs):
    distiller.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-2),
        metrics=[MeanIoU(2), BoundaryIoU(2)],
        **kwargs,
    )
    return distiller


class CountCalls(keras.layers.Layer):
    """Identity that counts how often it runs (in Python, so once per eager call)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def call(self, x):
        self.calls += 1
        return x


def counted(model):
    inputs = keras.Input(model.input_shape[1:])
    counter = CountCalls(name=f"{model.name}_count")
    return keras.Model(inputs, model(counter(inputs)), name=f"{model.name}_counted"), counter


# ----------------------------------------------------------------- the step


def test_one_teacher_and_one_student_forward_per_step(rng):
    teacher, teacher_count = counted(tiny_segmenter("teacher", 8))
    student, student_count = counted(tiny_segmenter("student", 4))
    distiller = compile_(make_distiller(teacher=teacher, student=student), run_eagerly=True)
    x, y = tiny_batch(rng, n=6)
    # Keras' first fit traces `call` once symbolically to build the compiled
    # metrics (on JAX and PyTorch): that is no training forward pass.
    distiller.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0)
    teacher_count.calls = student_count.calls = 0
    distiller.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 3 steps
    assert (teacher_count.calls, student_count.calls) == (3, 3)
    teacher_count.calls = student_count.calls = 0
    distiller.evaluate(x, y, batch_size=3, verbose=0)  # 2 steps
    assert (teacher_count.calls, student_count.calls) == (2, 2)


def count_calls(layer):
    """Count the runs of `layer` (in Python: once per eager call) in a list."""
    calls = []
    original = layer.call

    def call(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    object.__setattr__(layer, "call", call)
    return calls


def mgd():
    return MaskedGenerativeKD(["teacher_level_2"], ["student_level_2"], seed=1)


LOSSES = {
    "scratch": lambda: [],
    "sard": lambda: [sard()],
    "mgd": lambda: [mgd()],
    "kd": lambda: [LogitKD()],
    "sard+kd": lambda: [sard(), LogitKD()],
}


@pytest.mark.parametrize("method", LOSSES)
def test_teacher_runs_only_as_far_as_the_losses_read(method, rng):
    # Features only: up to the deepest tap, never the head; logits: the whole
    # teacher once; no distillation loss: no teacher at all.
    teacher = tiny_segmenter("teacher", 8)
    stem = count_calls(teacher.get_layer("teacher_level_1"))
    head = count_calls(teacher.get_layer("teacher_logits"))
    distiller = compile_(make_distiller(LOSSES[method](), teacher=teacher), run_eagerly=True)
    x, y = tiny_batch(rng, n=6)
    distiller.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0)  # builds the metrics
    stem.clear()
    head.clear()
    distiller.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 3 steps
    distiller.evaluate(x, y, batch_size=3, verbose=0)  # 2 steps
    steps = 0 if method == "scratch" else 5
    assert (len(stem), len(head)) == (steps, steps if "kd" in method else 0)


def test_teacher_cut_after_its_taps_gives_the_whole_teachers_numbers(rng):
    teacher = tiny_segmenter("teacher", 8)
    head = count_calls(teacher.get_layer("teacher_logits"))
    inputs = keras.Input((16, 16, 3))
    # Its levels nested one model deeper: a teacher the Distiller runs whole.
    whole = keras.Model(inputs, teacher(inputs), name="teacher_whole")
    x, y = tiny_batch(rng, n=8)

    def run(teacher):
        keras.utils.set_random_seed(1)  # the same student and heads
        distiller = Distiller(teacher, tiny_segmenter("student", 4), [sard(), mgd()])
        compile_(distiller, optimizer=keras.optimizers.SGD(0.05))
        head.clear()
        before = distiller.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
        history = distiller.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        after = distiller.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
        return before, history, after, [to_numpy(w) for w in distiller.student.weights], len(head)

    cut = run(teacher)
    full = run(whole)
    assert cut[-1] == 0 and full[-1] > 0  # the head ran in the whole teacher only
    for key, value in full[0].items():
        np.testing.assert_allclose(cut[0][key], value, rtol=1e-5, atol=1e-7, err_msg=key)
    for key, values in full[1].items():
        np.testing.assert_allclose(cut[1][key], values, rtol=1e-5, atol=1e-7, err_msg=key)
    for key, value in full[2].items():
        np.testing.assert_allclose(cut[2][key], value, rtol=1e-5, atol=1e-7, err_msg=key)
    for got, expected in zip(cut[3], full[3]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_only_student_and_heads_train_teacher_is_untouched(rng):
    distiller = compile_(make_distiller())
    teacher_weights = [w.copy() for w in distiller.teacher.get_weights()]
    student_before = [to_numpy(v).copy() for v in distiller.student.trainable_variables]
    heads = [v for loss in distiller.distillation_losses for v in loss.trainable_variables]
    heads_before = [to_numpy(v).copy() for v in heads]
    teacher_ids = {id(v) for v in distiller.teacher.variables}
    assert not any(id(v) in teacher_ids for v in distiller.trainable_variables)
    assert len(distiller.trainable_variables) == len(student_before) + len(heads_before)

    x, y = tiny_batch(rng)
    distiller.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for before, after in zip(teacher_weights, distiller.teacher.get_weights()):
        np.testing.assert_array_equal(before, after)  # BN statistics included
    for before, variable in zip(student_before + heads_before, distiller.student.trainable_variables + heads):
        assert np.any(before != to_numpy(variable)), variable.path


@pytest.mark.skipif(BACKEND != "torch", reason="autograd graphs exist on torch only")
def test_teacher_forward_records_no_graph_on_torch(rng):
    distiller = make_distiller()
    x, y = tiny_batch(rng, n=2)
    captured = {}
    original = distiller._teacher_taps.record

    def spy():
        context = original()
        features = context.__enter__()
        captured["features"] = features
        return _Exit(context)

    class _Exit:
        def __init__(self, context):
            self.context = context

        def __enter__(self):
            return captured["features"]

        def __exit__(self, *exc):
            return self.context.__exit__(*exc)

    distiller._teacher_taps.record = spy
    total, _, _ = distiller.compute_distillation(x, y, training=True)
    assert total.requires_grad
    assert all(not f.requires_grad for f in captured["features"].values())


def test_logs_every_term_and_metric_and_loss_goes_down(rng):
    distiller = compile_(make_distiller())
    x, y = tiny_batch(rng, n=16)
    history = distiller.fit(x, y, batch_size=4, epochs=6, verbose=0).history
    assert {"loss", "task_loss", "sard_fc", "sard_da", "miou", "biou"} <= set(history)
    np.testing.assert_allclose(
        np.array(history["loss"]),
        np.array(history["task_loss"]) + history["sard_fc"] + np.array(history["sard_da"]),
        rtol=1e-5,
    )
    assert history["loss"][-1] < history["loss"][0]
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert {"loss", "task_loss", "sard_fc", "sard_da", "miou", "biou"} <= set(logs)
    assert 0.0 <= logs["miou"] <= 1.0 and 0.0 <= logs["biou"] <= 1.0
    assert distiller.predict(x[:3], verbose=0).shape == (3, 16, 16, 2)


def test_predict_and_call_run_the_student(rng):
    distiller = make_distiller()
    x, _ = tiny_batch(rng, n=2)
    np.testing.assert_allclose(to_numpy(distiller(x)), to_numpy(distiller.student(x)), rtol=1e-6)


def test_scratch_student_and_unlabelled_data(rng):
    x, y = tiny_batch(rng)
    scratch = compile_(make_distiller(losses=[]))
    history = scratch.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    np.testing.assert_allclose(history["loss"], history["task_loss"], rtol=1e-6)
    # SARD is label-free: distil on images alone (no task loss, no metrics).
    unlabelled = make_distiller()
    unlabelled.compile(optimizer="adam")
    history = unlabelled.fit(x, batch_size=4, epochs=1, verbose=0).history
    np.testing.assert_allclose(history["loss"], np.add(history["sard_fc"], history["sard_da"]), rtol=1e-5)
    with pytest.raises(ValueError, match="need labels"):
        compile_(make_distiller()).fit(x, batch_size=4, epochs=1, verbose=0)


@pytest.mark.skipif(BACKEND == "torch", reason="jit_compile is for TensorFlow and JAX")
def test_jit_compile_and_gradient_accumulation(rng):
    x, y = tiny_batch(rng)
    distiller = compile_(
        make_distiller(),
        optimizer=keras.optimizers.AdamW(1e-2, gradient_accumulation_steps=2),
        jit_compile=True,
    )
    history = distiller.fit(x, y, batch_size=2, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert int(to_numpy(distiller.optimizer.iterations)) == 4  # 8 steps, 2 accumulated each


def test_gradient_accumulation_applies_every_second_step(rng):
    distiller = compile_(
        make_distiller(), optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    )
    x, y = tiny_batch(rng, n=2)
    before = [to_numpy(v).copy() for v in distiller.student.trainable_variables]
    distiller.fit(x[:1], y[:1], batch_size=1, epochs=1, verbose=0)
    after_one = [to_numpy(v) for v in distiller.student.trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after_one))
    distiller.fit(x[1:], y[1:], batch_size=1, epochs=1, verbose=0)
    after_two = [to_numpy(v) for v in distiller.student.trainable_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after_two))


# ---------------------------------------------------------------- saving


def test_save_load_evaluate_same_numbers_and_student_alone(tmp_path, rng):
    x, y = tiny_batch(rng)
    distiller = compile_(make_distiller())
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Distiller) and loaded.compiled
    # The saved L_DA noise state is the one the original's next evaluate uses.
    expected = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    got = loaded.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)
    # The student alone.
    student_path = str(tmp_path / "student.keras")
    distiller.student.save(student_path)
    student = keras.saving.load_model(student_path)
    np.testing.assert_allclose(to_numpy(student(x)), to_numpy(distiller.student(x)), rtol=1e-5, atol=1e-6)
    # The loaded distiller trains on.
    history = loaded.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))


def saved_arrays(path):
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        names = []
        weights.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return config, names


def test_saving_stores_the_teacher_once_not_its_cut_model(tmp_path, rng):
    teacher = tiny_segmenter("teacher", 8)
    inputs = keras.Input((16, 16, 3))
    whole = keras.Model(inputs, teacher(inputs), name="teacher_whole")
    files = {}
    for label, model in (("cut", teacher), ("whole", whole)):
        distiller = compile_(make_distiller(teacher=model))
        distiller.fit(*tiny_batch(rng, n=2), batch_size=2, epochs=1, verbose=0)
        files[label] = str(tmp_path / f"{label}.keras")
        distiller.save(files[label])
    config, names = saved_arrays(files["cut"])
    assert "to_taps" not in config and not any("to_taps" in n or "teacher_pass" in n for n in names)
    assert len(names) == len(saved_arrays(files["whole"])[1])  # the same arrays, nothing extra
    loaded = keras.saving.load_model(files["cut"])
    head = count_calls(loaded.teacher.get_layer("teacher_logits"))
    loaded.evaluate(*tiny_batch(rng, n=2), verbose=0)  # compiled: counts the traced calls
    assert head == []  # cut again after loading


class StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def training_state(distiller):
    """Everything a resumed run must restore, by path: the student, the
    distillation heads (P_S, g_θ), the L_DA noise generators' state and the
    optimizer (iterations, moments)."""
    variables = list(distiller.student.variables)
    for loss in distiller.distillation_losses:
        variables += loss.variables  # heads and SeedGenerator states
    state = {v.path: to_numpy(v) for v in variables}
    state.update({f"optimizer/{v.name}": to_numpy(v) for v in distiller.optimizer.variables})
    return state


def test_backup_and_restore_resumes_without_losing_an_epoch(tmp_path, rng):
    x, y = tiny_batch(rng)

    def run(callbacks):
        keras.utils.set_random_seed(1)
        distiller = compile_(make_distiller(), optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.1))
        history = distiller.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        return distiller, history

    reference, _ = run([])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup, StopAfterEpoch(1)])
    resumed, history = run([keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert history.epoch == [2]  # epochs 0 and 1 were done before the interruption
    expected, actual = training_state(reference), training_state(resumed)
    assert set(actual) == set(expected)
    assert any("seed" in path for path in expected) and int(expected["optimizer/iteration"]) == 6
    for path, value in expected.items():
        np.testing.assert_allclose(actual[path], value, rtol=1e-6, atol=1e-7, err_msg=path)


def test_model_checkpoint_and_tensorboard(tmp_path, rng):
    x, y = tiny_batch(rng)
    distiller = compile_(make_distiller())
    checkpoint = str(tmp_path / "best.keras")
    logs = str(tmp_path / "logs")
    distiller.fit(
        x, y, batch_size=4, epochs=2, verbose=0, validation_data=(x, y),
        callbacks=[
            keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_biou", mode="max", save_best_only=True),
            keras.callbacks.TensorBoard(logs),
        ],
    )
    assert isinstance(keras.saving.load_model(checkpoint), Distiller)
    events = [f for _, _, files in os.walk(logs) for f in files if "tfevents" in f]
    assert events


# ----------------------------------------------------------------- errors


def test_incompatible_inputs_fail_at_construction():
    with pytest.raises(ValueError, match="same input"):
        Distiller(tiny_segmenter("teacher", 8, size=16), tiny_segmenter("student", 4, size=24), [])
    with pytest.raises(ValueError, match="same input"):
        Distiller(tiny_segmenter("teacher", 8, channels=3), tiny_segmenter("student", 4, channels=1), [])


def test_unknown_layer_fails_at_construction_with_close_names():
    with pytest.raises(ValueError, match=r"no layer named 'teacher_level_3'.*teacher_level_1"):
        make_distiller(losses=[SARDLoss(["teacher_level_3"], ["student_level_1"])])
    with pytest.raises(ValueError, match="student"):
        make_distiller(losses=[SARDLoss(["teacher_level_1"], ["student_levl_1"])])


def test_feature_mismatch_fails_at_construction():
    # Tapping a flat (rank-2) output for SARD: named, with both shapes.
    teacher = tiny_segmenter("teacher", 8)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="student_conv")(inputs)
    pooled = keras.layers.Reshape((1, 1, 4), name="student_pooled_map")(keras.layers.GlobalAveragePooling2D(name="student_pool")(x))
    student = keras.Model(inputs, keras.layers.Conv2D(2, 1)(x + pooled), name="student")
    with pytest.raises(ValueError, match=r"'student_pool'.*rank-4"):
        Distiller(teacher, student, [SARDLoss(["teacher_level_1"], ["student_pool"])])


def test_bad_arguments():
    with pytest.raises(TypeError, match="DistillationLoss"):
        make_distiller(losses=[keras.losses.MeanSquaredError()])
    with pytest.raises(ValueError, match="`task_loss_weight`"):
        make_distiller(task_loss_weight=-1)
    with pytest.raises(TypeError, match="`task_loss`"):
        make_distiller(task_loss="sparse_categorical_crossentropy")
    inputs = keras.Input((16, 16, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)), name="student")
    with pytest.raises(ValueError, match=r"student must output segmentation logits.*\(None, 2\)"):
        make_distiller(losses=[], student=classifier)
    with pytest.raises(ValueError, match="task_loss="):
        make_distiller().compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="same term names"):
        make_distiller(losses=[sard(), sard()])
    both = make_distiller(losses=[sard(), sard(name="sard_uniform", weighting="uniform")])
    assert {"sard_fc", "sard_uniform_fc"} <= set(both.term_trackers)
    with pytest.raises(ValueError, match="compile"):
        x, y = tiny_batch(np.random.default_rng(0), n=2)
        make_distiller().evaluate(x, y, verbose=0)


# ------------------------------------------------------- mixed precision


class DistillationTerms(keras.Operation):
    """The loss, its terms and the first level's W, for their dtypes: traced
    symbolically (an eager forward costs minutes of op-by-op compiles on JAX)."""

    def __init__(self, distiller):
        super().__init__()
        self.distiller = distiller

    def call(self, x, y):
        total, terms, logits = self.distiller.compute_distillation(x, y, training=True)
        with self.distiller._teacher_taps.record() as features:
            self.distiller.teacher(x)
        structure = self.distiller.distillation_losses[0].structure(features["teacher_level_1"])
        return {"total": total, "structure": structure, **terms}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_losses_and_structure_float32(policy, rng):
    x, y = tiny_batch(rng, n=4)
    keras.config.set_dtype_policy(policy)
    try:
        distiller = compile_(make_distiller(), optimizer="adamw")
        if policy == "mixed_float16":  # Keras adds loss scaling; the steps call scale_loss
            assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
        history = distiller.fit(x, y, batch_size=2, epochs=1, verbose=0).history
        specs = DistillationTerms(distiller).compute_output_spec(
            keras.KerasTensor(x.shape, "float32"), keras.KerasTensor(y.shape, "int32")
        )
    finally:
        keras.config.set_dtype_policy("float32")
    assert distiller.student.compute_dtype == distiller.teacher.compute_dtype == policy.split("_")[1]
    assert {name: spec.dtype for name, spec in specs.items()} == dict.fromkeys(specs, "float32")
    for name in ("loss", "task_loss", "sard_fc", "sard_da"):
        assert np.all(np.isfinite(history[name])), name
    assert history["skipped_steps"] == [0.0]


# ---------------------------------------------------------- bad batches


def test_non_finite_batch_is_skipped_and_counted_never_applied(rng):
    x, y = tiny_batch(rng, n=4)
    distiller = compile_(make_distiller(), optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.1))
    logs = distiller.train_on_batch(x[:2], y[:2], return_dict=True)
    assert logs["skipped_steps"] == 0.0
    before = training_state(distiller)
    bad = x[2:].copy()
    bad[0, 3, 5, 1] = np.nan  # one pixel of one image
    logs = distiller.train_on_batch(bad, y[2:], return_dict=True)
    assert logs["skipped_steps"] == 1.0
    after = training_state(distiller)
    for path, value in before.items():
        if "seed" not in path:  # the noise stream may move on; nothing else does
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    # Evaluation leaves the batch out of every metric and counts it.
    inf = x.copy()
    inf[1, 0, 0, 0] = np.inf
    logs = distiller.evaluate(inf, y, batch_size=2, verbose=0, return_dict=True)
    assert logs["skipped_steps"] == 1.0
    assert all(np.isfinite(v) for v in logs.values())
    expected = distiller.evaluate(x[2:], y[2:], batch_size=2, verbose=0, return_dict=True)
    for key in ("task_loss", "sard_fc", "miou", "biou"):  # L_DA draws new noise each call
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-5, err_msg=key)


def test_invalid_labels_raise_and_the_step_is_not_applied(rng):
    x, y = tiny_batch(rng, n=2)
    distiller = compile_(make_distiller())
    before = training_state(distiller)
    # K = 2 classes, 255 the ignore label: 2, -1 and 0.5 are no class ids.
    message = r"class ids in \[0, 2\) or the ignore label 255.*span \[{}, {}\]"
    for bad_value in (2, -1):
        labels = y.copy()
        labels[1, 4, 4] = bad_value
        with pytest.raises(ValueError, match=message.format(bad_value, bad_value)):
            distiller.train_on_batch(x, labels)
    after = training_state(distiller)
    for path, value in before.items():
        if "seed" not in path:
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    labels = y.astype("float32")
    labels[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=message.format(0.5, 0.5)):
        distiller.evaluate(x, labels, batch_size=2, verbose=0)
    # The model trains on once the labels are fixed.
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert logs["skipped_steps"] == 0.0 and np.isfinite(logs["loss"])
