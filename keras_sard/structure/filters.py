"""Filters on feature maps for the structure map: padding past the border,
Sobel derivatives, Gaussian smoothing and the structure tensor J (Eq. 16)."""

import math

import numpy as np
from keras import ops

from keras_sard.validation import check_choice

# Relative size below which float32 cannot tell a term from 0: λ2 against λ1,
# D against the image's largest feature norm.  Such values are set to 0, since
# normalize="mean" would otherwise blow their round-off up into weights.
FLOAT32_RESOLUTION = 1e-6
# How the Sobel and Gaussian filters see beyond the border, in NumPy's names
# (`np.pad(mode=...)`): "symmetric" (the default; the edge pixel repeated,
# SciPy's mode="reflect"), "reflect" (the edge pixel not repeated, SciPy's
# mode="mirror"), or "zero".  Both reflections repeat where the padding is
# wider than the map, as np.pad does.
PADDINGS = ("symmetric", "reflect", "zero")
DEFAULT_PADDING = "symmetric"

# ----------------------------------------------------------------------------
# Validation and padding
# ----------------------------------------------------------------------------


def as_features(features, name="features"):
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


def validate_padding(padding):
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


def pad(x, pad_h, pad_w, padding):
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
    x = as_features(features)
    p = pad(x, 1, 1, validate_padding(padding))
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
    validate_padding(padding)
    if not sigma > 0:
        raise ValueError(f"`sigma` must be > 0; got {sigma}.")
    x = as_features(features)
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
    return gradients_and_tensor(features, padding)[2:]


def gradients_and_tensor(features, padding=DEFAULT_PADDING):
    gx, gy = sobel_gradients(features, padding)
    return (
        gx,
        gy,
        ops.sum(gx * gx, axis=-1),
        ops.sum(gx * gy, axis=-1),
        ops.sum(gy * gy, axis=-1),
    )
