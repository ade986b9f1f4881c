"""An embedded tiny-dense segmentation dataset, generated with NumPy, any size.

Two kinds of scene, both with tens of small objects (a few to ~15 px across)
per 64x64 image, packed so that many touch (``object_scale`` makes them
larger, see below):

* ``"fragments"``: a rock-fragment pile. A jittered, weighted Voronoi tiling,
  warped by smooth noise so cell borders are irregular, gives the fragments;
  each has its own colour, grain texture and a directional shading (lit
  dome). Touching fragments are separated by thin gaps that the mask labels
  background; the gaps are drawn darker with a strength that varies along
  each border, so some are crisp and some barely visible. Some cells are
  fine-grained matrix (background). Multi-class: the foreground classes are
  fragment size bins (by visible area, smallest first).
* ``"nuclei"``: an H&E-like tissue patch. Nuclei are ellipses with irregular
  (low-order Fourier) boundaries, crowded so that they touch and overlap,
  composited by Beer-Lambert absorbance of a hematoxylin stain over a
  textured eosin background (overlaps are darker). Where two nuclei meet, a
  1-px line is labelled background so instances stay separable. Multi-class:
  the foreground classes are nucleus types ranging from small, round, dark
  and smooth (type 1) to large, elongated, pale and coarsely textured.

``object_scale`` (default 1) multiplies the scene's geometry: the spacing of
objects, their radii, the warp of their outlines, the fragments' rims and the
area bins of the fragment size classes.  What belongs to the imaging stays in
pixels (grain and chromatin texture, blur, noise, the 1-px lines between
touching objects).  Measured on objects that do not touch the image border
(10th-90th percentile of the larger side of their bounding box, median in
brackets), 32 images of 128x128: at 1, 4-12 px (8) for fragments and 4-10 px
(7) for nuclei; at ``OBJECT_SCALE_LARGE`` (4), 25-54 px (38) and 15-40 px
(26), so that each object spans several cells of a stride-4 feature map.  The default gives the same
arrays as before the argument existed.

Every example is drawn from its own random stream seeded by
``(seed, split, index)``: the same seed gives identical arrays, example ``i``
does not depend on how many examples are asked for (a bigger set extends a
smaller one), and splits never share an example.
"""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import tensorflow as tf
from scipy import ndimage

from keras_sard.data.base import IGNORE_LABEL, SegmentationData
from keras_sard.data.labels import touching_borders

KINDS = ("fragments", "nuclei")
MIN_OBJECT_SCALE = 0.25
"""The smallest `object_scale`: below it the smallest objects are under a pixel."""
OBJECT_SCALE_LARGE = 4.0
"""An `object_scale` giving objects about 16-50 px across (see the module docstring)."""
SPLITS = ("train", "val", "test")
_KIND_CODE = {"fragments": 1, "nuclei": 2}

# Hematoxylin and eosin optical-density directions in RGB (Ruifrok & Johnston).
_HEMATOXYLIN = np.array([0.65, 0.70, 0.29], np.float32)
_EOSIN = np.array([0.07, 0.99, 0.11], np.float32)


def class_names_for(kind: str, num_classes: int) -> Tuple[str, ...]:
    """Class names of a synthetic dataset.

    Example:

    >>> class_names_for("fragments", 3)
    ('background', 'fragment_size_1', 'fragment_size_2')
    >>> class_names_for("nuclei", 2)
    ('background', 'nucleus')
    """
    _check_kind_and_classes(kind, num_classes)
    if num_classes == 2:
        return ("background", "fragment" if kind == "fragments" else "nucleus")
    stem = "fragment_size_" if kind == "fragments" else "nucleus_type_"
    return ("background",) + tuple(f"{stem}{t}" for t in range(1, num_classes))


def _check_kind_and_classes(kind, num_classes):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    if not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= 16:
        raise ValueError(
            f"num_classes must be an integer in [2, 16] (background plus 1-15 object "
            f"classes), got {num_classes!r}.")


def _check_object_scale(object_scale):
    if isinstance(object_scale, bool) or not isinstance(object_scale, (int, float, np.number)) \
            or not MIN_OBJECT_SCALE <= object_scale < np.inf:
        raise ValueError(
            f"object_scale must be a finite number >= {MIN_OBJECT_SCALE} (1: objects of a "
            f"few to ~15 px), got {object_scale!r}.")
    return float(object_scale)


def _check_size(image_size):
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"image_size must be (height, width), got {image_size!r}.") from None
    if height < 8 or width < 8:
        raise ValueError(f"image_size must be at least (8, 8), got {image_size!r}.")
    return height, width


