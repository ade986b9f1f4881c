"""The density term D of the structure map: the mean distance of each feature
vector to the others in its (2r+1)² window, exact or by the variance bound."""

import numpy as np
from keras import ops

from keras_sard.structure.filters import FLOAT32_RESOLUTION, as_features
from keras_sard.validation import check_choice

DENSITY_METHODS = ("exact", "variance")


def validate_radius(radius):
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"`radius` must be an integer ≥ 0; got {radius!r}.")
    return int(radius)


def _window_sum(x, axis, radius):
    """Sum of the 2r+1 entries around each entry along `axis` (1 or 2) of
    (B, H, W, C), zeros beyond the ends.

    By doubling: sums of 1, 2, 4, ... consecutive entries, each from two of
    the last, combined along the binary digits of 2r+1: about 2·log2(2r+1)
    additions (7 for r = 7) instead of 2r.
    """
    length = ops.shape(x)[axis]
    widths = [(0, 0)] * 4
    widths[axis] = (radius, radius)
    block = ops.pad(x, widths)  # block[i]: the sum of `width` entries from i

    def part(tensor, start, stop):
        return tensor[(slice(None),) * axis + (slice(start, stop),)]

    total, offset, width, size = None, 0, 1, 2 * radius + 1
    while True:
        if size & 1:
            piece = part(block, offset, offset + length)
            total = piece if total is None else total + piece
            offset += width
        size >>= 1
        if not size:
            return total
        block = part(block, 0, -width) + part(block, width, None)
        width *= 2


def _box_sum(x, radius):
    """Sum over the in-bounds (2r+1)² window around each pixel of (B, H, W, C)."""
    return _window_sum(_window_sum(x, 1, radius), 2, radius)


def _window_counts(height, width, radius):
    """Number of in-bounds pixels in each window: (1, H, W, 1) float32."""
    def along(size):
        index = ops.arange(0, size, dtype="float32")
        upper = ops.minimum(index + radius, ops.cast(size, "float32") - 1.0)
        lower = ops.maximum(index - radius, 0.0)
        return upper - lower + 1.0

    counts = along(height)[:, None] * along(width)[None, :]
    return counts[None, :, :, None]


# Side of the square tiles of pixels whose window distances are one matrix
# product (see `_window_distance_sum`).  8: with r = 7 a tile reads the 22×22
# pixels around it, 2.15× the 225 pairs per pixel that D needs, in products of
# (64, C)×(C, 484).
DENSITY_TILE = 8


