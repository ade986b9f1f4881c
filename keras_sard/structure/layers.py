"""The structure map's Keras layers: E, C, D and W = S / ΣS (Eq. 23–24)."""

import math

import keras
import numpy as np
from keras import ops

from keras_sard.structure.density import DENSITY_METHODS, feature_density, validate_radius
from keras_sard.structure.edges import (
    DEFAULT_SCALES,
    DEFAULT_SIGMA0,
    anisotropy,
    corner_strength,
    edge_strength,
    geometric_mean,
    validate_scales,
)
from keras_sard.structure.filters import (
    DEFAULT_PADDING,
    as_features,
    gradients_and_tensor,
    validate_padding,
)
from keras_sard.validation import check_choice

NORMALIZATIONS = ("mean", None)


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
        self.scales = validate_scales(scales, sigma0)
        self.sigma0 = float(sigma0)
        self.padding = validate_padding(padding)

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
        self.padding = validate_padding(padding)

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
        self.radius = validate_radius(radius)
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
        self.scales = validate_scales(scales, sigma0)
        self.sigma0 = float(sigma0)
        self.radius = validate_radius(radius)
        self.density = density
        self.normalize = normalize
        self.eps = float(eps)
        self.padding = validate_padding(padding)

    def terms(self, features):
        """E, C, D, the score S and the weights W, each (B, H, W) float32.

        Returns a dict with keys ``"edge"``, ``"corner"``, ``"density"``,
        ``"score"`` and ``"weights"``.  E, C and D are the raw terms, before the
        ``normalize`` step; a term whose β is 0 is returned as zeros.
        """
        x = as_features(features)
        zeros = ops.zeros(ops.shape(x)[:3], "float32")
        edge = corner = density = zeros
        if self.beta_corner > 0 or (self.beta_edge > 0 and self.scales is None):
            tensor_terms = gradients_and_tensor(x, self.padding)
            if self.beta_corner > 0:
                corner = geometric_mean(*tensor_terms)
            if self.beta_edge > 0 and self.scales is None:
                edge = anisotropy(*tensor_terms[2:])
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
