"""What the figures show, read from a model: a layer's output during the
model's own forward pass (`read_layer`, through `keras_sard.taps.FeatureTaps`)
and the structure map of a teacher's features (`structure_maps`)."""

import keras
import numpy as np
from keras import ops, tree

from keras_sard.backend import steps
from keras_sard.structure import StructureWeights
from keras_sard.taps import FeatureTaps
from keras_sard.visualize.checks import (as_numpy, check_image, check_model_input,
                                         single_feature_map)

__all__ = ["read_layer", "structure_maps"]


def read_layer(model, layer, inputs, role="model"):
    """Run `model` once on `inputs`; return ``(layer output, model output)`` in NumPy.

    The layer is read during the model's own forward pass with
    `keras_sard.taps.FeatureTaps` (no sub-model is built), in inference mode
    and without recording gradients.

    Args:
        model: a Keras model.
        layer: the layer's name, or its path for a nested one
            (``"backbone/stage_1"``); see `keras_sard.taps`.
        inputs: a batch the model accepts, e.g. (B, H, W, C).
        role: how errors name the model ("teacher", "student").

    Raises:
        ValueError: the model has no such layer (the message lists the closest
            names), the layer runs other than once, or the batch does not fit
            the model's declared input.

    Example::

        import keras, numpy as np
        from keras_sard.visualize import read_layer

        inputs = keras.Input((16, 16, 3))
        hidden = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
        model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(hidden))
        features, logits = read_layer(model, "stem", np.zeros((1, 16, 16, 3), "float32"))
        features.shape, logits.shape  # (1, 16, 16, 4), (1, 16, 16, 2)
    """
    inputs = as_numpy(inputs)
    if np.issubdtype(inputs.dtype, np.floating) and inputs.dtype != np.float32:
        inputs = inputs.astype("float32")
    check_model_input(model, inputs, role)
    taps = FeatureTaps(model, [layer], role)
    with steps.inference_scope(), taps.record() as captured:
        outputs = model(inputs, training=False)
    return (
        tree.map_structure(ops.convert_to_numpy, captured[layer]),
        tree.map_structure(ops.convert_to_numpy, outputs),
    )

def structure_maps(image, teacher, layer, features, structure):
    """The image and E, C, D, W of its teacher features, as NumPy: from the
    teacher's `layer` on the image, or from `features` given."""
    image = check_image(image)
    if features is None:
        if teacher is None or layer is None:
            raise ValueError(
                "Pass either `teacher` and `layer` (the teacher runs on the image) "
                "or `features` (a precomputed teacher feature map)."
            )
        if not isinstance(teacher, keras.Model):
            raise ValueError(f"`teacher` must be a keras.Model; got {type(teacher).__name__}.")
        if image.ndim != 3:
            raise ValueError(
                "`image` must be (height, width, channels) to be fed to the "
                f"teacher; got shape {image.shape}."
            )
        tapped, _ = read_layer(teacher, layer, image[None], "teacher")
        features = single_feature_map(tapped, f"the output of the teacher's layer {layer!r}")
    else:
        if teacher is not None or layer is not None:
            raise ValueError(
                "Pass `features` or `teacher` and `layer`, not both: the map to "
                "draw would be ambiguous."
            )
        features = single_feature_map(features, "features")
    if structure is None:
        structure = StructureWeights()
    if not isinstance(structure, StructureWeights):
        raise ValueError(
            "`structure` must be a keras_sard.structure.StructureWeights (e.g. a "
            f"SARDLoss's `.structure`); got {type(structure).__name__}."
        )
    terms = structure.terms(features[None])
    maps = {name: ops.convert_to_numpy(value)[0] for name, value in terms.items()}
    return image, maps
