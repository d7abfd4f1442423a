"""Hand forward kinematics: constant bone lengths, joint limits, mirrored sides, OpenXR joint frames."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.geometry import euler_yxz, quaternion_to_matrix
from genxr.components.sim.hand import (
    ARTICULATION_COUNT,
    ARTICULATION_LIMITS,
    ARTICULATION_NAMES,
    GRIPS,
    ArticulationError,
    HandModel,
    HandModelConfig,
    bone_lengths,
    pinch,
)
from genxr.platform.messages import HAND_JOINT_NAMES

MODEL = HandModel()


def random_articulations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(ARTICULATION_LIMITS[:, 0], ARTICULATION_LIMITS[:, 1], (n, ARTICULATION_COUNT))


def test_twenty_named_articulations_with_ordered_limits():
    assert len(ARTICULATION_NAMES) == 20 == len(set(ARTICULATION_NAMES))
    assert (ARTICULATION_LIMITS[:, 0] < ARTICULATION_LIMITS[:, 1]).all()
    for grip in GRIPS.values():
        assert ((grip >= ARTICULATION_LIMITS[:, 0]) & (grip <= ARTICULATION_LIMITS[:, 1])).all()


@pytest.mark.parametrize("side", ["left", "right"])
def test_bone_lengths_stay_constant_under_any_articulation_and_wrist_pose(side):
    articulations = random_articulations(200)
    rng = np.random.default_rng(1)
    rotations = euler_yxz(rng.uniform(-np.pi, np.pi, (200, 3)))
    pose = MODEL.pose(rng.normal(0, 1, (200, 3)), rotations, articulations, side)
    lengths = bone_lengths(pose.positions)
    rest = bone_lengths(MODEL.local(np.zeros(ARTICULATION_COUNT), side)[0])
    assert lengths.shape == (200, 24)
    np.testing.assert_allclose(lengths, np.broadcast_to(rest, lengths.shape), atol=1e-9)
    assert (rest > 0.005).all()


def test_scale_scales_every_bone():
    small = HandModel(HandModelConfig(scale=0.9))
    np.testing.assert_allclose(bone_lengths(small.local(GRIPS["relaxed"])[0]),
                               0.9 * bone_lengths(MODEL.local(GRIPS["relaxed"])[0]), rtol=1e-12)
    with pytest.raises(ValueError, match="scale 2.0"):
        HandModelConfig(scale=2.0)


@pytest.mark.parametrize("index", [0, 4, 6, 19])
def test_out_of_limit_articulation_names_the_parameter_value_and_limits(index):
    articulation = GRIPS["relaxed"].copy()
    articulation[index] = ARTICULATION_LIMITS[index, 1] + 0.2
    with pytest.raises(ArticulationError, match=rf"{ARTICULATION_NAMES[index]} = .* outside its limits"):
        MODEL.local(articulation)


def test_nan_articulation_and_nan_wrist_are_rejected_by_name():
    articulation = GRIPS["flat"].copy()
    articulation[7] = np.nan
    with pytest.raises(ArticulationError, match=f"{ARTICULATION_NAMES[7]} is nan"):
        MODEL.local(articulation)
    with pytest.raises(ValueError, match="wrist_position"):
        MODEL.pose(np.array([0.0, np.nan, 0.0]), np.eye(3), GRIPS["flat"])
    with pytest.raises(ArticulationError, match="last axis must be 20"):
        MODEL.local(np.zeros(21))
    with pytest.raises(ValueError, match="side 'middle'"):
        MODEL.local(GRIPS["flat"], "middle")


def test_right_hand_frame_palm_down_fingers_forward_thumb_left_and_left_hand_mirrored():
    right, right_rot = MODEL.local(GRIPS["flat"], "right")
    left, left_rot = MODEL.local(GRIPS["flat"], "left")
    names = {name: k for k, name in enumerate(HAND_JOINT_NAMES)}
    assert right[names["middle_tip"], 2] < -0.15  # fingers along -Z
    assert right[names["thumb_tip"], 0] < right[names["little_tip"], 0]  # thumb on -X
    np.testing.assert_allclose(left, right * [-1, 1, 1])
    assert np.allclose(np.linalg.det(left_rot), 1.0)  # still proper rotations


def test_joint_frames_point_minus_z_along_the_bone_toward_the_tip():
    positions, rotations = MODEL.local(random_articulations(1, seed=3)[0])
    for joint in (3, 7, 8, 9, 12, 13, 14, 17, 22):  # joints whose bone runs to joint + 1
        bone = positions[joint + 1] - positions[joint]
        np.testing.assert_allclose(rotations[joint] @ [0, 0, -1], bone / np.linalg.norm(bone), atol=1e-9)


def test_pinch_closes_thumb_and_index_tips():
    apertures = [np.linalg.norm(np.subtract(*MODEL.local(pinch(c))[0][[5, 10]])) for c in (0.0, 0.5, 1.0)]
    assert apertures[0] > apertures[1] > apertures[2] and apertures[2] < 0.01
    with pytest.raises(ArticulationError, match="closure 1.5"):
        pinch(1.5)


def test_pose_message_is_a_valid_fully_tracked_hand_joints():
    pose = MODEL.pose(np.array([0.1, 1.2, -0.3]), euler_yxz(np.array([0.3, -0.2, 0.1])), GRIPS["point"], "left")
    message = pose.message()
    assert message.hand == "left" and message.is_active and (message.location_flags == 0xF).all()
    np.testing.assert_allclose(message.positions, pose.positions, atol=1e-6)
    np.testing.assert_allclose(quaternion_to_matrix(message.orientations), pose.rotations, atol=1e-5)
