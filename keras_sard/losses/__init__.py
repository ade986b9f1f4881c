"""Losses: SARD's (feature consistency, distribution alignment), the
baselines (KD, CWD, DKD, MGD), the task loss, and the base contract of every
distillation loss."""

from keras_sard.losses.base import DistillationLoss
from keras_sard.losses.logit_kd import ChannelWiseKD, DecoupledKD, LogitKD
from keras_sard.losses.mgd import MaskedGenerativeKD
from keras_sard.losses.sard import (
    DenoisingHead,
    DistributionAlignmentLoss,
    FeatureConsistencyLoss,
    SARDLoss,
    weighted_squared_error,
)
from keras_sard.losses.task import SegmentationLoss

__all__ = [
    "ChannelWiseKD",
    "DecoupledKD",
    "DistillationLoss",
    "LogitKD",
    "MaskedGenerativeKD",
    "DenoisingHead",
    "DistributionAlignmentLoss",
    "FeatureConsistencyLoss",
    "SARDLoss",
    "SegmentationLoss",
    "weighted_squared_error",
]
