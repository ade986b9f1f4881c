"""keras_sard.structure against independent NumPy/SciPy references."""

import math

import keras
import numpy as np
import pytest
from scipy import ndimage

from helpers import assert_maps_close, to_numpy
from keras_sard import structure
from keras_sard.structure.filters import pad
from keras_sard.structure import (
    CornerStrength,
    EdgeStrength,
    FeatureDensity,
    StructureWeights,
)

from references import (
    DEFAULT_PADDING,
    DEFAULT_SCALES,
    NUMPY_MODES,
    PADDINGS,
    SCIPY_MODES,
    random_features,
    ref_density,
    ref_eigen_terms,
    ref_gradients,
    ref_major_eigenvalue,
    ref_multiscale_edge,
    ref_smooth,
    ref_weights,
)

SHAPES = [(2, 9, 11, 5), (1, 16, 16, 3), (3, 7, 5, 8), (1, 13, 10, 1)]


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_sobel_matches_scipy(rng, shape, padding):
    x = random_features(rng, shape)
    gx, gy = structure.sobel_gradients(x, padding=padding)
    rgx, rgy = ref_gradients(x, padding)
    assert_maps_close(gx, rgx)
    assert_maps_close(gy, rgy)


def test_sobel_defaults_to_edge_repeating_padding(rng):
    x = random_features(rng, (1, 6, 7, 2))
    for ours, theirs in zip(structure.sobel_gradients(x), ref_gradients(x, "symmetric")):
        assert_maps_close(ours, theirs)


def test_sobel_is_a_per_pixel_derivative():
    ramp = np.tile(np.arange(10, dtype="float32")[None, :], (8, 1))  # slope 1 along width
    gx, gy = structure.sobel_gradients(ramp[None, :, :, None] * 3.0)
    np.testing.assert_allclose(to_numpy(gx)[0, :, 1:-1, 0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(gy), 0.0, atol=1e-6)
    # Symmetric padding (the edge repeated): the border derivative is the
    # one-sided difference, half the central one, never an invented edge.
    np.testing.assert_allclose(to_numpy(gx)[0, :, 0, 0], 1.5, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(gx)[0, :, -1, 0], 1.5, rtol=1e-6)
    # Reflect padding (the edge not repeated): it is 0.
    gx, _ = structure.sobel_gradients(ramp[None, :, :, None] * 3.0, padding="reflect")
    np.testing.assert_allclose(to_numpy(gx)[0, :, [0, -1], 0], 0.0, atol=1e-6)


@pytest.mark.parametrize("padding", ["symmetric", "reflect", "zero"])
@pytest.mark.parametrize("size", [1, 2, 3, 6])
def test_padding_matches_np_pad_even_wider_than_the_map(padding, size):
    # Pads of up to 4× the axis: reflected again and again, as np.pad does.
    x = np.random.default_rng(size).normal(size=(1, size, size + 1, 2)).astype("float32")
    for pad_h, pad_w in ((1, 1), (2, 3), (4 * size, 3 * size + 1)):
        p = np.pad(x, [(0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)], mode=NUMPY_MODES[padding])
        np.testing.assert_array_equal(to_numpy(pad(x, pad_h, pad_w, padding)), p)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(2, 9, 11, 3), (1, 6, 5, 2)])
def test_each_padding_matches_scipy(rng, shape, padding):
    # Every [choice] of padding, one argument away, everywhere E and C filter.
    x = random_features(rng, shape)
    ref_e, ref_c = ref_eigen_terms(x, padding)
    scale = ref_major_eigenvalue(x, padding).max()
    assert_maps_close(EdgeStrength(scales=None, padding=padding)(x), ref_e)
    assert_maps_close(CornerStrength(padding=padding)(x), ref_c, scale=scale)
    scales = (1, 2)
    assert_maps_close(structure.edge_strength(x, scales, padding=padding),
                      ref_multiscale_edge(x, scales, 4.0, padding))
    assert_maps_close(structure.gaussian_smooth(x, 2.0, padding=padding),
                      ref_smooth(x, 2.0, padding))
    for scales in (None, (1, 2, 4, 8)):  # single- and multi-scale E
        w = StructureWeights(radius=2, scales=scales, padding=padding)(x)
        assert_maps_close(w, ref_weights(x, radius=2, scales=scales, padding=padding))


