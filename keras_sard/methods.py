"""Distillation methods by name, with the paper's defaults (spec §2–3, Table 3).

Scripts say ``method="cwd"`` and get the losses a `keras_sard.Distiller`
needs::

    distiller = Distiller(teacher, student,
                          distillation_losses(method, teacher_levels, student_levels))

=================  ==========================================================
``"scratch"``      no distillation: the student trains on the task loss alone
``"kd"``           `LogitKD` (T = 1, weight 1)
``"cwd"``          `ChannelWiseKD` (τ = 4, weight 3)
``"dkd"``          `DecoupledKD` (α = 1, β = 2, T = 1; needs labels)
``"mgd"``          `MaskedGenerativeKD` on the last level (p = 0.75, weight 2e-5)
``"sard"``         `SARDLoss` on every level (βe = 2, βc = 1, βd = 1)
``"sard_uniform"`` SARD with uniform weights W = 1/N (Table 3, "Uniform SARD")
``"sard_e"``       SARD, edge term only (βc = βd = 0)
``"sard_c"``       SARD, corner term only (βe = βd = 0)
``"sard_d"``       SARD, density term only (βe = βc = 0)
``"sard_ec"``      SARD, edge and corner terms (βd = 0)
=================  ==========================================================

Methods combine with ``+`` (``"sard+kd"``: both losses, each with its
defaults).
"""

from keras_sard.losses import (
    ChannelWiseKD,
    DecoupledKD,
    LogitKD,
    MaskedGenerativeKD,
    SARDLoss,
)

__all__ = ["METHODS", "distillation_losses"]

# The structure-map settings of SARD's ablation rows (Table 3).
_SARD_VARIANTS = {
    "sard": {},
    "sard_uniform": {"weighting": "uniform"},
    "sard_e": {"beta_corner": 0.0, "beta_density": 0.0},
    "sard_c": {"beta_edge": 0.0, "beta_density": 0.0},
    "sard_d": {"beta_edge": 0.0, "beta_corner": 0.0},
    "sard_ec": {"beta_density": 0.0},
}
_LOGIT_METHODS = {"kd": LogitKD, "cwd": ChannelWiseKD, "dkd": DecoupledKD}

METHODS = ("scratch", "kd", "cwd", "dkd", "mgd", *_SARD_VARIANTS)


def _feature_layers(method, teacher_layers, student_layers):
    if teacher_layers is None or student_layers is None:
        raise ValueError(
            f"Method {method!r} distils feature maps: pass `teacher_layers` and "
            "`student_layers`, the names of the backbone levels the decoder reads "
            "(strides 4, 8, 16, 32), one list per model."
        )
    teacher_layers = [teacher_layers] if isinstance(teacher_layers, str) else list(teacher_layers)
    student_layers = [student_layers] if isinstance(student_layers, str) else list(student_layers)
    if not teacher_layers or len(teacher_layers) != len(student_layers):
        raise ValueError(
            "`teacher_layers` and `student_layers` must list the same number (≥ 1) of "
            f"levels; got {teacher_layers!r} and {student_layers!r}."
        )
    return teacher_layers, student_layers


def distillation_losses(method, teacher_layers=None, student_layers=None, **overrides):
    """The distillation losses of `method`, with the paper's defaults.

    Args:
        method: one of `METHODS`, or several joined by ``+`` (``"sard+kd"``).
        teacher_layers, student_layers: the tapped backbone levels of each
            model, shallowest first (the four levels of strides 4–32 in the
            paper).  SARD uses every level, MGD the last; the logit methods
            read the models' outputs and ignore these.
        **overrides: constructor arguments of the method's loss, replacing
            the defaults (e.g. ``temperature=2.0`` for ``"kd"``, ``seed=0``
            or ``radius=3`` for ``"sard"``).  For a combined method build
            each part with its own call and add the lists.

    Returns:
        A list of `keras_sard.losses.DistillationLoss` (empty for ``"scratch"``).

    Example::

        from keras_sard.methods import distillation_losses
        losses = distillation_losses(
            "sard_e", ["t_level_1", "t_level_2"], ["s_level_1", "s_level_2"], seed=0
        )
        [type(loss).__name__ for loss in losses]  # ['SARDLoss']
    """
    if not isinstance(method, str):
        raise ValueError(f"`method` must be a string, one of {METHODS}; got {method!r}.")
    parts = [part.strip() for part in method.split("+")]
    unknown = [part for part in parts if part not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown `method` {method!r} ({', '.join(repr(p) for p in unknown)}); "
            f"the known methods are {METHODS}, combined with '+'."
        )
    if len(parts) > 1:
        if overrides:
            raise ValueError(
                f"Overrides {sorted(overrides)} would be ambiguous for the combined method "
                f"{method!r}: call distillation_losses once per method and add the lists."
            )
        return [
            loss
            for part in parts
            for loss in distillation_losses(part, teacher_layers, student_layers)
        ]

    if method == "scratch":
        if overrides:
            raise ValueError(
                f"Method 'scratch' has no distillation loss to pass {sorted(overrides)} to."
            )
        return []
    if method in _LOGIT_METHODS:
        return [_LOGIT_METHODS[method](**overrides)]
    teacher_layers, student_layers = _feature_layers(method, teacher_layers, student_layers)
    if method == "mgd":
        return [MaskedGenerativeKD(teacher_layers[-1:], student_layers[-1:], **overrides)]
    return [SARDLoss(teacher_layers, student_layers, **{**_SARD_VARIANTS[method], **overrides})]
