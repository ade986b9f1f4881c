"""Compute the library's numbers on fixed inputs, on the backend KERAS_BACKEND names.

Run by tests/test_cross_backend.py once per backend; writes an .npz of every
quantity so the test can compare backends.  Weights come from a NumPy RNG, and
the noise of L_DA is injected, since each backend's random stream differs
(keras.random.normal with one seed gives other numbers on each backend).
"""

import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers import tiny_batch, tiny_segmenter  # noqa: E402
from keras_sard import Distiller, losses, metrics, structure  # noqa: E402


def set_weights_from_numpy(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in layer.get_weights()])


def probe():
    rng = np.random.default_rng(2024)
    out = {}
    teacher = rng.normal(size=(2, 13, 11, 6)).astype("float32")
    student = rng.normal(size=(2, 7, 6, 3)).astype("float32")

    # Structure maps.
    terms = structure.StructureWeights(radius=3, scales=(1, 2, 4, 8)).terms(teacher)
    for name, value in terms.items():
        out[f"structure/{name}"] = value
    out["structure/density_variance"] = structure.feature_density(teacher, 3, "variance")
    out["structure/corner"] = structure.corner_strength(teacher)
    out["structure/weights_default"] = structure.StructureWeights()(teacher)
    # The alternatives one argument away, and exact D over several 8×8 tiles.
    out["structure/weights_reflect_single_scale"] = structure.StructureWeights(
        radius=3, scales=None, padding="reflect")(teacher)
    out["structure/edge_zero_padding"] = structure.edge_strength(teacher, padding="zero")
    wide = np.random.default_rng(29).normal(size=(2, 29, 35, 6)).astype("float32")
    out["structure/density_tiles"] = structure.feature_density(wide, 7)

    # SARD losses with fixed weights and fixed noise.
    draws = []

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        draws.append(np.random.default_rng(7 + len(draws)).normal(size=tuple(int(s) for s in shape)))
        return keras.ops.convert_to_tensor(draws[-1].astype("float32"))

    keras.random.normal = normal
    sard = losses.SARDLoss(["t"], ["s"], radius=2, hidden_channels=5, teacher_projection="frozen")
    sard.build([teacher.shape], [student.shape])
    set_weights_from_numpy(sard, 1)
    for name, value in sard([teacher], [student]).items():
        out[f"sard/{name}"] = value

    # Task loss and metrics.
    labels = rng.integers(0, 4, size=(2, 16, 15))
    labels[rng.random(labels.shape) < 0.1] = 255
    logits = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    out["task/multiclass"] = losses.SegmentationLoss()(labels, logits)
    binary = rng.normal(size=(2, 16, 15, 1)).astype("float32")
    out["task/binary"] = losses.SegmentationLoss()(np.minimum(labels, 1) * (labels != 255) + 255 * (labels == 255), binary)
    for metric in (metrics.MeanIoU(4), metrics.BoundaryIoU(4)):
        metric.update_state(labels, logits)
        out[f"metrics/{metric.name}"] = metric.result()

    # The Distiller: every weight from a NumPy RNG keyed by its path, one fixed
    # batch, the same injected noise; one evaluation step each.
    teacher, student = tiny_segmenter("teacher", 6), tiny_segmenter("student", 4)
    sard = losses.SARDLoss(
        ["teacher_level_1", "teacher_level_2"], ["student_level_1", "student_level_2"],
        radius=2, hidden_channels=5, name="sard",
    )
    distiller = Distiller(teacher, student, [sard])
    for variable in distiller.weights:
        if "seed" in variable.path:
            continue
        weights = np.random.default_rng(zlib.crc32(variable.path.encode()))
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path:
            value = weights.uniform(0.5, 1.5, size=shape)
        else:
            value = weights.normal(scale=0.3, size=shape)
        variable.assign(value.astype("float32"))
    x, y = tiny_batch(np.random.default_rng(5), n=2)
    distiller.compile(optimizer="sgd")
    # Keras' compiled evaluation step (an eager JAX forward would compile op by op).
    logs = distiller.test_on_batch(x, y, return_dict=True)
    for name in ("loss", "task_loss", "sard_fc", "sard_da"):
        out[f"distiller/{name}"] = np.float32(logs[name])
    return {key: keras.ops.convert_to_numpy(value) for key, value in out.items()}


if __name__ == "__main__":
    np.savez(sys.argv[1], **probe())