@pytest.mark.parametrize("padding", ["symmetric", "reflect"])
def test_zero_padding_invents_border_edges_reflections_do_not(padding):
    x = np.ones((1, 8, 8, 2), "float32")
    zero = to_numpy(structure.edge_strength(x, scales=None, padding="zero"))[0]
    reflected = to_numpy(structure.edge_strength(x, scales=None, padding=padding))[0]
    np.testing.assert_array_equal(reflected, 0.0)
    np.testing.assert_array_equal(to_numpy(structure.edge_strength(x, padding=padding)), 0.0)
    assert np.all(zero[0] > 0) and np.all(zero[:, -1] > 0)  # the frame lights up
    np.testing.assert_array_equal(zero[2:-2, 2:-2], 0.0)


def outer_ring(map_2d):
    return np.concatenate([map_2d[0], map_2d[-1], map_2d[1:-1, 0], map_2d[1:-1, -1]])


def test_corner_lives_on_the_border_with_the_default_padding(rng):
    # Spec §1.1 (revised): NumPy's reflect makes the derivative across the
    # border 0, so J is rank 1 and C = 0 on the whole outer ring; repeating
    # the edge pixel keeps C there.
    x = random_features(rng, (2, 16, 16, 4))
    default = to_numpy(CornerStrength()(x))
    reflect = to_numpy(CornerStrength(padding="reflect")(x))
    for image in range(2):
        ring = outer_ring(default[image])
        assert np.all(ring > 1e-3 * default[image].max()), ring.min()
        np.testing.assert_array_equal(outer_ring(reflect[image]), 0.0)
        assert np.all(reflect[image][1:-1, 1:-1] > 0)
    weights = to_numpy(StructureWeights(beta_edge=0, beta_density=0)(x))
    assert np.all(weights[:, 0] > 0) and np.all(weights[:, :, -1] > 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_edge_and_corner_match_eigvalsh(rng, shape):
    x = random_features(rng, shape)
    ref_e, ref_c = ref_eigen_terms(x)
    lam1 = ref_major_eigenvalue(x).max()
    assert_maps_close(structure.edge_strength(x, scales=None), ref_e)
    assert_maps_close(structure.corner_strength(x), ref_c, scale=lam1)
    assert_maps_close(EdgeStrength(scales=None)(x), ref_e)
    assert_maps_close(CornerStrength()(x), ref_c, scale=lam1)


def test_corner_is_accurate_on_a_pure_edge():
    # One channel: J = g gᵀ is rank-1, so λ2 = 0 and C = 0 exactly.  The literal
    # sqrt(Jxx·Jyy − Jxy²) leaves ~3e-4·λ1 of float32 noise here.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 15, 14, 1)).astype("float32")
    lam1 = ref_major_eigenvalue(x)
    c = to_numpy(structure.corner_strength(x))
    assert np.all(c <= 1e-6 * lam1.max())


@pytest.mark.parametrize("padding", ["symmetric", "reflect"])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_gaussian_matches_scipy(rng, sigma, padding):
    # scipy's own boundary modes here (not np.pad): "reflect" is NumPy's
    # symmetric, "mirror" NumPy's reflect.  The map is larger than the radius.
    x = random_features(rng, (2, 21, 19, 3))
    radius = int(math.ceil(3 * sigma))
    ref = np.empty(x.shape)
    for b in range(2):
        for c in range(3):
            ref[b, :, :, c] = ndimage.gaussian_filter(
                x[b, :, :, c].astype("float64"), sigma, mode=SCIPY_MODES[padding], radius=radius
            )
    assert_maps_close(structure.gaussian_smooth(x, sigma, padding=padding), ref)
    if padding == "symmetric":
        assert_maps_close(structure.gaussian_smooth(x, sigma), ref)  # the default


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(2, 20, 17, 4), (1, 6, 5, 3), (1, 1, 4, 2)])
def test_multiscale_edge_matches_reference(rng, shape, padding):
    # (1, 6, 5, 3) is smaller than the σ = 8 radius (24): repeated reflection.
    x = random_features(rng, shape)
    scales = (1, 2, 4, 8)
    ref = ref_multiscale_edge(x, scales, 4.0, padding)
    assert_maps_close(structure.edge_strength(x, scales=scales, sigma0=4.0, padding=padding), ref)
    assert_maps_close(EdgeStrength(scales=scales, padding=padding)(x), ref)
    ref = ref_multiscale_edge(x, (1.5, 3), 2.0, padding)
    assert_maps_close(EdgeStrength(scales=(1.5, 3), sigma0=2.0, padding=padding)(x), ref)