def _rng(kind, split, index, seed):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}.")
    entropy = [int(seed), _KIND_CODE[kind], SPLITS.index(split), int(index)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _value_noise(rng, height, width, cell):
    """Smooth noise of roughly unit amplitude varying over ``cell`` pixels."""
    gh = int(np.ceil(height / cell)) + 2
    gw = int(np.ceil(width / cell)) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    y = np.arange(height, dtype=np.float32) / cell + rng.random()
    x = np.arange(width, dtype=np.float32) / cell + rng.random()
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - y0, x - x0
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


def _fractal_noise(rng, height, width, cells=(16.0, 6.0, 2.5)):
    total = np.zeros((height, width), np.float32)
    weight = 1.0
    for cell in cells:
        total += weight * _value_noise(rng, height, width, cell)
        weight *= 0.6
    return total / 1.6


def _size_bins(areas, num_classes, scale=1.0):
    """Foreground class (1..num_classes-1) of each fragment area (px).

    The bin edges are fixed (they do not depend on the image): quantiles of a
    log-normal fitted to the visible fragment areas of this generator (median
    ~30 px at object scale 1, times ``scale**2``), so that the size classes
    come out roughly balanced.
    """
    if num_classes == 2:
        return np.ones_like(areas, np.int32)
    from scipy.stats import norm

    levels = np.arange(1, num_classes - 1) / (num_classes - 1)
    edges = np.exp(np.log(30.0) + 0.9 * norm.ppf(levels)) * (scale * scale)
    return (np.searchsorted(edges, areas, side="right") + 1).astype(np.int32)


def _fragments(rng, height, width, num_classes, scale):
    spacing = rng.uniform(6.5, 10.5) * scale
    margin = 3
    ny = int(np.ceil(height / spacing)) + 2 * margin
    nx = int(np.ceil(width / spacing)) + 2 * margin
    centre_y = ((np.arange(ny) - margin + 0.5) * spacing)[:, None] + rng.uniform(
        -0.42, 0.42, (ny, nx)) * spacing
    centre_x = ((np.arange(nx) - margin + 0.5) * spacing)[None, :] + rng.uniform(
        -0.42, 0.42, (ny, nx)) * spacing
    weight = rng.uniform(0.75, 1.3, (ny, nx))
    matrix_cell = rng.random((ny, nx)) < rng.uniform(0.04, 0.18)

    # Warped pixel coordinates make the Voronoi borders irregular.
    warp = 0.18 * spacing
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    py = yy + warp * _value_noise(rng, height, width, spacing * 0.8)
    px = xx + warp * _value_noise(rng, height, width, spacing * 0.8)

    # Nearest two weighted seeds among the 5x5 grid cells around each pixel.
    iy = np.floor(py / spacing).astype(np.int32) + margin
    ix = np.floor(px / spacing).astype(np.int32) + margin
    offsets = np.arange(-2, 3, dtype=np.int32)
    cand_y = np.clip(iy[..., None, None] + offsets[:, None], 0, ny - 1)
    cand_x = np.clip(ix[..., None, None] + offsets[None, :], 0, nx - 1)
    cand = (cand_y * nx + cand_x).reshape(height, width, -1)
    flat_cy = centre_y.ravel().astype(np.float32)
    flat_cx = centre_x.ravel().astype(np.float32)
    flat_w = weight.ravel().astype(np.float32)
    dy = py[..., None] - flat_cy[cand]
    dx = px[..., None] - flat_cx[cand]
    dist = np.sqrt(dy * dy + dx * dx) / flat_w[cand]
    two = np.argpartition(dist, 1, axis=-1)[..., :2]
    d_two = np.take_along_axis(dist, two, axis=-1)
    swap = d_two[..., 0] > d_two[..., 1]
    first = np.where(swap, two[..., 1], two[..., 0])
    d1 = np.minimum(d_two[..., 0], d_two[..., 1])
    d2 = np.maximum(d_two[..., 0], d_two[..., 1])
    label = np.take_along_axis(cand, first[..., None], axis=-1)[..., 0]
    # Approximate distance (px) to the border with the next fragment.
    border = 0.5 * (d2 - d1) * flat_w[label]

    gap_half = rng.uniform(0.5, 0.85)
    is_matrix = matrix_cell.ravel()[label]
    solid = (border >= gap_half) & ~is_matrix
    # Where the warp thins a gap below one pixel, still keep fragments apart.
    solid &= ~touching_borders(np.where(solid, label + 1, 0))

    # Rendering ---------------------------------------------------------
    n_cells = ny * nx
    grey = rng.uniform(0.35, 0.85, n_cells)
    tint = rng.uniform(-0.4, 1.0, n_cells)
    base = np.stack([grey * (1 + 0.14 * tint), grey * (1 + 0.03 * tint),
                     grey * (1 - 0.16 * tint)], axis=-1).astype(np.float32)
    texture_amp = rng.uniform(0.03, 0.13, n_cells).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light_y, light_x = np.sin(angle), np.cos(angle)
    relief = rng.uniform(0.2, 0.45)
    local_y = (py - flat_cy[label]) / spacing
    local_x = (px - flat_cx[label]) / spacing
    shade = 1.0 + relief * (local_y * light_y + local_x * light_x)
    shade *= 1.0 - 0.25 * np.exp(-border / (1.3 * scale))  # rounded rims
    grain = _fractal_noise(rng, height, width, (5.0, 2.0, 1.0))
    colour = base[label] * (shade * (1.0 + texture_amp[label] * grain))[..., None]

    matrix_tone = rng.uniform(0.2, 0.4)
    fines = matrix_tone * (1.0 + 0.35 * _fractal_noise(rng, height, width, (3.0, 1.5, 0.8)))
    colour = np.where(is_matrix[..., None], fines[..., None] * np.array(
        [1.05, 1.0, 0.92], np.float32), colour)

    # Gaps: dark, with a strength varying along the borders; not always crisp.
    gap_strength = np.clip(0.6 + 0.35 * _value_noise(rng, height, width, spacing * 1.5),
                           0.15, 0.95)
    gap_profile = np.exp(-np.square(border / (gap_half + 0.35)))
    dark = rng.uniform(0.05, 0.2)
    mix = (gap_strength * gap_profile)[..., None]
    colour = colour * (1 - mix) + dark * mix

    colour = ndimage.gaussian_filter(colour, sigma=(0.45, 0.45, 0))
    colour += rng.normal(0.0, 0.015, colour.shape)
    image = np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)

    # Mask --------------------------------------------------------------
    mask = np.zeros((height, width), np.int32)
    if num_classes == 2:
        mask[solid] = 1
    else:
        areas = np.bincount(label[solid], minlength=n_cells).astype(np.float64)
        classes = _size_bins(areas, num_classes, scale)
        mask[solid] = classes[label[solid]]
    return image, mask


