"""What W does on your data: a per-level report of the structure weights.

SARD's feature loss weights each cell of a teacher level map by W (see
`keras_sard.structure`).  Whether that differs from uniform feature
distillation depends on the data and the level: where W is nearly uniform, or
where object boundaries fill most cells at the level's stride, SARD cannot do
more than uniform distillation.  `structure_report` measures it, per tapped
level, in one teacher forward pass per batch:

- **effective fraction** ``1 / (N·ΣW²)`` (N cells): 1.0 for a uniform W, the
  share of cells W covers where it is uniform on a subset, and
  ``1 / (1 + CV²)`` in general (CV: W's coefficient of variation);
- **max/mean** of W: ``N·max W``;
- given labels, the **boundary concentration**: W's mass on the ground-truth
  boundary band divided by the band's area share (1.0: W ignores boundaries),
  with its **ceiling** (the concentration of a W entirely on the cells of
  densest band) and the **share of cells holding a boundary** at all.

The band is the 3×3 morphological gradient of the label map (pixels whose
in-bounds 3×3 window holds two labels; ignore pixels neither count nor
separate), averaged into each level cell; see `cell_band_density`.

Every number is computed per image, then averaged over images (arithmetic
mean); the concentration and its ceiling over the images that hold a
boundary.

Example::

    import keras, numpy as np
    from keras_sard.diagnostics import structure_report

    inputs = keras.Input((32, 32, 3))
    level = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="level_1")(inputs)
    teacher = keras.Model(inputs, keras.layers.Conv2D(2, 1)(level))
    images = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    labels = np.zeros((4, 32, 32), "int32")
    labels[:, 8:24, 8:24] = 1
    report = structure_report(teacher, ["level_1"], images, labels)
    print(report)             # a table, one row and verdict per level
    report.levels[0].effective_fraction
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np
from keras import ops

from keras_sard.data.batches import iterate_batches
from keras_sard.structure import StructureWeights
from keras_sard.taps import FeatureTaps

__all__ = [
    "BOUNDARY_CONCENTRATION_GOAL",
    "NEARLY_UNIFORM_FRACTION",
    "LevelReport",
    "StructureReport",
    "boundary_statistics",
    "cell_band_density",
    "label_boundary_band",
    "structure_report",
    "weight_statistics",
]

NEARLY_UNIFORM_FRACTION = 0.9
"""An effective fraction at or above this is "nearly uniform": ``1/(N·ΣW²) =
1/(1 + CV²)``, so 0.9 means W's cells deviate from uniform by a third of
their mean (one standard deviation) or less, too little to change which
errors the feature loss favours."""

BOUNDARY_CONCENTRATION_GOAL = 1.3
"""A boundary concentration at or above this counts as "W concentrates on
boundaries": 30 % more weight per unit area on the band than uniform.  A
working threshold (issue 14's goal), not a derived one: on the small
teacher's level maps of 6-15 px objects it measured 0.99-1.04, and W
computed from the teacher's full-resolution softmax 1.5-1.65."""

_BIG = 1e9  # above any label id, below float32's limit

VERDICT_UNIFORM = "W is nearly uniform here: SARD will behave like uniform feature distillation"
VERDICT_SATURATED = ("boundaries fill most cells at this stride (objects too small for the "
                     "level): no W can favour them")
VERDICT_CONCENTRATED = "W concentrates on object boundaries"
VERDICT_WEAK = (f"W varies, but favours the labelled boundaries little (concentration below "
                f"{BOUNDARY_CONCENTRATION_GOAL})")
VERDICT_NO_BOUNDARY = "W is not uniform; the labels hold no boundary to compare with"
VERDICT_UNLABELLED = "W is not uniform; pass labels to see whether it favours boundaries"


def _labels(labels, argument="labels"):
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if len(labels.shape) != 3:
        raise ValueError(f"`{argument}` must be (batch, height, width) class ids; got shape "
                         f"{tuple(labels.shape)}.")
    return ops.cast(labels, "float32")


def label_boundary_band(labels, ignore_label=255):
    """The 3×3 morphological gradient band of a label map, (B, H, W) float32 0/1.

    A pixel is on the band when its in-bounds 3×3 window holds two different
    labels; ignore pixels are never on it and separate nothing (a pixel next
    to an ignore region only is not on the band).

    >>> import numpy as np
    >>> from keras import ops
    >>> labels = np.zeros((1, 4, 4), "int32"); labels[0, :, 2:] = 1
    >>> ops.convert_to_numpy(label_boundary_band(labels))[0, 0].astype(int).tolist()
    [0, 1, 1, 0]
    """
    labels = _labels(labels)
    ignore = labels == float(ignore_label)
    pad = [(0, 0), (1, 1), (1, 1), (0, 0)]
    high = ops.pad(ops.where(ignore, -1.0, labels)[..., None], pad, constant_values=-1.0)
    low = ops.pad(ops.where(ignore, -_BIG, -labels)[..., None], pad, constant_values=-_BIG)
    dilated = ops.max_pool(high, 3, strides=1, padding="valid")[..., 0]
    eroded = -ops.max_pool(low, 3, strides=1, padding="valid")[..., 0]
    return ops.cast(ops.logical_and(dilated != eroded, ops.logical_not(ignore)), "float32")


def _cell_sums(x, cell):
    batch, height, width = x.shape
    sy, sx = cell
    x = ops.reshape(x, (batch, height // sy, sy, width // sx, sx))
    return ops.sum(x, axis=(2, 4))


def _cell_size(label_shape, level_shape, layer="the level"):
    (height, width), (h, w) = label_shape, level_shape
    if height % h or width % w:
        raise ValueError(
            f"The labels ({height}×{width}) must be a whole multiple of {layer}'s map "
            f"({h}×{w}) to be pooled into its cells.")
    return height // h, width // w


def cell_band_density(labels, level_shape, ignore_label=255):
    """The band's share of each level cell's valid pixels, and which cells hold any.

    Args:
        labels: (B, H, W) class ids; H and W whole multiples of the level's.
        level_shape: ``(h, w)`` of the level map; a cell is ``H/h × W/w``.
        ignore_label: excluded from the band and from the cells' areas.

    Returns:
        ``(density, valid)``, each (B, h, w) float32: band pixels / valid
        pixels (0 where a cell has no valid pixel), and 1 where a cell has one.
    """
    labels = _labels(labels)
    cell = _cell_size(tuple(labels.shape[1:]), tuple(level_shape))
    valid = ops.cast(labels != float(ignore_label), "float32")
    band = _cell_sums(label_boundary_band(labels, ignore_label), cell)
    area = _cell_sums(valid, cell)
    return band / ops.maximum(area, 1.0), ops.cast(area > 0, "float32")


def weight_statistics(weights):
    """Per image: ``{"effective_fraction": 1/(N·ΣW²), "max_over_mean": N·max W}``.

    `weights` (B, h, w) sum to 1 per image (`StructureWeights`); NumPy (B,)
    arrays are returned.
    """
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    cells = float(weights.shape[1] * weights.shape[2])
    energy = ops.sum(ops.square(weights), axis=(1, 2))
    return {
        "effective_fraction": ops.convert_to_numpy(1.0 / ops.maximum(cells * energy, 1e-30)),
        "max_over_mean": ops.convert_to_numpy(cells * ops.max(weights, axis=(1, 2))),
    }


def boundary_statistics(weights, labels, ignore_label=255):
    """Per image, how W relates to the labelled boundary band (NumPy (B,) arrays).

    With b the band density of each valid cell (`cell_band_density`) and the
    sums over valid cells:

    - ``concentration`` = (ΣW·b / ΣW) / mean(b): 1.0 for a uniform W;
    - ``ceiling`` = max(b) / mean(b): the concentration of a W on the cells of
      densest band, the most any W can reach;
    - ``boundary_cell_share``: the share of valid cells with b > 0.

    Concentration and ceiling are NaN for an image without a boundary (or
    where W has no mass on valid cells).
    """
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    density, valid = cell_band_density(labels, tuple(weights.shape[1:]), ignore_label)
    cells = ops.sum(valid, axis=(1, 2))
    mean_band = ops.sum(density, axis=(1, 2)) / ops.maximum(cells, 1.0)
    mass = ops.sum(weights * valid, axis=(1, 2))
    on_band = ops.sum(weights * density, axis=(1, 2)) / ops.maximum(mass, 1e-30)
    defined = ops.logical_and(mean_band > 0, mass > 0)
    safe_mean = ops.where(defined, mean_band, 1.0)
    nan = float("nan")
    return {
        "concentration": ops.convert_to_numpy(ops.where(defined, on_band / safe_mean, nan)),
        "ceiling": ops.convert_to_numpy(
            ops.where(defined, ops.max(density, axis=(1, 2)) / safe_mean, nan)),
        "boundary_cell_share": ops.convert_to_numpy(
            ops.sum(ops.cast(density > 0, "float32"), axis=(1, 2)) / ops.maximum(cells, 1.0)),
    }


@dataclasses.dataclass(frozen=True)
class LevelReport:
    """One level of a `StructureReport`; label fields are None without labels,
    NaN where no image holds a boundary."""

    layer: str
    map_shape: Tuple[int, int]
    stride: Optional[int]
    images: int
    effective_fraction: float
    max_over_mean: float
    concentration: Optional[float] = None
    ceiling: Optional[float] = None
    boundary_cell_share: Optional[float] = None
    images_with_boundary: Optional[int] = None

    @property
    def verdict(self):
        """One sentence, from `NEARLY_UNIFORM_FRACTION` and
        `BOUNDARY_CONCENTRATION_GOAL`.

        With labels the concentration decides first: a W can be nearly
        uniform overall and still favour a sparse band by the goal.
        """
        uniform = self.effective_fraction >= NEARLY_UNIFORM_FRACTION
        if self.concentration is None or not self.images_with_boundary:
            if uniform:
                return VERDICT_UNIFORM
            return VERDICT_UNLABELLED if self.concentration is None else VERDICT_NO_BOUNDARY
        if self.concentration >= BOUNDARY_CONCENTRATION_GOAL:
            return VERDICT_CONCENTRATED
        if uniform:
            return VERDICT_UNIFORM
        if self.ceiling < BOUNDARY_CONCENTRATION_GOAL:
            return VERDICT_SATURATED
        return VERDICT_WEAK


def _number(value, digits=2):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class StructureReport:
    """What `structure_report` returns: one `LevelReport` per tapped level."""

    levels: Tuple[LevelReport, ...]
    labelled: bool

    def rows(self):
        """One dict per level (the fields and the verdict), e.g. for a logger."""
        return [dict(dataclasses.asdict(level), verdict=level.verdict) for level in self.levels]

    def format(self):
        """A plain-text table, one line per level, with its verdict."""
        images = self.levels[0].images if self.levels else 0
        head = f"W per level, mean over {images} images"
        if self.labelled:
            with_boundary = self.levels[0].images_with_boundary if self.levels else 0
            head += f" (concentration and ceiling over the {with_boundary} with a boundary)"
        columns = ["level", "map", "stride", "eff. fraction", "max/mean"]
        if self.labelled:
            columns += ["concentration", "ceiling", "boundary cells"]
        columns.append("verdict")
        table = []
        for level in self.levels:
            row = [level.layer, "×".join(str(s) for s in level.map_shape),
                   "-" if level.stride is None else str(level.stride), _number(level.effective_fraction), _number(level.max_over_mean, 1)]
            if self.labelled:
                row += [_number(level.concentration), _number(level.ceiling),
                        _number(level.boundary_cell_share)]
            table.append(row + [level.verdict])
        widths = [max(len(r[i]) for r in [columns] + table) for i in range(len(columns) - 1)]
        lines = [head]
        for row in [columns] + table:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def structure_report(teacher, layers, images, labels=None, structure=None, *, batch_size=8,
                     num_batches=None, ignore_label=255):
    """Measure W on `teacher`'s `layers` over `images` (see the module docstring).

    Args:
        teacher: the teacher model (run in inference mode).
        layers: names or paths of the tapped levels (`keras_sard.taps`).
        images: what the teacher eats (normalised as in training): a NumPy
            array, or a batched ``tf.data.Dataset`` / iterable of images or
            ``(images, masks)`` pairs, whose masks are then the labels.
        labels: (N, H, W) class ids for an array of `images`, or None.
        structure: the W to measure: a `StructureWeights` (e.g. a
            `SARDLoss`'s ``.structure``); default ``StructureWeights()``.
        batch_size: images per forward pass for an array of `images`.
        num_batches: read only this many batches (None: all).
        ignore_label: the label excluded from the band.

    Returns:
        a `StructureReport`; ``print(report)`` shows the table.
    """
    from keras_sard.backend import steps

    structure = StructureWeights() if structure is None else structure
    taps = FeatureTaps(teacher, layers, role="teacher")
    array_input = isinstance(images, np.ndarray)
    if labels is not None and not array_input:
        raise ValueError("`labels` goes with an array of `images`; batches carry their own "
                         "masks as (images, masks) pairs.")
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"`labels` holds {len(labels)} maps for {len(images)} images.")
    per_level = {name: {} for name in taps.layers}
    start = 0
    labelled = None
    for inputs, targets in iterate_batches(images, batch_size if array_input else None,
                                           num_batches, "images"):
        count = len(inputs)
        if labels is not None:
            targets = labels[start:start + count]
        start += count
        if labelled is None:
            labelled = targets is not None
        elif labelled != (targets is not None):
            raise ValueError("`images` yields batches with and without masks.")
        with steps.inference_scope(), taps.record() as features:
            teacher(inputs, training=False)
        for name, feature in features.items():
            weights = structure(feature)
            stats = weight_statistics(weights)
            if labelled:
                shape = tuple(weights.shape[1:])
                _cell_size(tuple(np.shape(targets)[1:3]), shape, f"layer {name!r}")
                stats.update(boundary_statistics(weights, targets, ignore_label))
            stats["map_shape"] = tuple(int(s) for s in weights.shape[1:])
            stats["stride"] = _stride(np.shape(inputs)[1:3], stats["map_shape"])
            for key, value in stats.items():
                per_level[name].setdefault(key, []).append(value)
    if labelled is None:
        raise ValueError("`images` yielded no image.")
    return StructureReport(tuple(_level(name, s, labelled) for name, s in per_level.items()),
                           labelled)


def _stride(image_shape, map_shape):
    strides = {a // b for a, b in zip(image_shape, map_shape) if b and a % b == 0}
    return strides.pop() if len(strides) == 1 and len(image_shape) == 2 else None


def _level(name, stats, labelled):
    shapes = set(stats["map_shape"])
    map_shape = shapes.pop() if len(shapes) == 1 else (-1, -1)  # images of several sizes
    strides = set(stats["stride"])
    stride = strides.pop() if len(strides) == 1 else None
    fraction = np.concatenate(stats["effective_fraction"])
    level = dict(layer=name, map_shape=map_shape, stride=stride, images=len(fraction),
                 effective_fraction=float(fraction.mean()),
                 max_over_mean=float(np.concatenate(stats["max_over_mean"]).mean()))
    if labelled:
        concentration = np.concatenate(stats["concentration"])
        defined = ~np.isnan(concentration)
        level.update(
            concentration=float(concentration[defined].mean()) if defined.any() else math.nan,
            ceiling=float(np.concatenate(stats["ceiling"])[defined].mean())
            if defined.any() else math.nan,
            boundary_cell_share=float(np.concatenate(stats["boundary_cell_share"]).mean()),
            images_with_boundary=int(defined.sum()))
    return LevelReport(**level)