def test_edge_is_multiscale_by_default(rng):
    # Spec §1.4 (revised): σ ∈ (1, 2, 4, 8), σ0 = 4, the supplement's E.
    x = random_features(rng, (2, 14, 12, 3))
    ref = ref_multiscale_edge(x, DEFAULT_SCALES, 4.0, DEFAULT_PADDING)
    assert_maps_close(structure.edge_strength(x), ref)
    assert_maps_close(EdgeStrength()(x), ref)
    terms = StructureWeights(radius=2).terms(x)
    assert_maps_close(terms["edge"], ref)
    assert_maps_close(terms["corner"], ref_eigen_terms(x)[1])  # C stays single-scale
    assert StructureWeights().get_config()["scales"] == (1.0, 2.0, 4.0, 8.0)
    single = StructureWeights(radius=2, scales=None).terms(x)
    assert_maps_close(single["edge"], ref_eigen_terms(x)[0])
    assert_maps_close(single["weights"], ref_weights(x, radius=2, scales=None))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", [0, 2, 7])
def test_exact_density_matches_brute_force(rng, shape, radius):
    x = random_features(rng, shape)
    assert_maps_close(structure.feature_density(x, radius), ref_density(x, radius))


@pytest.mark.parametrize("shape", [(2, 29, 35, 6), (1, 8, 16, 3), (1, 3, 41, 2)])
@pytest.mark.parametrize("radius", [1, 7])
def test_exact_density_over_several_tiles_matches_brute_force(rng, shape, radius):
    # Maps of several 8×8 tiles, whole and partial, and windows across tiles.
    x = random_features(rng, shape)
    assert_maps_close(structure.feature_density(x, radius), ref_density(x, radius))


def test_exact_density_resolves_flat_windows_against_the_local_contrast():
    # D's distances come from ||a||² + ||b||² − 2a·b on features centred per
    # 8×8 tile, so float32 resolves them against the contrast near the tile,
    # not against the image's: a step of 1000 far away must not blur the
    # one-hot regions of contrast 1 (distance-1 errors would be ~0.1 here).
    labels = np.zeros((40, 72), int)
    labels[:, 40:56] = 1
    labels[10:30, 60:] = 2
    x = np.eye(4)[labels] + 0.01 * np.random.default_rng(0).normal(size=(40, 72, 4))
    x[:, :20, 3] = 1000.0  # the far step
    x = x[None].astype("float32")
    ours, ref = to_numpy(structure.feature_density(x, 7))[0], ref_density(x, 7)[0]
    local = ref[:, 40:]
    np.testing.assert_allclose(ours[:, 40:], local, rtol=0, atol=1e-3 * local.max())


def test_structure_maps_take_dynamic_shapes():
    # A TensorFlow graph traced with unknown batch, height and width.
    if keras.backend.backend() != "tensorflow":
        pytest.skip("dynamic shapes are a TensorFlow graph's")
    import tensorflow as tf

    for padding in PADDINGS:
        layer = StructureWeights(radius=3, padding=padding)
        traced = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3))])
        for shape in ((2, 9, 11, 3), (1, 17, 20, 3)):
            x = random_features(np.random.default_rng(0), shape)
            np.testing.assert_allclose(traced(x).numpy(), to_numpy(layer(x)), rtol=1e-6, atol=1e-9)


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
    _, ref_c = ref_eigen_terms(x)
    assert_maps_close(terms["edge"], ref_multiscale_edge(x, DEFAULT_SCALES, 4.0))
    assert_maps_close(terms["corner"], ref_c)
    assert_maps_close(terms["density"], ref_density(x, 2))
    for value in terms.values():
        assert tuple(value.shape) == (2, 10, 12)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_a_zero_beta_drops_its_term(rng):
    x = random_features(rng, (1, 9, 9, 3))
    terms = StructureWeights(beta_edge=1.0, beta_corner=0.0, beta_density=0.0).terms(x)
    ref_e = ref_multiscale_edge(x, DEFAULT_SCALES, 4.0)
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
        ({"beta_edge": 0, "beta_corner": 0.0, "beta_density": 0}, "beta_edge"),
        ({"radius": -1}, "radius"),
        ({"radius": 1.5}, "radius"),
        ({"density": "approx"}, "density"),
        ({"normalize": "max"}, "normalize"),
        ({"scales": (1, -2)}, "scales"),
        ({"eps": 0.0}, "eps"),
        ({"padding": "same"}, "padding"),
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
    for make in (EdgeStrength, CornerStrength):
        with pytest.raises(ValueError, match="`padding` must be one of"):
            make(padding="mirror")
    with pytest.raises(ValueError, match="`padding`"):
        structure.sobel_gradients(np.zeros((1, 4, 4, 1)), padding="edge")


@pytest.mark.parametrize("layer", [EdgeStrength(), CornerStrength(), FeatureDensity(), StructureWeights()])
def test_wrong_rank_names_features(layer):
    with pytest.raises(ValueError, match="`features`.*rank-4"):
        layer(np.zeros((8, 8, 3), "float32"))