def _nuclei(rng, height, width, num_classes, scale):
    # Eosin background with fibres (anisotropic noise) and pale gaps.
    fibre_angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    along = xx * np.cos(fibre_angle) + yy * np.sin(fibre_angle)
    fibres = np.sin(along * rng.uniform(0.5, 0.9) + 3.0 * _value_noise(rng, height, width, 9.0))
    eosin_od = rng.uniform(0.25, 0.55) * (1.0 + 0.25 * fibres + 0.35 * _fractal_noise(
        rng, height, width, (14.0, 5.0, 2.0)))
    eosin_od = np.clip(eosin_od, 0.02, None)

    # Nucleus centres: jittered grid thinned by a smooth density field.
    spacing = rng.uniform(7.0, 9.5) * scale
    ny = int(np.ceil(height / spacing)) + 2
    nx = int(np.ceil(width / spacing)) + 2
    cy = ((np.arange(ny) - 1 + 0.5) * spacing)[:, None] + rng.uniform(-0.5, 0.5, (ny, nx)) * spacing
    cx = ((np.arange(nx) - 1 + 0.5) * spacing)[None, :] + rng.uniform(-0.5, 0.5, (ny, nx)) * spacing
    density = _value_noise(rng, ny, nx, 2.5)
    keep = rng.random((ny, nx)) < np.clip(0.78 + 0.3 * density, 0.35, 0.98)
    cy, cx = cy[keep].astype(np.float32), cx[keep].astype(np.float32)
    count = cy.size

    n_types = num_classes - 1
    kinds = rng.integers(0, max(n_types, 3), count)  # binary sets still mix 3 looks
    u = kinds / max(max(n_types, 3) - 1, 1)
    radius_a = (2.2 + 3.2 * u) * rng.uniform(0.85, 1.15, count) * scale
    elong = np.clip((0.92 - 0.4 * u) * rng.uniform(0.9, 1.1, count), 0.45, 1.0)
    radius_b = radius_a * elong
    optical = (1.7 - 0.8 * u) * rng.uniform(0.85, 1.15, count)
    chromatin = 0.06 + 0.35 * u
    theta0 = rng.uniform(0, np.pi, count)
    harm = rng.uniform(0.0, 0.1, (count, 3)) * (1.0 + 0.5 * u[:, None])
    phase = rng.uniform(0, 2 * np.pi, (count, 3))

    # Each nucleus is evaluated on a small square patch around its centre;
    # the patches are then merged per pixel (owner = most-inside nucleus).
    reach = int(np.ceil(radius_a.max() * 1.45)) + 1
    offsets = np.arange(-reach, reach + 1)
    py = np.round(cy)[:, None, None].astype(np.int64) + offsets[None, :, None]
    px = np.round(cx)[:, None, None].astype(np.int64) + offsets[None, None, :]
    py, px = np.broadcast_arrays(py, px)
    dy = (py - cy[:, None, None]).astype(np.float32)
    dx = (px - cx[:, None, None]).astype(np.float32)
    cos, sin = np.cos(theta0)[:, None, None], np.sin(theta0)[:, None, None]
    u_ = (dx * cos + dy * sin) / radius_a[:, None, None]
    v_ = (-dx * sin + dy * cos) / radius_b[:, None, None]
    angle = np.arctan2(v_, u_)
    outline = 1.0 + sum(harm[:, k, None, None] * np.cos((k + 2) * angle + phase[:, k, None, None])
                        for k in range(3))
    rn = np.sqrt(u_ * u_ + v_ * v_) / outline  # < 1 inside nucleus n
    nucleus = np.broadcast_to(np.arange(count)[:, None, None], rn.shape)
    near = (rn < 1.5) & (py >= 0) & (py < height) & (px >= 0) & (px < width)
    pixel = (py * width + px)[near]
    rn, nucleus = rn[near], nucleus[near]

    # Rendering: hematoxylin absorbance, soft 1-px edges, darker rim, chromatin.
    coverage = np.clip((1.0 - rn) * radius_a[nucleus] / 0.9 + 0.5, 0.0, 1.0)
    rim = 1.0 + 0.35 * np.clip((rn - 0.6) / 0.4, 0.0, 1.0)
    texture = _fractal_noise(rng, height, width, (3.0, 1.3, 0.7)).ravel()
    weights = coverage * rim * optical[nucleus] * (1.0 + chromatin[nucleus] * texture[pixel])
    hem_od = np.bincount(pixel, weights=weights, minlength=height * width).reshape(height, width)
    od = eosin_od[..., None] * _EOSIN + hem_od[..., None] * _HEMATOXYLIN
    colour = np.exp(-od * rng.uniform(0.85, 1.15))
    colour = ndimage.gaussian_filter(colour, sigma=(0.4, 0.4, 0))
    colour += rng.normal(0.0, 0.015, colour.shape)
    image = np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)

    inner = rn < 1.0
    pixel, rn, nucleus = pixel[inner], rn[inner], nucleus[inner]
    order = np.lexsort((rn, pixel))
    first = np.unique(pixel[order], return_index=True)[1]
    owner_flat = np.full(height * width, -1, np.int64)
    owner_flat[pixel[order][first]] = nucleus[order][first]
    owner = owner_flat.reshape(height, width)
    inside = owner >= 0

    # Mask: nuclei, with a 1-px background line where two different nuclei meet.
    solid = inside & ~touching_borders(np.where(inside, owner + 1, 0))
    mask = np.zeros((height, width), np.int32)
    if num_classes == 2:
        mask[solid] = 1
    else:
        mask[solid] = (kinds[owner[solid]] + 1).astype(np.int32)
    return image, mask


