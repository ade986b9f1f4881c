"""FeatureTaps: finding layers, recording them, and the model cut after them."""

import keras
import numpy as np
import pytest

from helpers import tiny_segmenter, to_numpy
from keras_sard.taps import FeatureTaps

LEVELS = ["teacher_level_1", "teacher_level_2"]


def images(rng, n=2, size=16):
    return rng.random((n, size, size, 3)).astype("float32")


def test_truncated_model_gives_the_recorded_values_and_skips_the_head(rng):
    model = tiny_segmenter("teacher", 8)
    taps = FeatureTaps(model, LEVELS, "teacher")
    cut = taps.truncated_model()
    head_layers = {"teacher_up", "teacher_logits"}
    assert head_layers.isdisjoint(layer.name for layer in cut.layers)
    assert {id(w) for w in cut.weights} <= {id(w) for w in model.weights}  # shared, no new ones
    x = images(rng)
    with taps.record() as full:
        model(x, training=False)
    with taps.record() as recorded:
        outputs = cut(x, training=False)
    for name, output in zip(LEVELS, outputs):
        np.testing.assert_array_equal(to_numpy(recorded[name]), to_numpy(full[name]))
        np.testing.assert_array_equal(to_numpy(output), to_numpy(full[name]))
    # Only as deep as the deepest tap: level 1 alone needs no level 2.
    shallow = FeatureTaps(model, ["teacher_level_1"], "teacher").truncated_model()
    assert "teacher_level_2" not in {layer.name for layer in shallow.layers}


def test_truncated_model_of_a_sequential_model(rng):
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 1, name="a"), keras.layers.Conv2D(2, 1, name="b")]
    )
    cut = FeatureTaps(model, ["a"]).truncated_model()
    x = images(rng, size=8)
    (output,) = keras.tree.flatten(cut(x))
    np.testing.assert_allclose(to_numpy(output), to_numpy(model.get_layer("a")(x)), rtol=1e-6)
    assert [layer.name for layer in cut.layers if layer.name == "b"] == []


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.stem = keras.layers.Conv2D(4, 1, name="stem")
        self.head = keras.layers.Conv2D(2, 1, name="head")

    def call(self, x):
        return self.head(self.stem(x))


def test_no_truncated_model_where_the_graph_does_not_reach_the_taps():
    teacher = tiny_segmenter("teacher", 8)
    inputs = keras.Input((16, 16, 3))
    nested = keras.Model(inputs, teacher(inputs), name="wrapper")  # taps inside a nested model
    assert FeatureTaps(nested, LEVELS).truncated_model() is None
    subclassed = Subclassed()
    subclassed(np.zeros((1, 8, 8, 3), "float32"))
    assert FeatureTaps(subclassed, ["stem"]).truncated_model() is None
    shared = keras.layers.Conv2D(3, 1, name="shared")
    inputs = keras.Input((8, 8, 3))
    twice = keras.Model(inputs, shared(shared(inputs)))
    assert FeatureTaps(twice, ["shared"]).truncated_model() is None
    assert FeatureTaps(teacher, []).truncated_model() is None


def test_recording_a_layer_that_runs_twice_is_an_error():
    shared = keras.layers.Conv2D(3, 1, name="shared")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, shared(shared(inputs)))
    taps = FeatureTaps(model, ["shared"])
    with pytest.raises(ValueError, match="'shared' ran 2 times"):
        with taps.record():
            model(np.zeros((1, 8, 8, 3), "float32"))


@pytest.mark.parametrize("name", ["swin_l->swin_t", "swin_l->resnet50", "small"])
def test_the_recipes_teachers_are_cut_before_their_decoder(name):
    from keras_sard.models import get_recipe

    recipe = get_recipe(name)
    teacher = recipe.build_teacher(num_classes=3, image_size=64, tiny=True)
    cut = FeatureTaps(teacher, recipe.teacher_layers, "teacher").truncated_model()
    names = [layer.name for layer in cut.layers]
    assert set(recipe.teacher_layers) <= set(names)
    assert not any(n.startswith("teacher_decoder") for n in names)
    assert any(layer.name.startswith("teacher_decoder") for layer in teacher.layers)
    assert cut.count_params() < teacher.count_params()
