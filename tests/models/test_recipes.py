"""The paper's teacher → student recipes: lookup, and a few distillation steps
of each pair's tiny configuration with SARD on synthetic data."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_sard
from keras_sard.data.synthetic import synthetic_arrays
from keras_sard.losses import SARDLoss
from keras_sard.models import RECIPES, Recipe, get_recipe

BACKEND = keras.backend.backend()


def test_lookup():
    assert RECIPES == ("swin_l->swin_t", "swin_b->swin_s", "swin_l->resnet50", "small")
    recipe = get_recipe("swin_l→resnet50")
    assert (recipe.teacher_backbone, recipe.student_backbone) == ("swin_large", "resnet50")
    assert get_recipe(" Swin_B -> Swin_S ").name == "swin_b->swin_s"
    with pytest.raises(ValueError, match=r"Unknown recipe 'swin_t->swin_l'.*'swin_l->swin_t'.*'small'"):
        get_recipe("swin_t->swin_l")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.name = "other"
    assert isinstance(recipe, Recipe)


def test_recipes_own_their_schedules():
    from keras_sard.schedules import PAPER_SCHEDULE, SYNTHETIC_SCHEDULE, SYNTHETIC_TEACHER_SCHEDULE

    for name in ("swin_l->swin_t", "swin_b->swin_s", "swin_l->resnet50"):
        recipe = get_recipe(name)
        assert recipe.teacher_schedule == recipe.student_schedule == PAPER_SCHEDULE
        assert recipe.description
    small = get_recipe("small")
    assert (small.teacher_schedule, small.student_schedule) == (
        SYNTHETIC_TEACHER_SCHEDULE, SYNTHETIC_SCHEDULE)


@pytest.mark.parametrize("name", RECIPES)
def test_build_teacher_and_student_alone_match_build(name):
    recipe = get_recipe(name)
    keras.utils.set_random_seed(3)
    pair = recipe.build(num_classes=3, image_size=64, tiny=True)
    keras.utils.set_random_seed(3)
    teacher = recipe.build_teacher(num_classes=3, image_size=64, tiny=True)
    student = recipe.build_student(num_classes=3, image_size=64, tiny=True)
    assert (teacher.name, student.name) == ("teacher", "student")
    for alone, built in ((teacher, pair.teacher), (student, pair.student)):
        assert alone.count_params() == built.count_params()
        assert [w.shape for w in alone.weights] == [w.shape for w in built.weights]
    np.testing.assert_array_equal(  # the same random draws, in the same order
        keras.ops.convert_to_numpy(teacher.weights[0]), keras.ops.convert_to_numpy(pair.teacher.weights[0]))
    assert (recipe.teacher_layers, recipe.student_layers) == (pair.teacher_layers, pair.student_layers)
    for model, names in ((teacher, recipe.teacher_layers), (student, recipe.student_layers)):
        for level, layer in enumerate(names):
            assert model.get_layer(layer).output.shape[1] == 64 // 4 // 2**level
    if recipe.student_backbone != "small":
        assert recipe.build_student(3, 64, tiny=True, decoder_channels=24).count_params() != student.count_params()


@pytest.mark.parametrize("name", RECIPES)
def test_tiny_pair_distils_with_sard(name):
    teacher, student, teacher_layers, student_layers = get_recipe(name).build(num_classes=2, image_size=64, tiny=True)
    assert teacher_layers == tuple(f"teacher_level_{i}" for i in range(1, 5))
    assert student_layers == tuple(f"student_level_{i}" for i in range(1, 5))
    images, masks = synthetic_arrays("fragments", num_examples=4, image_size=(64, 64))
    distiller = keras_sard.Distiller(
        teacher, student, [SARDLoss(teacher_layers, student_layers, radius=2, hidden_channels=8, seed=0)]
    )
    # Eager steps on TensorFlow and PyTorch (tracing a Swin step costs more than
    # two steps); JAX compiles, as its eager mode dispatches op by op.
    distiller.compile(optimizer=keras.optimizers.AdamW(1e-3), run_eagerly=BACKEND != "jax")
    before = [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]
    teacher_before = [keras.ops.convert_to_numpy(w) for w in teacher.weights]
    history = distiller.fit(images.astype("float32") / 255.0, masks, batch_size=2, epochs=1, verbose=0)
    for term in ("loss", "task_loss", "sard_fc", "sard_da"):
        assert np.isfinite(history.history[term][-1])
    assert history.history["sard_fc"][-1] > 0
    changed = [not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, student.trainable_weights)]
    assert all(changed)
    for b, w in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(b, keras.ops.convert_to_numpy(w))
