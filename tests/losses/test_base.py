"""DistillationLoss: the checks every per-level loss shares."""

import pytest

from keras_sard.losses import MaskedGenerativeKD, SARDLoss

LEVEL = (2, 8, 8, 4)


@pytest.mark.parametrize("loss_class", [SARDLoss, MaskedGenerativeKD])
def test_build_refuses_a_wrong_number_of_levels(loss_class):
    loss = loss_class(["t1", "t2"], ["s1", "s2"])
    with pytest.raises(ValueError, match=r"`teacher_outputs` must hold 2 feature maps \(one per level\); got 1"):
        loss.build([LEVEL], [LEVEL, LEVEL])
    with pytest.raises(ValueError, match=r"`student_outputs` must hold 2 feature maps \(one per level\); got 3"):
        loss.build([LEVEL, LEVEL], [LEVEL, LEVEL, LEVEL])
    loss.build([LEVEL, LEVEL], [LEVEL, LEVEL])
    assert loss.built
