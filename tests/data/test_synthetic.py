"""The synthetic tiny-dense generator: determinism, density, classes, dataset view."""

import os
import time

import numpy as np
import pytest
from scipy import ndimage

from keras_sard.data import load_dataset
from keras_sard.data.synthetic import (OBJECT_SCALE_LARGE, class_names_for, make_synthetic,
                                       synthetic_arrays, synthetic_example)

KINDS = ("fragments", "nuclei")


@pytest.mark.parametrize("kind", KINDS)
def test_arrays_shapes_dtypes_and_binary_values(kind):
    images, masks = synthetic_arrays(kind, num_examples=3, image_size=(40, 56), seed=1)
    assert images.shape == (3, 40, 56, 3) and images.dtype == np.uint8
    assert masks.shape == (3, 40, 56) and masks.dtype == np.int32
    assert set(np.unique(masks)) == {0, 1}
    assert images.std() > 10  # textured, not flat


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_arrays_and_different_seed_differs(kind):
    a = synthetic_arrays(kind, num_examples=2, image_size=(32, 32), seed=7)
    b = synthetic_arrays(kind, num_examples=2, image_size=(32, 32), seed=7)
    c = synthetic_arrays(kind, num_examples=2, image_size=(32, 32), seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


def test_example_does_not_depend_on_num_examples_and_splits_differ():
    small = synthetic_arrays("fragments", num_examples=2, image_size=(32, 32), seed=3)
    big = synthetic_arrays("fragments", num_examples=5, image_size=(32, 32), seed=3)
    np.testing.assert_array_equal(small[0], big[0][:2])
    np.testing.assert_array_equal(small[1], big[1][:2])
    image, mask = synthetic_example("fragments", 4, (32, 32), seed=3)
    np.testing.assert_array_equal(image, big[0][4])
    val = synthetic_arrays("fragments", num_examples=2, image_size=(32, 32), seed=3,
                           split="val")
    assert not np.array_equal(val[0][0], small[0][0])


@pytest.mark.parametrize("kind", KINDS)
def test_objects_are_tiny_and_dense(kind):
    """Tens of 4-connected objects per 64x64 image, a few to ~15 px across."""
    _, masks = synthetic_arrays(kind, num_examples=6, image_size=(64, 64), seed=0)
    counts, extents, areas = [], [], []
    for mask in masks:
        labels, count = ndimage.label(mask > 0)
        counts.append(count)
        for box in ndimage.find_objects(labels):
            extents.append(max(box[0].stop - box[0].start, box[1].stop - box[1].start))
        areas.extend(np.bincount(labels.ravel())[1:].tolist())
    assert min(counts) >= 20, counts
    assert np.median(extents) >= 3
    assert np.percentile(extents, 90) <= 15, np.percentile(extents, 90)
    assert max(extents) <= 24, max(extents)
    assert 8 <= np.median(areas) <= 80, np.median(areas)
    # Touching objects: many object pixels sit one background pixel away from
    # another object (a separating line, not open space).
    mask = masks[0] > 0
    labels, _ = ndimage.label(mask)
    left, right = labels[:, :-2], labels[:, 2:]
    touching = (left > 0) & (right > 0) & (left != right) & ~mask[:, 1:-1]
    assert touching.sum() >= 10


@pytest.mark.parametrize("kind", KINDS)
def test_multiclass_uses_every_class(kind):
    _, masks = synthetic_arrays(kind, num_examples=4, image_size=(64, 64), num_classes=4,
                                seed=2)
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    assert class_names_for(kind, 4)[0] == "background" and len(class_names_for(kind, 4)) == 4


def test_fragment_size_classes_follow_area():
    """Class k of a fragment grows with its area (size bins, smallest first)."""
    _, masks = synthetic_arrays("fragments", num_examples=4, image_size=(64, 64),
                                num_classes=4, seed=5)
    mean_area = {}
    for mask in masks:
        labels, _ = ndimage.label(mask > 0)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            cls = int(np.bincount(mask[box][labels[box] == index]).argmax())
            mean_area.setdefault(cls, []).append(int((labels[box] == index).sum()))
    means = [np.mean(mean_area[k]) for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2], means


def test_make_synthetic_dataset_matches_arrays():
    data = make_synthetic("nuclei", num_examples=3, image_size=(24, 32), num_classes=3,
                          seed=4)
    assert (data.num_examples, data.num_classes, data.ignore_label) == (3, 3, 255)
    assert data.class_names == ("background", "nucleus_type_1", "nucleus_type_2")
    assert data.name == "synthetic_nuclei" and len(data.palette) == 3
    images, masks = synthetic_arrays("nuclei", num_examples=3, image_size=(24, 32),
                                     num_classes=3, seed=4)
    seen = list(data.dataset.as_numpy_iterator())
    assert len(seen) == 3
    assert data.dataset.element_spec[0].shape.as_list() == [24, 32, 3]
    for index, (image, mask) in enumerate(seen):
        assert image.dtype == np.uint8 and mask.dtype == np.int32
        np.testing.assert_array_equal(image, images[index])
        np.testing.assert_array_equal(mask, masks[index])


def test_generation_is_fast():
    start = time.perf_counter()
    synthetic_arrays("fragments", num_examples=64, image_size=(64, 64))
    synthetic_arrays("nuclei", num_examples=64, image_size=(64, 64))
    # ~0.25 s each on one core; generous for a shared machine.
    assert time.perf_counter() - start < 4.0


def test_bad_arguments_are_named():
    cases = [(dict(kind="rocks"), "kind"), (dict(num_classes=1), "num_classes"),
             (dict(num_classes=17), "num_classes"), (dict(image_size=(4, 64)), "image_size"),
             (dict(num_examples=0), "num_examples"), (dict(split="training"), "split")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            make_synthetic(**kwargs)


# ------------------------------------------------------------- object scale

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic_default.npz")


def test_default_object_scale_gives_the_arrays_of_before_the_argument():
    """synthetic_default.npz was written by the generator before `object_scale`
    existed (commit 7522171): the default must reproduce it bit for bit."""
    with np.load(FIXTURE) as saved:
        for kind in KINDS:
            for classes in (2, 4):
                for scale in ({}, {"object_scale": 1.0}, {"object_scale": 1}):
                    image, mask = synthetic_example(kind, index=1, image_size=(32, 40),
                                                    num_classes=classes, seed=3, split="val",
                                                    **scale)
                    np.testing.assert_array_equal(image, saved[f"{kind}_{classes}_image"])
                    np.testing.assert_array_equal(mask, saved[f"{kind}_{classes}_mask"])


def interior_extents(masks):
    """Larger bounding-box side of each 4-connected object not cut by the border."""
    extents = []
    for mask in masks:
        labels, _ = ndimage.label(mask > 0)
        for box in ndimage.find_objects(labels):
            if min(box[0].start, box[1].start) == 0 or box[0].stop == mask.shape[0] \
                    or box[1].stop == mask.shape[1]:
                continue
            extents.append(max(box[0].stop - box[0].start, box[1].stop - box[1].start))
    return np.array(extents)


@pytest.mark.parametrize("kind", KINDS)
def test_object_sizes_follow_object_scale(kind):
    small = interior_extents(synthetic_arrays(kind, 4, (96, 96), seed=1)[1])
    large = interior_extents(
        synthetic_arrays(kind, 6, (128, 128), seed=1, object_scale=OBJECT_SCALE_LARGE)[1])
    assert 5 <= np.median(small) <= 9, np.median(small)
    assert 20 <= np.median(large) <= 44, np.median(large)
    assert 12 <= np.percentile(large, 10) and np.percentile(large, 90) <= 72, large
    assert 3.0 <= np.median(large) / np.median(small) <= 5.5
    between = interior_extents(synthetic_arrays(kind, 4, (128, 128), seed=1, object_scale=2)[1])
    assert np.median(small) < np.median(between) < np.median(large)


def test_object_scale_keeps_classes_and_the_dataset_view():
    _, masks = synthetic_arrays("fragments", 4, (128, 128), num_classes=4, seed=2,
                                object_scale=OBJECT_SCALE_LARGE)
    assert set(np.unique(masks)) == {0, 1, 2, 3}  # the size bins scale with the area
    data = load_dataset("synthetic", kind="nuclei", num_examples=2, image_size=(64, 64),
                        object_scale=3)
    images, masks = synthetic_arrays("nuclei", 2, (64, 64), object_scale=3)
    for index, (image, mask) in enumerate(data.dataset.as_numpy_iterator()):
        np.testing.assert_array_equal(image, images[index])
        np.testing.assert_array_equal(mask, masks[index])


@pytest.mark.parametrize("bad", [0.1, 0, -2, float("inf"), float("nan"), "4", True])
def test_bad_object_scale_is_named(bad):
    with pytest.raises(ValueError, match="object_scale"):
        make_synthetic(object_scale=bad)
    with pytest.raises(ValueError, match="object_scale"):
        synthetic_example(object_scale=bad)
