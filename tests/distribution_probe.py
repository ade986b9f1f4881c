"""Distil a tiny teacher into a tiny student on one device, then on two virtual
CPU devices, and save every run's numbers for tests/test_distribution.py.

    KERAS_BACKEND=jax python tests/distribution_probe.py OUT.npz
    KERAS_BACKEND=tensorflow python tests/distribution_probe.py OUT.npz

The two devices must exist before the backend starts, hence a script of its
own: JAX gets ``XLA_FLAGS=--xla_force_host_platform_device_count=2``,
TensorFlow two logical CPUs.  Runs: ``single`` (no distribution) and, on JAX,
``data_parallel`` (keras.distribution.DataParallel) and ``model_parallel``
(ModelParallel with the teacher's kernels split over the devices); on
TensorFlow ``mirrored`` (tf.distribute.MirroredStrategy).  Each run trains
two clean epochs, then one whose first batch holds a NaN in one image.
"""

import contextlib
import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()
elif BACKEND == "tensorflow":
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers import tiny_batch, tiny_segmenter  # noqa: E402
from keras_sard import Distiller  # noqa: E402
from keras_sard.losses import SARDLoss, SegmentationLoss  # noqa: E402

LEVELS_T = ["teacher_level_1", "teacher_level_2"]
LEVELS_S = ["student_level_1", "student_level_2"]
TERMS = ("loss", "task_loss", "sard_fc", "sard_da")


def build():
    keras.utils.set_random_seed(0)
    teacher = tiny_segmenter("teacher", 8)
    if BACKEND == "jax":
        # One SPMD program over the global batch: everything matches, Dice and
        # the student's BatchNorm statistics included.
        student, task_loss = tiny_segmenter("student", 4), SegmentationLoss()
    else:
        # Under MirroredStrategy each replica normalises and pools over its own
        # share: no BatchNorm in the student, no batch-pooled Dice.
        student = tiny_segmenter("student", 4, batch_norm=False)
        task_loss = SegmentationLoss(dice_weight=0.0)
    sard = SARDLoss(LEVELS_T, LEVELS_S, radius=1, hidden_channels=4, seed=0)
    distiller = Distiller(teacher, student, [sard], task_loss=task_loss)
    # Plain SGD: a gradient summed instead of averaged over replicas shows
    # (Adam would hide it, being invariant to the gradient's scale).
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    return distiller


def run(name, scope=contextlib.nullcontext()):
    x, y = tiny_batch(np.random.default_rng(0), n=16, ignore_fraction=0.0)
    with scope:
        distiller = build()
    history = distiller.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    out = {f"{name}/{key}": np.array(history[key]) for key in TERMS}
    out[f"{name}/skipped_steps"] = np.array(history["skipped_steps"])
    # A NaN in one image, so on one replica only: every replica must skip
    # that step (or their gradient all-reduce would hang), the other applies.
    x[3, 2, 2, 0] = np.nan
    history = distiller.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history
    out[f"{name}/nan_epoch_skipped_steps"] = np.array(history["skipped_steps"])
    out[f"{name}/nan_epoch_sard_fc"] = np.array(history["sard_fc"])
    for variable in distiller.student.trainable_variables:
        out[f"{name}/{variable.path}"] = keras.ops.convert_to_numpy(variable)
    return out, distiller


def probe():
    out, _ = run("single")
    if BACKEND == "jax":
        import jax

        devices = jax.devices()
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        out.update(run("data_parallel")[0])

        # A teacher too large for one device: shard its kernels' output
        # channels over a "model" axis (each device holds half of each kernel).
        mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], devices)
        layout_map = keras.distribution.LayoutMap(mesh)
        layout_map[".*teacher_level_.*/kernel"] = (None, None, None, "model")
        keras.distribution.set_distribution(
            keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        )
        results, distiller = run("model_parallel")
        out.update(results)
        kernel = distiller.teacher.get_layer("teacher_level_2").kernel.value
        out["model_parallel/teacher_kernel_shards"] = np.array(
            len({tuple((s.start, s.stop) for s in index) for index in kernel.sharding.devices_indices_map(kernel.shape).values()})
        )
        keras.distribution.set_distribution(None)
    else:
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        out.update(run("mirrored", strategy.scope())[0])
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **probe())
