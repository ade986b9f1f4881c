"""The eigen terms of the structure map: E = λ1 − λ2 of the structure tensor,
single- or multi-scale (Eq. 19–21), and C = sqrt(λ1·λ2) (Eq. 22)."""

import math

import numpy as np
from keras import ops

from keras_sard.structure.filters import (
    DEFAULT_PADDING,
    FLOAT32_RESOLUTION,
    as_features,
    gaussian_smooth,
    gradients_and_tensor,
    structure_tensor,
)

# σ of the multi-scale E (feature-map pixels) and σ0 of its weights exp(−σ/σ0);
# scales=None is the single-scale E.
DEFAULT_SCALES = (1.0, 2.0, 4.0, 8.0)
DEFAULT_SIGMA0 = 4.0


def anisotropy(jxx, jxy, jyy):
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


def geometric_mean(gx, gy, jxx, jxy, jyy):
    """C = sqrt(λ1·λ2) (Eq. 19), with λ2 from `_minor_eigenvalue`."""
    minor, major = _minor_eigenvalue(gx, gy, jxx, jxy, jyy)
    return ops.sqrt(ops.maximum(major * minor, 0.0))


def validate_scales(scales, sigma0):
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
    scales = validate_scales(scales, sigma0)
    if scales is None:
        return anisotropy(*structure_tensor(features, padding))
    x = as_features(features)
    if padding != "zero":
        # Under reflection a constant added to a channel changes no gradient:
        # take each image's first pixel off, so a constant map is exactly 0
        # before the blur, whose rows sum to 1 only up to rounding.
        x = x - x[:, :1, :1, :]
    total = 0.0
    for sigma in scales:
        smooth = gaussian_smooth(x, sigma, padding)
        e_sigma = anisotropy(*structure_tensor(smooth, padding))
        total = total + math.exp(-sigma / sigma0) * e_sigma
    return total


def corner_strength(features, padding=DEFAULT_PADDING):
    """The corner/junction term C = sqrt(λ1·λ2) (Eq. 19), single-scale;
    `padding` as `sobel_gradients`.

    Returns:
        (B, H, W) float32.
    """
    return geometric_mean(*gradients_and_tensor(features, padding))
