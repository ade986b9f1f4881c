"""The Distiller on batches that mix labelled and unlabelled (all-ignore) images.

What must hold (issue 15): the task loss, its gradient, the label-reading
losses (KD's ignore mask, DKD) and the metrics are those of the labelled
images alone; the label-free losses (SARD, CWD, MGD) see every image. Exact
where the student has no BatchNorm; with BatchNorm in training mode the
batch statistics mix the two populations (measured below, documented in
docs/unlabelled.md).
"""

import keras
import numpy as np
import pytest

from helpers import gradients, tiny_batch, tiny_segmenter, to_numpy
from keras_sard import Distiller
from keras_sard.data import make_pipeline, make_synthetic
from keras_sard.losses import (ChannelWiseKD, DecoupledKD, LogitKD, MaskedGenerativeKD,
                               SARDLoss, SegmentationLoss)
from keras_sard.metrics import BoundaryIoU, MeanIoU

LEVELS_T = ["teacher_level_1", "teacher_level_2"]
LEVELS_S = ["student_level_1", "student_level_2"]


def _batches(rng, labelled=4, unlabelled=3, num_classes=2):
    x, y = tiny_batch(rng, n=labelled + unlabelled, num_classes=num_classes)
    y[labelled:] = 255
    return x, y, labelled


def _all_losses():
    return [
        SARDLoss(LEVELS_T, LEVELS_S, radius=2, hidden_channels=8, seed=0),
        ChannelWiseKD(),
        MaskedGenerativeKD(LEVELS_T[-1:], LEVELS_S[-1:], seed=0),
        LogitKD(),
        DecoupledKD(),
    ]


def _distiller(batch_norm, num_classes=2, losses=None):
    teacher = tiny_segmenter("teacher", 8, num_classes=num_classes)
    student = tiny_segmenter("student", 4, num_classes=num_classes, batch_norm=batch_norm)
    return Distiller(teacher, student, _all_losses() if losses is None else losses)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_segmentation_loss_ignores_unlabelled_images_dice_included(rng, num_classes):
    # The Dice term sums over the whole batch (not per image); unlabelled
    # pixels have weight 0 in both its sums, so it is unchanged too.
    labels = rng.integers(0, max(num_classes, 2), size=(5, 6, 7))
    labels[rng.random(labels.shape) < 0.2] = 255
    logits = (3 * rng.normal(size=(5, 6, 7, num_classes))).astype("float32")
    mixed_labels = np.concatenate([labels, np.full((3, 6, 7), 255)])
    mixed_logits = np.concatenate(
        [logits, (3 * rng.normal(size=(3, 6, 7, num_classes))).astype("float32")])
    loss = SegmentationLoss()
    alone = float(to_numpy(loss(labels, logits)))
    assert alone > 0.1
    np.testing.assert_allclose(float(to_numpy(loss(mixed_labels, mixed_logits))), alone,
                               rtol=1e-6)
    assert float(to_numpy(loss(mixed_labels[5:], mixed_logits[5:]))) == 0.0


@pytest.mark.parametrize("num_classes", [1, 2])
def test_task_loss_gradient_of_labelled_images_is_unchanged_by_unlabelled_ones(
        rng, num_classes):
    distiller = _distiller(batch_norm=False, num_classes=num_classes, losses=[])
    x, y, n = _batches(rng)
    variables = distiller.student.trainable_variables

    def task_loss(images, labels):
        return lambda: distiller.compute_distillation(images, labels, training=True)[1]["task_loss"]

    alone = gradients(task_loss(x[:n], y[:n]), variables)
    mixed = gradients(task_loss(x, y), variables)
    scale = max(float(np.abs(to_numpy(g)).max()) for g in alone)
    assert scale > 1e-4  # a gradient worth comparing
    for variable, a, m in zip(variables, alone, mixed):
        np.testing.assert_allclose(to_numpy(m), to_numpy(a), rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=variable.path)
    value = distiller.compute_distillation(x[:n], y[:n], training=True)[1]["task_loss"]
    np.testing.assert_allclose(
        float(to_numpy(distiller.compute_distillation(x, y, training=True)[1]["task_loss"])),
        float(to_numpy(value)), rtol=1e-6)
    # A batch with no labelled pixel: task loss 0, and no gradient from it.
    none = gradients(task_loss(x[n:], y[n:]), variables)
    assert float(to_numpy(task_loss(x[n:], y[n:])())) == 0.0
    assert all(g is None or not np.any(to_numpy(g)) for g in none)