def _window_distance_sum(x, mean, radius):
    """Σ over the in-bounds (2r+1)² window of each pixel i of ||x(j) − mean(i)||₂.

    Exact, without a loop over the (2r+1)² offsets.  The pixels i of a T×T
    tile (T = `DENSITY_TILE`) have their windows inside the (T+2r)² pixels j
    around the tile, so one batched matrix product per tile gives every
    ``||x(j) − μ(i)||² = ||x'(j)||² + ||μ'(i)||² − 2·μ'(i)·x'(j)`` at once, a
    mask keeping the pairs inside i's window and the image.  x' and μ' are
    centred on the mean of μ over the tile, so the expansion cancels only
    against the local spread of the features, not their magnitude.  The loop
    runs over rows of tiles, so it holds one row's neighbourhoods at a time:
    about ``(T+2r)²/(T·H)·B·H·W·C`` plus ``T·(T+2r)²·B·W`` floats.

    x, mean: (B, H, W, C), x centred per image.  Returns (B, H, W).
    """
    tile, pad = DENSITY_TILE, radius
    span = tile + 2 * pad
    batch, height, width = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
    channels = x.shape[3]
    rows, cols = (height + tile - 1) // tile, (width + tile - 1) // tile
    extra_h, extra_w = rows * tile - height, cols * tile - width
    padded_width = cols * tile + 2 * pad
    # j side: the features and an in-image indicator, zero-padded by r (and up
    # to whole tiles); i side: the window means, padded to whole tiles.
    features = ops.pad(x, [(0, 0), (pad, pad + extra_h), (pad, pad + extra_w), (0, 0)])
    inside = ops.pad(
        ops.ones((height, width), "float32"), [(pad, pad + extra_h), (pad, pad + extra_w)]
    )
    means = ops.pad(mean, [(0, 0), (0, extra_h), (0, extra_w), (0, 0)])
    # Flat indices, within a strip of `span` padded rows, of each tile's
    # neighbourhood: (cols·span·span,).
    offsets = np.arange(span)
    starts = ops.arange(0, cols, dtype="int32") * tile
    neighbourhood = ops.reshape(
        starts[:, None, None]
        + ops.convert_to_tensor(offsets[None, :, None], "int32") * padded_width
        + ops.convert_to_tensor(offsets[None, None, :], "int32"),
        (-1,),
    )
    # window[p, q]: pixel q of the neighbourhood is in the window of pixel p
    # of the tile (both row-major).
    near = (offsets[None, :] >= np.arange(tile)[:, None]) & (
        offsets[None, :] <= np.arange(tile)[:, None] + 2 * pad
    )
    window = (near[:, None, :, None] & near[None, :, None, :]).reshape(tile * tile, span * span)
    window = ops.convert_to_tensor(window.astype("float32"))

    def tile_row(row, total):
        top = row * tile
        strip = ops.slice(features, (0, top, 0, 0), (batch, span, padded_width, channels))
        strip = ops.take(ops.reshape(strip, (batch, -1, channels)), neighbourhood, axis=1)
        strip = ops.reshape(strip, (-1, span * span, channels))  # (B·cols, (T+2r)², C)
        centres = ops.slice(means, (0, top, 0, 0), (batch, tile, cols * tile, channels))
        centres = ops.reshape(centres, (batch, tile, cols, tile, channels))
        centres = ops.reshape(
            ops.transpose(centres, (0, 2, 1, 3, 4)), (-1, tile * tile, channels)
        )  # (B·cols, T², C)
        reference = ops.mean(centres, axis=1, keepdims=True)
        strip = strip - reference
        centres = centres - reference
        squared = (
            ops.sum(ops.square(centres), axis=-1)[:, :, None]
            + ops.sum(ops.square(strip), axis=-1)[:, None, :]
            - 2.0 * ops.matmul(centres, ops.transpose(strip, (0, 2, 1)))
        )
        valid = ops.slice(inside, (top, 0), (span, padded_width))
        valid = ops.reshape(ops.take(ops.reshape(valid, (-1,)), neighbourhood), (cols, 1, -1))
        mask = ops.reshape(window[None] * valid, (1, cols, tile * tile, span * span))
        distance = ops.reshape(ops.sqrt(ops.maximum(squared, 0.0)), (batch, cols, tile * tile, -1))
        sums = ops.sum(distance * mask, axis=-1)  # (B, cols, T²)
        sums = ops.reshape(sums, (batch, cols, tile, tile))
        sums = ops.reshape(ops.transpose(sums, (0, 2, 1, 3)), (batch, tile, cols * tile))
        return ops.slice_update(total, (0, top, 0), sums)

    total = ops.fori_loop(
        0, rows, tile_row, ops.zeros((batch, rows * tile, cols * tile), "float32")
    )
    return total[:, :height, :width]


def feature_density(features, radius=7, method="exact"):
    """The density term D (Eq. 22): local feature dispersion.

    ``D(i)`` is the mean, over the in-bounds (2r+1)² window around pixel i, of
    ``||F(j) − μ(i)||₂`` where μ(i) is the window's mean feature vector.

    Args:
        features: (B, H, W, C) teacher features.
        radius: r; the window is (2r+1)×(2r+1).  7 (15×15) is the paper's.
        method: ``"exact"`` computes every distance, as matrix products over
            8×8 tiles of pixels (no loop over the offsets; memory a small
            multiple of the features'); ``"variance"`` returns
            ``sqrt(mean ||F||² − ||μ||²)``, an upper bound of D (Jensen) from
            two box filters, at O(B·H·W·C) cost.

    Returns:
        (B, H, W) float32.
    """
    radius = validate_radius(radius)
    check_choice(method, DENSITY_METHODS, "method")
    x = as_features(features)
    # Values below float32's resolution of the features are round-off: 0.
    floor = FLOAT32_RESOLUTION * ops.sqrt(
        ops.max(ops.sum(ops.square(x), axis=-1), axis=(1, 2), keepdims=True)
    )
    # D is unchanged by adding a constant vector to every F(j); centring each
    # image's channels eases the cancellation of "variance" and the rounding
    # of the window means.
    x = x - ops.mean(x, axis=(1, 2), keepdims=True)
    if radius == 0:
        # A one-pixel window is its own mean: D = 0 (NaN stays NaN).
        return 0.0 * ops.sum(x, axis=-1)
    height, width = ops.shape(x)[1], ops.shape(x)[2]
    counts = _window_counts(height, width, radius)
    mean = _box_sum(x, radius) / counts
    if method == "variance":
        energy = _box_sum(ops.sum(ops.square(x), axis=-1, keepdims=True), radius)
        spread = energy / counts - ops.sum(ops.square(mean), axis=-1, keepdims=True)
        density = ops.sqrt(ops.maximum(spread, 0.0))[..., 0]
    else:
        density = _window_distance_sum(x, mean, radius) / counts[..., 0]
    return ops.where(density <= floor, 0.0, density)
