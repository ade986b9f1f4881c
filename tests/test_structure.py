"""keras_sard.structure against independent NumPy/SciPy references."""

import math

import keras
import numpy as np
import pytest
from scipy import ndimage

from conftest import to_numpy
from keras_sard import structure
from keras_sard.structure import (
    CornerStrength,
    EdgeStrength,
    FeatureDensity,
    StructureWeights,
)

SHAPES = [(2, 9, 11, 5), (1, 16, 16, 3), (3, 7, 5, 8), (1, 13, 10, 1)]


def assert_maps_close(actual, expected, rtol=1e-5, scale=None):
    """rtol on each value, with an atol of 1e-6 of the map's own scale (so a
    value that should be ~0 is judged against the map, not against itself).
    `scale` overrides that scale where the map's natural unit is another's
    (C is judged against λ1: with one channel C is 0 everywhere)."""
    actual = to_numpy(actual).astype("float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape
    if scale is None:
        scale = np.abs(expected).max()
    atol = 1e-6 * max(scale, 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def random_features(rng, shape):
    # A smooth part plus noise, so edges, corners and flat parts all occur.
    b, h, w, c = shape
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    smooth = np.stack(
        [np.sin(0.7 * xx + k) * np.cos(0.5 * yy - k) for k in range(c)], axis=-1
    )
    return (smooth[None] + 0.5 * rng.normal(size=shape)).astype("float32")


# ----------------------------------------------------------------- references


def ref_gradients(x):
    """scipy Sobel per 2-D slice; mirror = NumPy's reflect; scaled by 1/8."""
    x = x.astype("float64")
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[3]):
            gx[b, :, :, c] = ndimage.sobel(x[b, :, :, c], axis=1, mode="mirror") / 8
            gy[b, :, :, c] = ndimage.sobel(x[b, :, :, c], axis=0, mode="mirror") / 8
    return gx, gy


def ref_eigen_terms(x):
    """E = λ1 − λ2 and C = sqrt(λ1·λ2) from np.linalg.eigvalsh of each J."""
    gx, gy = ref_gradients(x)
    j = np.empty(x.shape[:3] + (2, 2))
    j[..., 0, 0] = (gx * gx).sum(-1)
    j[..., 0, 1] = j[..., 1, 0] = (gx * gy).sum(-1)
    j[..., 1, 1] = (gy * gy).sum(-1)
    lam = np.linalg.eigvalsh(j)  # ascending: λ2, λ1
    lam2, lam1 = lam[..., 0], lam[..., 1]
    # The documented rule: λ2 ≤ 1e-6·λ1 is taken as 0 (float32 cannot resolve it).
    floored = np.where(lam2 <= structure.FLOAT32_RESOLUTION * lam1, 0.0, lam2)
    return lam1 - lam2, np.sqrt(np.clip(lam1 * floored, 0, None))


def ref_major_eigenvalue(x):
    gx, gy = ref_gradients(x)
    jxx, jxy, jyy = (gx * gx).sum(-1), (gx * gy).sum(-1), (gy * gy).sum(-1)
    return np.linalg.eigvalsh(np.stack([np.stack([jxx, jxy], -1), np.stack([jxy, jyy], -1)], -2))[..., 1]


def ref_smooth(x, sigma):
    """Gaussian of radius ceil(3σ) on a NumPy reflect-padded map (repeated
    reflection where the map is smaller than the radius)."""
    radius = int(math.ceil(3 * sigma))
    out = np.empty(x.shape, dtype="float64")
    for b in range(x.shape[0]):
        for c in range(x.shape[3]):
            p = np.pad(x[b, :, :, c].astype("float64"), radius, mode="reflect")
            p = ndimage.gaussian_filter(p, sigma, mode="constant", radius=radius)
            out[b, :, :, c] = p[radius:-radius, radius:-radius]
    return out


def ref_multiscale_edge(x, scales, sigma0):
    return sum(
        math.exp(-s / sigma0) * ref_eigen_terms(ref_smooth(x, s))[0] for s in scales
    )


def ref_density(x, radius, method="exact"):
    """Brute force over pixels and their in-bounds windows."""
    x = x.astype("float64")
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w))
    for i in range(h):
        for j in range(w):
            win = x[:, max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
            win = win.reshape(b, -1, x.shape[3])
            mu = win.mean(axis=1, keepdims=True)
            if method == "exact":
                out[:, i, j] = np.linalg.norm(win - mu, axis=-1).mean(axis=1)
            else:
                spread = (win**2).sum(-1).mean(1) - (mu[:, 0] ** 2).sum(-1)
                out[:, i, j] = np.sqrt(np.clip(spread, 0, None))
    return out


def ref_weights(x, beta=(2.0, 1.0, 1.0), radius=7, normalize="mean", scales=None, eps=1e-8):
    e, c = ref_eigen_terms(x)
    if scales is not None:
        e = ref_multiscale_edge(x, scales, 4.0)
    d = ref_density(x, radius)
    score = 0.0
    for bt, term in zip(beta, (e, c, d)):
        if normalize == "mean":
            term = term / (term.mean(axis=(1, 2), keepdims=True) + eps)
        score = score + bt * term
    return score / score.sum(axis=(1, 2), keepdims=True)


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("shape", SHAPES)
def test_sobel_matches_scipy(rng, shape):
    x = random_features(rng, shape)
    gx, gy = structure.sobel_gradients(x)
    rgx, rgy = ref_gradients(x)
    assert_maps_close(gx, rgx)
    assert_maps_close(gy, rgy)


def test_sobel_is_a_per_pixel_derivative():
    ramp = np.tile(np.arange(10, dtype="float32")[None, :], (8, 1))  # slope 1 along width
    gx, gy = structure.sobel_gradients(ramp[None, :, :, None] * 3.0)
    np.testing.assert_allclose(to_numpy(gx)[0, :, 1:-1, 0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(gy), 0.0, atol=1e-6)
    # Reflect padding: the border derivative is 0, not an invented edge.
    np.testing.assert_allclose(to_numpy(gx)[0, :, 0, 0], 0.0, atol=1e-6)


def test_reflect_padding_of_a_single_pixel_axis():
    x = np.random.default_rng(1).normal(size=(1, 1, 6, 2)).astype("float32")
    p = np.pad(x, [(0, 0), (2, 2), (3, 3), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(to_numpy(structure._reflect_pad(x, 2, 3)), p)


@pytest.mark.parametrize("shape", SHAPES)
def test_edge_and_corner_match_eigvalsh(rng, shape):
    x = random_features(rng, shape)
    ref_e, ref_c = ref_eigen_terms(x)
    lam1 = ref_major_eigenvalue(x).max()
    assert_maps_close(structure.edge_strength(x), ref_e)
    assert_maps_close(structure.corner_strength(x), ref_c, scale=lam1)
    assert_maps_close(EdgeStrength()(x), ref_e)
    assert_maps_close(CornerStrength()(x), ref_c, scale=lam1)


def test_corner_is_accurate_on_a_pure_edge():
    # One channel: J = g gᵀ is rank-1, so λ2 = 0 and C = 0 exactly.  The literal
    # sqrt(Jxx·Jyy − Jxy²) leaves ~3e-4·λ1 of float32 noise here.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 15, 14, 1)).astype("float32")
    lam1 = ref_major_eigenvalue(x)
    c = to_numpy(structure.corner_strength(x))
    assert np.all(c <= 1e-6 * lam1.max())


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_gaussian_matches_scipy(rng, sigma):
    x = random_features(rng, (2, 21, 19, 3))
    radius = int(math.ceil(3 * sigma))
    ref = np.empty(x.shape)
    for b in range(2):
        for c in range(3):
            ref[b, :, :, c] = ndimage.gaussian_filter(
                x[b, :, :, c].astype("float64"), sigma, mode="mirror", radius=radius
            )
    assert_maps_close(structure.gaussian_smooth(x, sigma), ref)


@pytest.mark.parametrize("shape", [(2, 20, 17, 4), (1, 6, 5, 3)])
def test_multiscale_edge_matches_reference(rng, shape):
    # (1, 6, 5, 3) is smaller than the σ = 8 radius (24): repeated reflection.
    x = random_features(rng, shape)
    scales = (1, 2, 4, 8)
    ref = ref_multiscale_edge(x, scales, 4.0)
    assert_maps_close(structure.edge_strength(x, scales=scales, sigma0=4.0), ref)
    assert_maps_close(EdgeStrength(scales=scales)(x), ref)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", [0, 2, 7])
def test_exact_density_matches_brute_force(rng, shape, radius):
    x = random_features(rng, shape)
    assert_maps_close(structure.feature_density(x, radius), ref_density(x, radius))


@pytest.mark.parametrize("shape", SHAPES)
def test_variance_density_matches_brute_force_and_bounds_exact(rng, shape):
    x = random_features(rng, shape)
    variance = structure.feature_density(x, 3, method="variance")
    assert_maps_close(variance, ref_density(x, 3, "variance"))
    exact = to_numpy(structure.feature_density(x, 3))
    assert np.all(to_numpy(variance) >= exact * (1 - 1e-5))  # Jensen


@pytest.mark.parametrize("shape", SHAPES)
def test_weights_match_reference(rng, shape):
    x = random_features(rng, shape)
    w = StructureWeights()(x)
    assert_maps_close(w, ref_weights(x))
    np.testing.assert_allclose(to_numpy(w).sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_weights_options_match_reference(rng):
    x = random_features(rng, (2, 12, 9, 4))
    beta = (1.5, 0.5, 3.0)
    w = StructureWeights(*beta, radius=2, normalize=None, scales=(1, 2))(x)
    assert_maps_close(w, ref_weights(x, beta, radius=2, normalize=None, scales=(1, 2)))


def test_terms_are_inspectable(rng):
    x = random_features(rng, (2, 10, 12, 3))
    terms = StructureWeights(radius=2).terms(x)
    assert set(terms) == {"edge", "corner", "density", "score", "weights"}
    ref_e, ref_c = ref_eigen_terms(x)
    assert_maps_close(terms["edge"], ref_e)
    assert_maps_close(terms["corner"], ref_c)
    assert_maps_close(terms["density"], ref_density(x, 2))
    for value in terms.values():
        assert tuple(value.shape) == (2, 10, 12)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_a_zero_beta_drops_its_term(rng):
    x = random_features(rng, (1, 9, 9, 3))
    terms = StructureWeights(beta_edge=1.0, beta_corner=0.0, beta_density=0.0).terms(x)
    ref_e, _ = ref_eigen_terms(x)
    assert_maps_close(terms["weights"], ref_e / ref_e.sum())
    assert np.all(to_numpy(terms["density"]) == 0)


@pytest.mark.parametrize("normalize", ["mean", None])
@pytest.mark.parametrize("density", ["exact", "variance"])
def test_constant_map_gives_uniform_weights(normalize, density):
    # Per-channel constants that binary floats cannot hold exactly (0.1, ...).
    x = np.broadcast_to(np.array([0.1, -3.7, 1e3, 0.3], "float32"), (2, 7, 9, 4))
    w = to_numpy(StructureWeights(density=density, normalize=normalize, scales=(1, 2))(x))
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, 1.0 / 63, rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_propagate_to_that_image_only(rng, bad):
    x = random_features(rng, (2, 8, 8, 3))
    x[0, 4, 4, 1] = bad
    w = to_numpy(StructureWeights(radius=2)(x))
    assert np.all(np.isnan(w[0]))
    assert np.all(np.isfinite(w[1]))
    assert_maps_close(w[1:], ref_weights(x[1:], radius=2))


def test_weights_are_float32_and_gradient_free_under_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = StructureWeights(radius=1)
        x = keras.ops.cast(random_features(rng, (1, 8, 8, 3)), "float16")
        w = layer(x)
        assert keras.backend.standardize_dtype(w.dtype) == "float32"
        assert layer.dtype_policy.name == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"beta_edge": -1.0}, "beta_edge"),
        ({"beta_corner": -0.1}, "beta_corner"),
        ({"beta_density": -2}, "beta_density"),
        ({"radius": -1}, "radius"),
        ({"radius": 1.5}, "radius"),
        ({"density": "approx"}, "density"),
        ({"normalize": "max"}, "normalize"),
        ({"scales": (1, -2)}, "scales"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        StructureWeights(**kwargs)


def test_bad_layer_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`radius`"):
        FeatureDensity(radius=-3)
    with pytest.raises(ValueError, match="`method`"):
        FeatureDensity(method="fast")
    with pytest.raises(ValueError, match="`sigma0`"):
        EdgeStrength(scales=(1,), sigma0=0)


@pytest.mark.parametrize("layer", [EdgeStrength(), CornerStrength(), FeatureDensity(), StructureWeights()])
def test_wrong_rank_names_features(layer):
    with pytest.raises(ValueError, match="`features`.*rank-4"):
        layer(np.zeros((8, 8, 3), "float32"))


@pytest.mark.parametrize(
    "layer",
    [
        EdgeStrength(scales=(1, 2), sigma0=3.0),
        CornerStrength(),
        FeatureDensity(radius=2, method="variance"),
        StructureWeights(1.0, 0.5, 2.0, scales=(1, 4), radius=3, density="variance", normalize=None),
    ],
)
def test_config_and_keras_file_round_trip(tmp_path, rng, layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input((12, 10, 4))
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "structure.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = random_features(rng, (2, 12, 10, 4))
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    assert loaded.layers[-1].get_config() == layer.get_config()
