"""The method registry: names → losses with the paper's defaults; each trains in a Distiller."""

import keras
import numpy as np
import pytest

from helpers import tiny_batch, tiny_segmenter, to_numpy
from keras_sard import Distiller
from keras_sard.losses import ChannelWiseKD, DecoupledKD, LogitKD, MaskedGenerativeKD, SARDLoss
from keras_sard.methods import METHOD_INFO, METHODS, distillation_losses, method_label, parse_method
from references import random_features, ref_weights

LEVELS_T = ["teacher_level_1", "teacher_level_2"]
LEVELS_S = ["student_level_1", "student_level_2"]

SARD_BETAS = {
    "sard": (2.0, 1.0, 1.0),
    "sard_e": (2.0, 0.0, 0.0),
    "sard_c": (0.0, 1.0, 0.0),
    "sard_d": (0.0, 0.0, 1.0),
    "sard_ec": (2.0, 1.0, 0.0),
}


def test_methods_listed():
    assert METHODS == (
        "scratch", "kd", "cwd", "dkd", "mgd",
        "sard", "sard_uniform", "sard_e", "sard_c", "sard_d", "sard_ec",
    )


def test_registry_names_labels_and_parsing():
    assert tuple(METHOD_INFO) == METHODS
    assert all(m.name == name and m.label and m.description for name, m in METHOD_INFO.items())
    assert parse_method(" sard + kd ") == ("sard", "kd")
    assert method_label("cwd") == "CWD" and method_label("sard+kd") == "SARD + Vanilla KD"
    with pytest.raises(ValueError, match="Unknown `--methods` 'sard\\+fitnet' \\('fitnet'\\)"):
        parse_method("sard+fitnet", "--methods")


def test_paper_defaults():
    assert distillation_losses("scratch", LEVELS_T, LEVELS_S) == []
    (kd,) = distillation_losses("kd", LEVELS_T, LEVELS_S)
    assert type(kd) is LogitKD and (kd.temperature, kd.weight) == (1.0, 1.0)
    assert kd.teacher_layers is None  # logits, whatever levels were given
    (cwd,) = distillation_losses("cwd")
    assert type(cwd) is ChannelWiseKD and (cwd.temperature, cwd.weight) == (4.0, 3.0)
    (dkd,) = distillation_losses("dkd")
    assert type(dkd) is DecoupledKD
    assert (dkd.alpha, dkd.beta, dkd.temperature, dkd.weight) == (1.0, 2.0, 1.0, 1.0)
    (mgd,) = distillation_losses("mgd", LEVELS_T, LEVELS_S)
    assert type(mgd) is MaskedGenerativeKD
    assert (mgd.teacher_layers, mgd.student_layers) == (("teacher_level_2",), ("student_level_2",))
    assert (mgd.mask_ratio, mgd.weight) == (0.75, 2e-5)
    (sard,) = distillation_losses("sard", LEVELS_T, LEVELS_S)
    assert type(sard) is SARDLoss and sard.teacher_layers == tuple(LEVELS_T)
    assert (sard.feature_weight, sard.alignment_weight, sard.weighting) == (1.0, 0.5, "structure")
    (uniform,) = distillation_losses("sard_uniform", LEVELS_T, LEVELS_S)
    assert uniform.weighting == "uniform"
    names = [n for m in ("kd", "cwd", "dkd", "mgd", "sard")
             for loss in distillation_losses(m, LEVELS_T, LEVELS_S) for n in loss.term_names]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("method", sorted(SARD_BETAS))
def test_sard_ablations_weight_by_their_terms(rng, method):
    """Table 3's rows: the structure map of each β setting against the reference."""
    (loss,) = distillation_losses(method, LEVELS_T, LEVELS_S, radius=2)
    structure = loss.structure
    assert (structure.beta_edge, structure.beta_corner, structure.beta_density) == SARD_BETAS[method]
    x = random_features(rng, (2, 7, 9, 3))
    w = to_numpy(structure(x))
    np.testing.assert_allclose(w, ref_weights(x, SARD_BETAS[method], radius=2), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_overrides_reach_the_loss():
    (kd,) = distillation_losses("kd", temperature=2.0, name="kd_t2")
    assert (kd.temperature, kd.name) == (2.0, "kd_t2")
    (sard,) = distillation_losses("sard_e", LEVELS_T, LEVELS_S, beta_edge=3.0, seed=4)
    assert (sard.structure.beta_edge, sard.structure.beta_corner, sard.seed) == (3.0, 0.0, 4)
    (mgd,) = distillation_losses("mgd", "t", "s", mask_ratio=0.5)
    assert mgd.teacher_layers == ("t",) and mgd.mask_ratio == 0.5


def test_combined_methods():
    losses = distillation_losses("sard+kd", LEVELS_T, LEVELS_S)
    assert [type(loss) for loss in losses] == [SARDLoss, LogitKD]
    with pytest.raises(ValueError, match="ambiguous.*once per method"):
        distillation_losses("sard+kd", LEVELS_T, LEVELS_S, seed=0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distillation_losses("fitnet"), "Unknown `method` 'fitnet'.*'scratch', 'kd', 'cwd'"),
        (lambda: distillation_losses("sard+fitnet", LEVELS_T, LEVELS_S), "'fitnet'"),
        (lambda: distillation_losses(None), "`method`"),
        (lambda: distillation_losses("sard"), "`teacher_layers` and\\s+`student_layers`"),
        (lambda: distillation_losses("mgd", LEVELS_T, LEVELS_S[:1]), "same number"),
        (lambda: distillation_losses("scratch", temperature=2.0), "'scratch'"),
    ],
)
def test_bad_requests(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_every_method_trains_in_one_distiller(tmp_path, rng):
    """One Distiller with every baseline at once (one compiled step, to keep
    the suite cheap; test_distiller trains SARD, whose ablations differ only in
    the β tested above): each term is logged and finite, the student and MGD's
    aligner and generator train, and saving keeps them and MGD's mask stream."""
    losses = distillation_losses("kd+cwd+dkd") + distillation_losses("mgd", LEVELS_T, LEVELS_S, seed=0)
    distiller = Distiller(
        tiny_segmenter("teacher", 8, num_classes=3), tiny_segmenter("student", 4, num_classes=3), losses
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    own = [v for loss in losses for v in loss.trainable_variables]
    assert {v.path.split("/")[1] for v in losses[3].trainable_variables} == {
        "align_level_0", "generator_level_0"
    }
    before = [to_numpy(v).copy() for v in own + distiller.student.trainable_variables]
    x, y = tiny_batch(rng, n=4, num_classes=3)
    history = distiller.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    for name in ["loss", "task_loss", "kd", "cwd", "dkd", "mgd"]:
        assert np.isfinite(history[name][-1]) and history[name][-1] > 0, name
    for old, variable in zip(before, own + distiller.student.trainable_variables):
        assert np.any(old != to_numpy(variable)), variable.path

    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    mgd, loaded_mgd = losses[3], loaded.distillation_losses[3]
    for saved, variable in zip(loaded_mgd.variables, mgd.variables):
        np.testing.assert_array_equal(to_numpy(saved), to_numpy(variable), err_msg=variable.path)
    # the mask stream resumes where it was (test_baselines: same state, same loss)
    state = to_numpy(mgd.seed_generator.state)
    assert np.any(state != to_numpy(keras.random.SeedGenerator(0).state))
    np.testing.assert_array_equal(to_numpy(loaded_mgd.seed_generator.state), state)