def synthetic_example(kind: str = "fragments", index: int = 0,
                      image_size: Tuple[int, int] = (64, 64), num_classes: int = 2,
                      seed: int = 0, split: str = "train",
                      object_scale: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Example ``index`` of a synthetic dataset: ``(uint8 (H, W, 3), int32 (H, W))``.

    ``object_scale`` multiplies the size of the objects (see the module
    docstring); the arguments are otherwise those of `make_synthetic`.

    Example:

    >>> image, mask = synthetic_example("nuclei", index=3, image_size=(32, 48))
    >>> image.shape, image.dtype, mask.shape, sorted(set(mask.ravel().tolist()))
    ((32, 48, 3), dtype('uint8'), (32, 48), [0, 1])
    """
    _check_kind_and_classes(kind, num_classes)
    height, width = _check_size(image_size)
    scale = _check_object_scale(object_scale)
    rng = _rng(kind, split, index, seed)
    draw = _fragments if kind == "fragments" else _nuclei
    return draw(rng, height, width, int(num_classes), scale)


def synthetic_arrays(kind: str = "fragments", num_examples: int = 64,
                     image_size: Tuple[int, int] = (64, 64), num_classes: int = 2,
                     seed: int = 0, split: str = "train",
                     object_scale: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """``num_examples`` synthetic examples as arrays ``(images (N, H, W, 3) uint8,
    masks (N, H, W) int32)``; see the module docstring for what they show.

    Example:

    >>> images, masks = synthetic_arrays("fragments", num_examples=4, image_size=(32, 32))
    >>> images.shape, masks.shape, masks.dtype
    ((4, 32, 32, 3), (4, 32, 32), dtype('int32'))
    >>> bigger, _ = synthetic_arrays("fragments", num_examples=6, image_size=(32, 32))
    >>> bool((bigger[:4] == images).all())
    True
    """
    if int(num_examples) < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
    _check_kind_and_classes(kind, num_classes)
    height, width = _check_size(image_size)
    _check_object_scale(object_scale)
    images = np.empty((num_examples, height, width, 3), np.uint8)
    masks = np.empty((num_examples, height, width), np.int32)
    for index in range(int(num_examples)):
        images[index], masks[index] = synthetic_example(
            kind, index, (height, width), num_classes, seed, split, object_scale)
    return images, masks


def synthetic_palette(num_classes: int) -> Tuple[Tuple[int, int, int], ...]:
    """Colours for visualising synthetic masks: black background, then distinct hues.

    Example:

    >>> synthetic_palette(3)[0]
    (0, 0, 0)
    """
    import colorsys

    colours = [(0, 0, 0)]
    for k in range(1, num_classes):
        r, g, b = colorsys.hsv_to_rgb(((k - 1) * 0.61803) % 1.0, 0.8, 1.0)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return tuple(colours)


def make_synthetic(kind: str = "fragments", num_examples: int = 64,
                   image_size: Tuple[int, int] = (64, 64), num_classes: int = 2,
                   seed: int = 0, split: str = "train",
                   object_scale: float = 1.0) -> SegmentationData:
    """A synthetic tiny-dense dataset as :class:`SegmentationData`.

    Examples are generated lazily when the dataset is iterated (about 2-4 ms
    for a 64x64 image), identically on every pass; add ``.cache()`` (or
    ``make_pipeline(..., cache=True)``) to generate them once.

    Args:
        kind: ``"fragments"`` or ``"nuclei"``.
        num_examples: number of examples.
        image_size: ``(height, width)``.
        num_classes: 2 for background/object; ``k`` in [3, 16] for background
            plus ``k - 1`` object classes (fragment size bins or nucleus types).
        seed: base seed; example ``i`` depends only on ``(seed, split, kind, i)``.
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint random streams).
        object_scale: multiplies the objects' size (1: a few to ~15 px
            across; `OBJECT_SCALE_LARGE` = 4: about 16-50 px); see the module
            docstring.

    Example:

    >>> data = make_synthetic("fragments", num_examples=8, image_size=(32, 32))
    >>> data.num_examples, data.num_classes, data.class_names
    (8, 2, ('background', 'fragment'))
    >>> image, mask = next(iter(data.dataset))
    >>> image.dtype.name, mask.dtype.name, tuple(mask.shape)
    ('uint8', 'int32', (32, 32))
    """
    _check_kind_and_classes(kind, num_classes)
    height, width = _check_size(image_size)
    if int(num_examples) < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
    _rng(kind, split, 0, seed)  # validates split and seed now, not at iteration
    object_scale = _check_object_scale(object_scale)

    make_one = functools.partial(synthetic_example, kind, image_size=(height, width),
                                 num_classes=int(num_classes), seed=int(seed), split=split,
                                 object_scale=object_scale)

    def _generate(index):
        image, mask = tf.numpy_function(
            lambda i: make_one(int(i)), [index], [tf.uint8, tf.int32], stateful=False)
        image.set_shape([height, width, 3])
        mask.set_shape([height, width])
        return image, mask

    dataset = tf.data.Dataset.range(int(num_examples)).map(
        _generate, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return SegmentationData(
        dataset=dataset, num_classes=int(num_classes),
        class_names=class_names_for(kind, num_classes), num_examples=int(num_examples),
        name=f"synthetic_{kind}", ignore_label=IGNORE_LABEL, split=split,
        palette=synthetic_palette(int(num_classes)))