def _terms(distiller, x, y):
    """Every term of one training-mode step, each loss's random stream
    (L_DA's noise, MGD's masks) restarted from the same state."""
    generators = [getattr(loss, name) for loss in distiller.distillation_losses
                  for name in getattr(loss, "seed_generators_to_save", ())]
    if not hasattr(distiller, "_test_seed_states"):
        distiller._test_seed_states = [to_numpy(g.state.value).copy() for g in generators]
    for generator, state in zip(generators, distiller._test_seed_states):
        generator.state.assign(state)
    _, terms, _ = distiller.compute_distillation(x, y, training=True)
    return {name: float(to_numpy(value)) for name, value in terms.items()}


def test_label_free_losses_see_every_image_label_reading_losses_skip_unlabelled(rng):
    distiller = _distiller(batch_norm=False, num_classes=3)
    x, y, n = _batches(rng, num_classes=3)
    other = x.copy()
    other[n:] = rng.random(other[n:].shape)  # other unlabelled images
    first, second = _terms(distiller, x, y), _terms(distiller, other, y)
    alone = _terms(distiller, x[:n], y[:n])
    # Read labels: KD (ignore mask), DKD, the task loss: the labelled images' values.
    for name in ("task_loss", "kd", "dkd"):
        assert first[name] > 1e-4
        np.testing.assert_allclose(first[name], alone[name], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(second[name], first[name], rtol=1e-5, err_msg=name)
    # Label-free: SARD, CWD, MGD depend on the unlabelled images too.
    for name in ("sard_fc", "sard_da", "cwd", "mgd"):
        assert abs(second[name] - first[name]) > 1e-3 * abs(first[name]), name
    # Means over images: CWD and SARD's L_FC are the image-count-weighted
    # average of the labelled and the unlabelled images' values.
    rest = _terms(distiller, x[n:], y[n:])
    count = len(x)
    for name in ("cwd", "sard_fc"):
        expected = (n * alone[name] + (count - n) * rest[name]) / count
        np.testing.assert_allclose(first[name], expected, rtol=1e-4, err_msg=name)


def test_metrics_count_labelled_pixels_only(rng):
    distiller = _distiller(batch_norm=True, losses=[ChannelWiseKD()])
    distiller.compile(optimizer="adam", metrics=[MeanIoU(2), BoundaryIoU(2)])
    x, y, n = _batches(rng)
    mixed = distiller.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    alone = distiller.evaluate(x[:n], y[:n], batch_size=n, verbose=0, return_dict=True)
    for name in ("miou", "biou", "task_loss"):
        np.testing.assert_allclose(mixed[name], alone[name], rtol=1e-5, err_msg=name)
    assert 0.0 < alone["miou"] < 1.0


def test_batchnorm_in_training_mode_mixes_the_batch_statistics(rng):
    """Documented, not wished away: with BatchNorm, training-mode features of
    the labelled images depend on the other images of the batch, so the
    task-loss gradient changes when unlabelled images join; in inference
    mode (moving statistics) it does not."""
    distiller = _distiller(batch_norm=True, losses=[])
    x, y, n = _batches(rng)
    x[n:] += 1.0  # a brighter population: the batch statistics move
    variables = distiller.student.trainable_variables

    def task_loss(images, labels, training):
        return lambda: distiller.compute_distillation(images, labels, training=training)[1][
            "task_loss"]

    for training, differs in ((True, True), (False, False)):
        alone = gradients(task_loss(x[:n], y[:n], training), variables)
        mixed = gradients(task_loss(x, y, training), variables)
        gap = max(float(np.abs(to_numpy(a) - to_numpy(m)).max()) for a, m in zip(alone, mixed))
        scale = max(float(np.abs(to_numpy(a)).max()) for a in alone)
        assert (gap > 1e-2 * scale) == differs, (training, gap, scale)


def test_fit_on_mixed_pipeline_batches(rng):
    labelled = make_synthetic("nuclei", 4, (16, 16))
    unlabelled = make_synthetic("nuclei", 4, (16, 16), split="val")
    batches = make_pipeline(labelled, 4, training=True, crop_size=16, seed=0,
                            unlabelled=unlabelled, unlabelled_ratio=0.5)
    distiller = _distiller(batch_norm=True, losses=[
        SARDLoss(LEVELS_T, LEVELS_S, radius=2, hidden_channels=8, seed=0), LogitKD()])
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=[MeanIoU(2)])
    history = distiller.fit(batches, epochs=2, verbose=0).history
    for name in ("loss", "task_loss", "sard_fc", "sard_da", "kd", "miou"):
        assert np.all(np.isfinite(history[name])), name
    assert history["skipped_steps"] == [0.0, 0.0]
