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
defaults).  `METHOD_INFO` is the one registry of these names: the losses, the
row labels of the paper's tables and the command line's help all come from
it, and `parse_method` is the one check of a method name.  This module does
not import Keras until a loss is built.

>>> parse_method("sard+kd")
('sard', 'kd')
>>> method_label("sard+kd")
'SARD + Vanilla KD'
"""

import dataclasses
import importlib
from typing import Mapping, Optional

__all__ = ["METHODS", "METHOD_INFO", "TABLE_METHODS", "Method", "distillation_losses",
           "method_label", "parse_method"]


@dataclasses.dataclass(frozen=True)
class Method:
    """One distillation method of the registry.

    Attributes:
        name: what scripts and the command line call it (``"cwd"``).
        label: its row in the paper's tables (``"CWD"``).
        description: one line for the command line's help.
        loss: the class name in `keras_sard.losses` of its loss, or None (no
            distillation loss: ``"scratch"``).
        reads: ``"logits"`` (the models' outputs), ``"last"`` (the last
            tapped level) or ``"levels"`` (every tapped level).
        defaults: constructor arguments of the loss that differ from the
            class's own defaults (the ablations of Table 3).
    """

    name: str
    label: str
    description: str
    loss: Optional[str] = None
    reads: str = "logits"
    defaults: Mapping = dataclasses.field(default_factory=dict)

    def build(self, teacher_layers=None, student_layers=None, **overrides):
        """This method's losses (a list), `overrides` replacing the defaults."""
        if self.loss is None:
            if overrides:
                raise ValueError(
                    f"Method {self.name!r} has no distillation loss to pass {sorted(overrides)} to."
                )
            return []
        loss_class = getattr(importlib.import_module("keras_sard.losses"), self.loss)
        arguments = {**self.defaults, **overrides}
        if self.reads == "logits":
            return [loss_class(**arguments)]
        teacher_layers, student_layers = _feature_layers(self.name, teacher_layers, student_layers)
        if self.reads == "last":
            teacher_layers, student_layers = teacher_layers[-1:], student_layers[-1:]
        return [loss_class(teacher_layers, student_layers, **arguments)]


def _sard(name, label, description, **defaults):
    return Method(name, label, description, "SARDLoss", "levels", defaults)


METHOD_INFO = {
    method.name: method
    for method in (
        Method("scratch", "Student (scratch)",
               "no distillation: the student trains on the task loss alone"),
        Method("kd", "Vanilla KD", "logit KD, T = 1 (LogitKD)", "LogitKD"),
        Method("cwd", "CWD", "channel-wise KD, τ = 4, weight 3 (ChannelWiseKD)",
               "ChannelWiseKD"),
        Method("dkd", "DKD", "decoupled KD, α = 1, β = 2 (DecoupledKD; needs labels)",
               "DecoupledKD"),
        Method("mgd", "MGD", "masked generative KD on the last level (MaskedGenerativeKD)",
               "MaskedGenerativeKD", "last"),
        _sard("sard", "SARD", "SARD on every level, βe = 2, βc = 1, βd = 1 (SARDLoss)"),
        _sard("sard_uniform", "Uniform SARD", "SARD with uniform weights W = 1/N",
              weighting="uniform"),
        _sard("sard_e", "SARD (E only)", "SARD, edge term only",
              beta_corner=0.0, beta_density=0.0),
        _sard("sard_c", "SARD (C only)", "SARD, corner term only",
              beta_edge=0.0, beta_density=0.0),
        _sard("sard_d", "SARD (D only)", "SARD, density term only",
              beta_edge=0.0, beta_corner=0.0),
        _sard("sard_ec", "SARD (E + C)", "SARD, edge and corner terms", beta_density=0.0),
    )
}
"""Every method by name (`Method`), in the order of the paper's tables."""

METHODS = tuple(METHOD_INFO)
"""The method names."""

TABLE_METHODS = ("scratch", "kd", "cwd", "dkd", "mgd", "sard")
"""The rows of the paper's Tables 6–7 under the teacher."""


def parse_method(method, argument="method"):
    """The names of `method`'s parts (``"sard+kd"`` → ``("sard", "kd")``).

    A ValueError naming `argument` (``"method"``, ``"--method"`` ...) and the
    known methods when `method` is not a string or a part is unknown.
    """
    if not isinstance(method, str):
        raise ValueError(f"`{argument}` must be a string, one of {METHODS}; got {method!r}.")
    parts = tuple(part.strip() for part in method.split("+"))
    unknown = [part for part in parts if part not in METHOD_INFO]
    if unknown:
        which = f" ({', '.join(repr(p) for p in unknown)})" if len(parts) > 1 else ""
        raise ValueError(
            f"Unknown `{argument}` {method!r}{which}; the known methods are {METHODS}, "
            "combined with '+'."
        )
    return parts


def method_label(method):
    """The table row of `method`: its label, or its parts' joined by " + "."""
    return " + ".join(METHOD_INFO[part].label for part in parse_method(method))


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
    parts = parse_method(method)
    if len(parts) > 1 and overrides:
        raise ValueError(
            f"Overrides {sorted(overrides)} would be ambiguous for the combined method "
            f"{method!r}: call distillation_losses once per method and add the lists."
        )
    return [loss for part in parts
            for loss in METHOD_INFO[part].build(teacher_layers, student_layers, **overrides)]
