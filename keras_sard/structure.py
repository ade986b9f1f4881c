"""The structure-importance map W of SARD (spec §1, the supplement's Eq. 16–24).

W says where on a teacher feature map the student should be matched most
closely: on edges between objects (E), at corners and junctions (C) and in
crowded regions (D).  Everything here reads teacher features only, needs no
label, runs in float32 whatever the mixed-precision policy, and carries no
gradient.

Every term can be computed and plotted on its own::

    import numpy as np
    from keras_sard.structure import StructureWeights

    features = np.random.default_rng(0).normal(size=(2, 32, 32, 16))
    terms = StructureWeights().terms(features)
    terms["edge"].shape      # (2, 32, 32): E, also "corner" (C), "density" (D)
    terms["weights"].sum(axis=(1, 2))   # W sums to 1 per image

Shapes: features are channels_last ``(batch, height, width, channels)``; every
map returned is ``(batch, height, width)``.

Non-finite features are propagated, not hidden: a NaN or Inf anywhere in one
image's features makes that image's W NaN (the other images of the batch are
unaffected), so the loss that uses W turns NaN and the Distiller's guard sees
it.  Nothing here raises on values, because values are not known while a
training step is being traced.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_sard.validation import check_choice

__all__ = [
    "sobel_gradients",
    "gaussian_smooth",
    "structure_tensor",
    "edge_strength",
    "corner_strength",
    "feature_density",
    "EdgeStrength",
    "CornerStrength",
    "FeatureDensity",
    "StructureWeights",
]

DENSITY_METHODS = ("exact", "variance")
# Relative size below which float32 cannot tell a term from 0: λ2 against λ1,
# D against the image's largest feature norm.  Such values are set to 0, since
# normalize="mean" would otherwise blow their round-off up into weights.
FLOAT32_RESOLUTION = 1e-6
NORMALIZATIONS = ("mean", None)
# How the Sobel and Gaussian filters see beyond the border, in NumPy's names
# (`np.pad(mode=...)`): "symmetric" (the default; the edge pixel repeated,
# SciPy's mode="reflect"), "reflect" (the edge pixel not repeated, SciPy's
# mode="mirror"), or "zero".  Both reflections repeat where the padding is
# wider than the map, as np.pad does.
PADDINGS = ("symmetric", "reflect", "zero")
DEFAULT_PADDING = "symmetric"
# σ of the multi-scale E (feature-map pixels) and σ0 of its weights exp(−σ/σ0);
# scales=None is the single-scale E.
DEFAULT_SCALES = (1.0, 2.0, 4.0, 8.0)
DEFAULT_SIGMA0 = 4.0


# ----------------------------------------------------------------------------
# Validation and padding
# ----------------------------------------------------------------------------


def _as_features(features, name="features"):
    """Float32, gradient-free, rank-4 channels_last features."""
    features = ops.convert_to_tensor(features)
    if len(features.shape) != 4:
        raise ValueError(
            f"`{name}` must be a rank-4 channels_last tensor "
            f"(batch, height, width, channels); got shape {tuple(features.shape)}."
        )
    return ops.stop_gradient(ops.cast(features, "float32"))


def _padded_indices(size, pad, padding):
    """Indices of an axis of length `size` padded by `pad` on each side by
    reflection: ``"symmetric"`` (the edge repeated) or ``"reflect"`` (not
    repeated), as ``np.pad(mode=padding)`` indexes it.

    Padding wider than the axis reflects again, as np.pad does; under
    ``"reflect"`` an axis of length 1 repeats its only element.  `size` may be
    a tensor (a dynamic shape).
    """
    static = isinstance(size, int)
    xp = np if static else ops
    index = np.arange(-pad, size + pad) if static else ops.arange(-pad, size + pad, dtype="int32")
    if padding == "symmetric":
        period = 2 * size
        index = xp.mod(index, period)
        index = xp.where(index >= size, period - 1 - index, index)
    else:
        period = xp.maximum(2 * size - 2, 1)
        index = xp.mod(index, period)
        index = xp.where(index >= size, period - index, index)
    return index.astype("int32") if static else index


def _validate_padding(padding):
    return check_choice(padding, PADDINGS, "padding")


def _reflect_axis(x, axis, pad, padding):
    """Pad one axis of `x` by `pad` on each side by reflection (`_padded_indices`).

    A static axis is padded with slices of x, reversed where the reflection
    runs backwards, and one concatenation (a gather along an inner axis is
    slow on PyTorch); a dynamic one by a gather.
    """
    size = x.shape[axis]
    if not isinstance(size, int):
        return ops.take(x, _padded_indices(ops.shape(x)[axis], pad, padding), axis=axis)
    index = [int(i) for i in _padded_indices(size, pad, padding)]
    pieces, start = [], 0
    while start < len(index):
        end, step = start + 1, 0
        if end < len(index) and abs(index[end] - index[start]) == 1:
            step = index[end] - index[start]
            while end < len(index) and index[end] - index[end - 1] == step:
                end += 1
        low, high = sorted((index[start], index[end - 1]))
        piece = x[(slice(None),) * axis + (slice(low, high + 1),)]
        pieces.append(ops.flip(piece, axis=axis) if step < 0 else piece)
        start = end
    return ops.concatenate(pieces, axis=axis)


def _pad(x, pad_h, pad_w, padding):
    """Pad the two spatial axes of a (B, H, W, C) tensor by reflection or zeros."""
    if padding == "zero":
        return ops.pad(x, [(0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)])
    if pad_h:
        x = _reflect_axis(x, 1, pad_h, padding)
    if pad_w:
        x = _reflect_axis(x, 2, pad_w, padding)
    return x


# ----------------------------------------------------------------------------
# Gradients and the structure tensor
# ----------------------------------------------------------------------------


def sobel_gradients(features, padding=DEFAULT_PADDING):
    """Per-channel Sobel derivatives, scaled by 1/8.

    Returns ``(gx, gy)``, each shaped like ``features``: ``gx`` along the width
    (axis 2), ``gy`` along the height (axis 1).  The 1/8 makes them estimate a
    per-pixel derivative (a ramp of slope 1 gives 1).  `padding`, in NumPy's
    names: ``"symmetric"`` (the default) repeats the edge pixel, so the
    derivative across the border is the one-sided difference (half of it: a
    ramp of slope 1 gives 0.5 on its border); ``"reflect"`` does not repeat
    it, so that derivative is exactly 0 (and C vanishes on the border);
    ``"zero"`` pads with zeros, which invents an edge all around the map.
    """
    x = _as_features(features)
    p = _pad(x, 1, 1, _validate_padding(padding))
    dx = p[:, :, 2:, :] - p[:, :, :-2, :]
    gx = (dx[:, :-2] + 2.0 * dx[:, 1:-1] + dx[:, 2:]) / 8.0
    dy = p[:, 2:, :, :] - p[:, :-2, :, :]
    gy = (dy[:, :, :-2] + 2.0 * dy[:, :, 1:-1] + dy[:, :, 2:]) / 8.0
    return gx, gy


def _gaussian_kernel(sigma):
    radius = int(math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype="float64")
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).astype("float32"), radius


def _blur_matrix(size, sigma, padding):
    """The 1-D Gaussian blur of an axis of length `size`, its padding folded
    in, as a (size, size) matrix: row i holds the kernel's weight of each
    padded entry i − r … i + r at the entry of the axis it copies (none for a
    zero).  `size` may be a tensor (a dynamic shape)."""
    kernel, radius = _gaussian_kernel(sigma)
    static = isinstance(size, int)
    xp = np if static else ops
    entries = np.arange(size) if static else ops.arange(0, size, dtype="int32")
    taps = np.arange(2 * radius + 1)
    if padding == "zero":
        source = entries[:, None] + (taps - radius)[None, :]  # out of range: matches nothing
    else:
        source = xp.take(_padded_indices(size, radius, padding), entries[:, None] + taps[None, :])
    hits = xp.equal(source[:, :, None], entries[None, None, :])  # (size, taps, size)
    if not static:
        hits = ops.cast(hits, "float32")
    return xp.sum(hits * kernel[None, :, None], axis=1)


def gaussian_smooth(features, sigma, padding=DEFAULT_PADDING):
    """Separable Gaussian blur of each channel, radius ``ceil(3σ)``.

    The kernel sums to 1; with ``padding="symmetric"`` (the default) or
    ``"reflect"`` borders are reflected (repeatedly where the map is smaller
    than the radius, as ``np.pad`` does), so a constant map stays constant
    (to float32 rounding); ``"zero"`` pads with zeros.

    Each axis is blurred as one matrix product with `_blur_matrix` (padding
    folded in): H (or W) multiply-adds per value instead of the kernel's
    2r+1, but a matrix product on every backend, where XLA's depthwise
    convolution on a CPU ran about 50× slower.
    """
    _validate_padding(padding)
    if not sigma > 0:
        raise ValueError(f"`sigma` must be > 0; got {sigma}.")
    x = _as_features(features)
    batch, height, width = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
    channels = x.shape[3]
    # Plain (broadcast) matrix products on reshaped views, which keep the
    # result contiguous: an einsum's permuted result made every later
    # elementwise op several times slower on PyTorch.
    along_h = _blur_matrix(height, float(sigma), padding)
    x = ops.matmul(along_h, ops.reshape(x, (batch, height, -1)))  # (B, H, W·C)
    along_w = _blur_matrix(width, float(sigma), padding)
    x = ops.matmul(along_w, ops.reshape(x, (-1, width, channels)))  # (B·H, W, C)
    return ops.reshape(x, (batch, height, width, channels))


def structure_tensor(features, padding=DEFAULT_PADDING):
    """The channel-summed structure tensor (Eq. 16): ``(Jxx, Jxy, Jyy)``.

    Each is ``(batch, height, width)``; `padding` as `sobel_gradients`.
    """
    return _gradients_and_tensor(features, padding)[2:]


def _gradients_and_tensor(features, padding=DEFAULT_PADDING):
    gx, gy = sobel_gradients(features, padding)
    return (
        gx,
        gy,
        ops.sum(gx * gx, axis=-1),
        ops.sum(gx * gy, axis=-1),
        ops.sum(gy * gy, axis=-1),
    )


def _anisotropy(jxx, jxy, jyy):
    """λ1 − λ2 of the 2×2 tensor, in closed form (Eq. 17–19)."""
    return ops.sqrt(ops.square(jxx - jyy) + 4.0 * ops.square(jxy))


def _minor_eigenvalue(gx, gy, jxx, jxy, jyy):
    """λ2 of J as the Rayleigh quotient along its closed-form minor eigenvector.

    The literal ``sqrt(Jxx·Jyy − Jxy²)`` cancels catastrophically where J is
    nearly rank-1 (on every edge): in float32 it leaves noise of about
    sqrt(ε)·λ1 ≈ 3e-4·λ1, which also differs between backends.  Here
    ``v2 = (−sin θ, cos θ)`` with ``θ = ½·atan2(2Jxy, Jxx − Jyy)`` (the major
    direction, Eq. 17) and ``λ2 = v2ᵀ J v2 = Σc (v2·∇F_c)²``, a sum of squares
    whose error is about ε·λ1.  Same value, still closed form.

    λ2 ≤ `FLOAT32_RESOLUTION`·λ1 is returned as 0: float32 cannot tell it
    from a perfect edge (C of a one-channel map is 0 everywhere).
    """
    theta = 0.5 * ops.arctan2(2.0 * jxy, jxx - jyy)
    cos, sin = ops.cos(theta)[..., None], ops.sin(theta)[..., None]
    minor = ops.sum(ops.square(cos * gy - sin * gx), axis=-1)
    major = jxx + jyy - minor
    return ops.where(minor <= FLOAT32_RESOLUTION * major, 0.0, minor), major


def _geometric_mean(gx, gy, jxx, jxy, jyy):
    """C = sqrt(λ1·λ2) (Eq. 19), with λ2 from `_minor_eigenvalue`."""
    minor, major = _minor_eigenvalue(gx, gy, jxx, jxy, jyy)
    return ops.sqrt(ops.maximum(major * minor, 0.0))


def _validate_scales(scales, sigma0):
    if not (isinstance(sigma0, (int, float, np.number)) and 0 < sigma0 < math.inf):
        raise ValueError(f"`sigma0` must be a finite number > 0; got {sigma0!r}.")
    if scales is None:
        return None
    scales = tuple(float(s) for s in scales)
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(
            f"`scales` must be None or a non-empty sequence of positive σ; got {scales}."
        )
    return scales


def edge_strength(features, scales=DEFAULT_SCALES, sigma0=DEFAULT_SIGMA0,
                  padding=DEFAULT_PADDING):
    """The multi-scale edge term (Eq. 20–21), or the single-scale E = λ1 − λ2 (Eq. 19).

    Args:
        features: (B, H, W, C) teacher features.
        scales: the Gaussian σ (feature-map pixels) of
            ``E = Σσ exp(−σ/σ0)·E_σ``, E_σ computed on features smoothed by
            `gaussian_smooth`; ``(1, 2, 4, 8)`` by default, the supplement's.
            None: the single-scale E of the main text, on the raw features.
        sigma0: the scale of the weights ``w_σ = exp(−σ/σ0)`` (4).
        padding: ``"symmetric"``, ``"reflect"`` or ``"zero"``, of the Sobel
            and Gaussian filters (see `sobel_gradients`).

    Returns:
        (B, H, W) float32.
    """
    scales = _validate_scales(scales, sigma0)
    if scales is None:
        return _anisotropy(*structure_tensor(features, padding))
    x = _as_features(features)
    if padding != "zero":
        # Under reflection a constant added to a channel changes no gradient:
        # take each image's first pixel off, so a constant map is exactly 0
        # before the blur, whose rows sum to 1 only up to rounding.
        x = x - x[:, :1, :1, :]
    total = 0.0
    for sigma in scales:
        smooth = gaussian_smooth(x, sigma, padding)
        e_sigma = _anisotropy(*structure_tensor(smooth, padding))
        total = total + math.exp(-sigma / sigma0) * e_sigma
    return total


def corner_strength(features, padding=DEFAULT_PADDING):
    """The corner/junction term C = sqrt(λ1·λ2) (Eq. 19), single-scale;
    `padding` as `sobel_gradients`.

    Returns:
        (B, H, W) float32.
    """
    return _geometric_mean(*_gradients_and_tensor(features, padding))


# ----------------------------------------------------------------------------
# Density
# ----------------------------------------------------------------------------


def _validate_radius(radius):
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
    radius = _validate_radius(radius)
    check_choice(method, DENSITY_METHODS, "method")
    x = _as_features(features)
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


# ----------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------


class _StructureLayer(keras.layers.Layer):
    """A stateless float32 layer mapping (B, H, W, C) features to (B, H, W) maps."""

    def __init__(self, **kwargs):
        # Structure maps are float32 under any mixed-precision policy (spec §1.7).
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.supports_masking = False

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "`features` must be a rank-4 channels_last tensor "
                f"(batch, height, width, channels); got shape {tuple(input_shape)}."
            )
        return tuple(input_shape[:3])


@keras.saving.register_keras_serializable(package="keras_sard")
class EdgeStrength(_StructureLayer):
    """E = λ1 − λ2 of the teacher's structure tensor (Eq. 19–21); by default
    multi-scale, σ ∈ (1, 2, 4, 8); ``scales=None``: single-scale.  Arguments
    as `edge_strength`.

    Example::

        import numpy as np
        from keras_sard.structure import EdgeStrength
        e = EdgeStrength()(np.random.rand(1, 24, 24, 8))
        e.shape  # (1, 24, 24)
        single_scale = EdgeStrength(scales=None)
    """

    def __init__(self, scales=DEFAULT_SCALES, sigma0=DEFAULT_SIGMA0, padding=DEFAULT_PADDING,
                 **kwargs):
        super().__init__(**kwargs)
        self.scales = _validate_scales(scales, sigma0)
        self.sigma0 = float(sigma0)
        self.padding = _validate_padding(padding)

    def call(self, features):
        return edge_strength(features, self.scales, self.sigma0, self.padding)

    def get_config(self):
        config = super().get_config()
        config.update(scales=self.scales, sigma0=self.sigma0, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="keras_sard")
class CornerStrength(_StructureLayer):
    """C = sqrt(λ1·λ2) of the teacher's structure tensor (Eq. 19).

    Example::

        import numpy as np
        from keras_sard.structure import CornerStrength
        CornerStrength()(np.random.rand(1, 24, 24, 8)).shape  # (1, 24, 24)
    """

    def __init__(self, padding=DEFAULT_PADDING, **kwargs):
        super().__init__(**kwargs)
        self.padding = _validate_padding(padding)

    def call(self, features):
        return corner_strength(features, self.padding)

    def get_config(self):
        config = super().get_config()
        config.update(padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="keras_sard")
class FeatureDensity(_StructureLayer):
    """D: mean distance of window features to the window mean (Eq. 22).

    Example::

        import numpy as np
        from keras_sard.structure import FeatureDensity
        FeatureDensity(radius=3)(np.random.rand(1, 24, 24, 8)).shape  # (1, 24, 24)
    """

    def __init__(self, radius=7, method="exact", **kwargs):
        super().__init__(**kwargs)
        self.radius = _validate_radius(radius)
        self.method = check_choice(method, DENSITY_METHODS, "method")

    def call(self, features):
        return feature_density(features, self.radius, self.method)

    def get_config(self):
        config = super().get_config()
        config.update(radius=self.radius, method=self.method)
        return config


@keras.saving.register_keras_serializable(package="keras_sard")
class StructureWeights(_StructureLayer):
    """W = S / Σ S with S = βe·E + βc·C + βd·D (Eq. 23–24).

    Args:
        beta_edge, beta_corner, beta_density: βe, βc, βd ≥ 0 (2, 1, 1), not
            all 0.  A term whose β is 0 is not computed, so ``beta_density=0``
            skips D's cost.
        scales: σ of the multi-scale E (see `edge_strength`), by default
            ``(1, 2, 4, 8)``: the supplement says Eq. 9 reuses this E.  None:
            the single-scale E of the main text.  C is always single-scale.
        sigma0: σ0 of the multi-scale weights ``exp(−σ/σ0)`` (4).
        radius: r of the density window (2r+1)².
        density: ``"exact"`` or ``"variance"`` (see `feature_density`).
        normalize: ``"mean"`` divides E, C and D each by its own per-image
            spatial mean (+ eps) before mixing, so the β mix terms of one
            scale: E and C grow with the square of the feature scale, D
            linearly.  None mixes the raw terms (the literal Eq. 23).
        eps: guard of every division; an image whose Σ S ≤ eps (a flat map)
            gets uniform weights 1/(H·W).
        padding: how E's and C's filters see past the border, in NumPy's
            names: ``"symmetric"`` (the default: the edge pixel repeated, so
            the gradient across the border is a one-sided difference and C
            lives on the border too), ``"reflect"`` (the edge not repeated:
            that gradient is 0 and C is 0 on the outer ring) or ``"zero"``
            (invents an edge around the map, which W would then favour).

    Call returns W, (B, H, W), float32, summing to 1 over each image, with no
    gradient.  `terms` returns every intermediate map for inspection.

    Example::

        import numpy as np
        from keras_sard.structure import StructureWeights
        w = StructureWeights()(np.random.rand(2, 32, 32, 16))
        w.shape  # (2, 32, 32); each image sums to 1
    """

    def __init__(
        self,
        beta_edge=2.0,
        beta_corner=1.0,
        beta_density=1.0,
        scales=DEFAULT_SCALES,
        sigma0=DEFAULT_SIGMA0,
        radius=7,
        density="exact",
        normalize="mean",
        eps=1e-8,
        padding=DEFAULT_PADDING,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("beta_edge", beta_edge),
            ("beta_corner", beta_corner),
            ("beta_density", beta_density),
        ):
            if not (isinstance(value, (int, float, np.number)) and 0 <= value < math.inf):
                raise ValueError(f"`{name}` must be a finite number ≥ 0; got {value!r}.")
        if not beta_edge + beta_corner + beta_density > 0:
            raise ValueError(
                "At least one of `beta_edge`, `beta_corner`, `beta_density` must be > 0 "
                "(with all three 0, W would be uniform: use SARDLoss(weighting=\"uniform\"))."
            )
        check_choice(density, DENSITY_METHODS, "density")
        check_choice(normalize, NORMALIZATIONS, "normalize")
        if not eps > 0:
            raise ValueError(f"`eps` must be > 0; got {eps!r}.")
        self.beta_edge = float(beta_edge)
        self.beta_corner = float(beta_corner)
        self.beta_density = float(beta_density)
        self.scales = _validate_scales(scales, sigma0)
        self.sigma0 = float(sigma0)
        self.radius = _validate_radius(radius)
        self.density = density
        self.normalize = normalize
        self.eps = float(eps)
        self.padding = _validate_padding(padding)

    def terms(self, features):
        """E, C, D, the score S and the weights W, each (B, H, W) float32.

        Returns a dict with keys ``"edge"``, ``"corner"``, ``"density"``,
        ``"score"`` and ``"weights"``.  E, C and D are the raw terms, before the
        ``normalize`` step; a term whose β is 0 is returned as zeros.
        """
        x = _as_features(features)
        zeros = ops.zeros(ops.shape(x)[:3], "float32")
        edge = corner = density = zeros
        if self.beta_corner > 0 or (self.beta_edge > 0 and self.scales is None):
            gradients_and_tensor = _gradients_and_tensor(x, self.padding)
            if self.beta_corner > 0:
                corner = _geometric_mean(*gradients_and_tensor)
            if self.beta_edge > 0 and self.scales is None:
                edge = _anisotropy(*gradients_and_tensor[2:])
        if self.beta_edge > 0 and self.scales is not None:
            edge = edge_strength(x, self.scales, self.sigma0, self.padding)
        if self.beta_density > 0:
            density = feature_density(x, self.radius, self.density)

        score = zeros
        for beta, term in (
            (self.beta_edge, edge),
            (self.beta_corner, corner),
            (self.beta_density, density),
        ):
            if beta > 0:
                if self.normalize == "mean":
                    term = term / (ops.mean(term, axis=(1, 2), keepdims=True) + self.eps)
                score = score + beta * term
        total = ops.sum(score, axis=(1, 2), keepdims=True)
        num_pixels = ops.cast(ops.shape(x)[1] * ops.shape(x)[2], "float32")
        # `total <= eps`, not `total > eps`: a NaN total must stay NaN, never
        # turn into uniform weights that hide a poisoned feature map.
        weights = ops.where(
            total <= self.eps,
            1.0 / num_pixels,
            score / ops.maximum(total, self.eps),
        )
        return {
            "edge": edge,
            "corner": corner,
            "density": density,
            "score": score,
            "weights": weights,
        }

    def call(self, features):
        return self.terms(features)["weights"]

    def get_config(self):
        config = super().get_config()
        config.update(
            beta_edge=self.beta_edge,
            beta_corner=self.beta_corner,
            beta_density=self.beta_density,
            scales=self.scales,
            sigma0=self.sigma0,
            radius=self.radius,
            density=self.density,
            normalize=self.normalize,
            eps=self.eps,
            padding=self.padding,
        )
        return config