@pytest.mark.parametrize(
    "layer",
    [
        EdgeStrength(scales=(1, 2), sigma0=3.0, padding="zero"),
        EdgeStrength(),  # the defaults: multi-scale, symmetric padding
        StructureWeights(radius=2),
        CornerStrength(padding="zero"),
        FeatureDensity(radius=2, method="variance"),
        StructureWeights(1.0, 0.5, 2.0, scales=(1, 4), radius=3, density="variance", normalize=None,
                         padding="zero"),
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


def test_betas_must_be_finite_and_not_all_zero_sigma0_always_checked():
    with pytest.raises(ValueError, match="`beta_edge`"):
        StructureWeights(beta_edge=float("inf"))
    with pytest.raises(ValueError, match="At least one of `beta_edge`.*uniform"):
        StructureWeights(beta_edge=0, beta_corner=0, beta_density=0)
    with pytest.raises(ValueError, match="`sigma0`"):
        EdgeStrength(sigma0=-1.0)  # unused without scales, still a wrong value


# Configs as the version before the revised defaults (spec §1.1, §1.4) wrote
# them: every argument is saved, so they keep NumPy-reflect padding and the
# single-scale E.
_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
          "registered_name": None}
OLD_STRUCTURE_WEIGHTS = {
    "module": "keras_sard.structure", "class_name": "StructureWeights",
    "config": {"name": "structure_weights", "trainable": True, "dtype": _DTYPE,
               "beta_edge": 2.0, "beta_corner": 1.0, "beta_density": 1.0, "scales": None,
               "sigma0": 4.0, "radius": 2, "density": "exact", "normalize": "mean", "eps": 1e-08,
               "padding": "reflect"},
    "registered_name": "keras_sard>StructureWeights",
}
OLD_EDGE = {
    "module": "keras_sard.structure", "class_name": "EdgeStrength",
    "config": {"name": "edge_strength", "trainable": True, "dtype": _DTYPE, "scales": None,
               "sigma0": 4.0, "padding": "reflect"},
    "registered_name": "keras_sard>EdgeStrength",
}
OLD_SARD = {
    "module": "keras_sard.losses.sard", "class_name": "SARDLoss",
    "config": {"name": "sard", "trainable": True, "dtype": _DTYPE, "teacher_layers": ["t"],
               "student_layers": ["s"], "feature_weight": 1.0, "alignment_weight": 0.5,
               "weighting": "structure", "levels": None, "teacher_projection": "identity",
               "alpha": 0.5, "hidden_channels": 128, "seed": None, "channel_reduction": "mean",
               "denoiser_input": "concat", "beta_edge": 2.0, "beta_corner": 1.0,
               "beta_density": 1.0, "scales": None, "sigma0": 4.0, "radius": 7,
               "density": "exact", "normalize": "mean", "padding": "reflect"},
    "registered_name": "keras_sard>SARDLoss",
}


def test_configs_saved_before_the_new_defaults_load_unchanged(tmp_path, rng):
    import json
    import zipfile

    x = random_features(rng, (2, 12, 10, 4))
    expected = ref_weights(x, radius=2, scales=None, padding="reflect")
    old = keras.saving.deserialize_keras_object(OLD_STRUCTURE_WEIGHTS)
    assert (old.padding, old.scales) == ("reflect", None)
    assert_maps_close(old(x), expected)
    edge = keras.saving.deserialize_keras_object(OLD_EDGE)
    assert_maps_close(edge(x), ref_eigen_terms(x, "reflect")[0])
    sard = keras.saving.deserialize_keras_object(OLD_SARD)
    assert (sard.structure.padding, sard.structure.scales) == ("reflect", None)

    # A .keras file whose config.json holds the old layer config.
    inputs = keras.Input((12, 10, 4))
    path = tmp_path / "new.keras"
    keras.Model(inputs, StructureWeights(radius=2)(inputs)).save(path)
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as new, zipfile.ZipFile(old_path, "w") as written:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = config["config"]["layers"][1]
                assert layer["class_name"] == "StructureWeights"
                layer.update({k: v for k, v in OLD_STRUCTURE_WEIGHTS.items() if k != "config"})
                layer["config"] = OLD_STRUCTURE_WEIGHTS["config"]
                data = json.dumps(config)
            written.writestr(item, data)
    loaded = keras.saving.load_model(old_path)
    assert loaded.layers[-1].get_config()["padding"] == "reflect"
    assert_maps_close(loaded(x), expected)
