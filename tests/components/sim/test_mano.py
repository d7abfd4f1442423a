"""The documented OpenXR (26) <-> MANO/OpenPose (21) joint mapping."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.hand import GRIPS, HandModel
from genxr.components.sim.mano import MANO21_JOINT_NAMES, OPENXR_FROM_MANO21, mano21_to_openxr, openxr_to_mano21
from genxr.platform.messages import HAND_JOINT_NAMES

ANATOMY = {"cmc": "metacarpal", "mcp": "proximal", "ip": "distal", "tip": "tip"}
FINGER = {"mcp": "proximal", "pip": "intermediate", "dip": "distal", "tip": "tip"}


def test_each_mano_joint_maps_to_the_same_anatomical_openxr_joint():
    assert len(MANO21_JOINT_NAMES) == 21 == len(set(OPENXR_FROM_MANO21))
    for mano, openxr in zip(MANO21_JOINT_NAMES, OPENXR_FROM_MANO21):
        if mano == "wrist":
            expected = "wrist"
        else:
            finger, part = mano.split("_")
            expected = f"{finger}_{(ANATOMY if finger == 'thumb' else FINGER)[part]}"
        assert HAND_JOINT_NAMES[openxr] == expected


def test_round_trip_is_exact_on_shared_joints_and_close_on_inferred_ones():
    positions, _ = HandModel().local(np.stack([GRIPS["flat"], GRIPS["fist"], GRIPS["relaxed"]]))
    mano = openxr_to_mano21(positions)
    assert mano.shape == (3, 21, 3)
    back = mano21_to_openxr(mano)
    shared = list(OPENXR_FROM_MANO21)
    np.testing.assert_array_equal(back[:, shared], positions[:, shared])
    inferred = [0, 6, 11, 16, 21]
    assert np.linalg.norm(back[:, inferred] - positions[:, inferred], axis=-1).max() < 0.015


def test_wrong_shapes_are_rejected_with_the_shape():
    with pytest.raises(ValueError, match=r"\(25, 3\)"):
        openxr_to_mano21(np.zeros((25, 3)))
    with pytest.raises(ValueError, match=r"\(26, 3\)"):
        mano21_to_openxr(np.zeros((26, 3)))
