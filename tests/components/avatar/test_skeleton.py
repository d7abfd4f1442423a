"""The skeleton against hand-computed cases: tree, FK, 6D round trip, facing and gaze helpers."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AVATAR_JOINT_COUNT


def rest(frames: tuple[int, ...] = ()) -> np.ndarray:
    return np.broadcast_to(np.eye(3), (*frames, AVATAR_JOINT_COUNT, 3, 3)).copy()


def test_tree_is_the_humanml3d_tree():
    assert len(sk.JOINT_NAMES) == len(sk.PARENTS) == sk.REST_OFFSETS.shape[0] == AVATAR_JOINT_COUNT
    assert sk.PARENTS == (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
    assert all(parent < joint for joint, parent in enumerate(sk.PARENTS))
    assert sk.JOINT["head"] == 15 and sk.JOINT["right_wrist"] == 21


def test_rest_pose_head_height_and_feet_on_the_floor():
    positions, _ = sk.forward_kinematics(rest(), np.array([0.0, sk.PELVIS_HEIGHT, 0.0]))
    # pelvis + spine1 + spine2 + spine3 + neck + head offsets, summed by hand
    assert positions[sk.JOINT["head"]] == pytest.approx([0.0, 0.93 + 0.11 + 0.135 + 0.055 + 0.21 + 0.09, 0.03])
    assert positions[sk.JOINT["left_foot"], 1] == pytest.approx(0.0, abs=1e-12)
    assert positions[sk.JOINT["left_wrist"]] == pytest.approx([0.07 + 0.12 + 0.26 + 0.25, 0.93 + 0.11 + 0.135 + 0.055 + 0.12 + 0.03, -0.01 + 0.02 - 0.02])


def test_fk_elbow_bend_moves_only_the_wrist():
    local = rest()
    local[sk.JOINT["left_elbow"]] = sk.rotation_y(np.pi / 2)  # +X forearm turned to -Z
    positions, rotations = sk.forward_kinematics(local, np.zeros(3))
    elbow = positions[sk.JOINT["left_elbow"]]
    assert positions[sk.JOINT["left_wrist"]] == pytest.approx(elbow + [0.0, 0.0, -0.25])
    assert rotations[sk.JOINT["left_wrist"]] == pytest.approx(sk.rotation_y(np.pi / 2))


def test_root_heading_turns_the_whole_body():
    local = rest()
    local[0] = sk.rotation_y(np.pi / 2)  # facing +X
    positions, rotations = sk.forward_kinematics(local, np.array([1.0, 0.93, 2.0]))
    assert sk.heading(rotations[0]) == pytest.approx(np.pi / 2)
    assert sk.body_facing(positions) == pytest.approx([1.0, 0.0, 0.0])
    assert sk.head_forward(rotations) == pytest.approx([1.0, 0.0, 0.0])
    # left hip was at +X in the rest pose; turned +90 deg about Y it lies at -Z
    assert positions[sk.JOINT["left_hip"]] == pytest.approx([1.0, 0.84, 2.0 - 0.06])


def test_rot6d_round_trip_and_columns():
    rng = np.random.default_rng(0)
    matrices = sk.axis_angle_to_matrix(rng.normal(size=(50, 3)), rng.uniform(-3, 3, 50))
    six = sk.matrix_to_rot6d(matrices)
    assert six[:, :3] == pytest.approx(matrices[:, :, 0]) and six[:, 3:] == pytest.approx(matrices[:, :, 1])
    assert sk.rot6d_to_matrix(six) == pytest.approx(matrices, abs=1e-12)
    noisy = sk.rot6d_to_matrix(six * 3.0 + rng.normal(0, 0.05, six.shape))
    assert np.linalg.det(noisy) == pytest.approx(np.ones(50))
    assert noisy @ np.swapaxes(noisy, -1, -2) == pytest.approx(np.broadcast_to(np.eye(3), (50, 3, 3)), abs=1e-12)


def test_orthonormalize_6d_is_the_round_trip_through_matrices():
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(40, 22, 6))
    expected = sk.matrix_to_rot6d(sk.rot6d_to_matrix(raw))
    assert np.allclose(sk.orthonormalize_6d(raw), expected, atol=1e-12)
    assert not np.allclose(raw, expected)


def test_look_rotation_points_plus_z_at_yaw_and_pitch():
    forward = sk.look_rotation(np.pi / 2, np.pi / 6) @ sk.FORWARD
    assert forward == pytest.approx([np.cos(np.pi / 6), 0.5, 0.0])


def test_gaze_angle_and_facing_error_by_hand():
    positions, rotations = sk.forward_kinematics(rest(), np.array([0.0, 0.93, 0.0]))
    head = positions[sk.JOINT["head"]]
    assert sk.gaze_angle(positions, rotations, head + [0.0, 0.0, 2.0]) == pytest.approx(0.0)
    assert sk.gaze_angle(positions, rotations, head + [2.0, 0.0, 2.0]) == pytest.approx(np.pi / 4)
    assert sk.gaze_angle(positions, rotations, head + [0.0, 1.0, 1.0]) == pytest.approx(np.pi / 4)
    assert sk.facing_error(positions, np.array([1.0, 1.7, 1.0])) == pytest.approx(np.pi / 4)
    assert sk.facing_error(positions, np.array([-1.0, 1.7, 0.0])) == pytest.approx(-np.pi / 2)
    assert sk.facing_error(positions, np.array([0.0, 1.7, -1.0])) == pytest.approx(np.pi)


def test_wrap_angle():
    assert sk.wrap_angle(np.array([np.pi, -np.pi, 1.5 * np.pi, 0.25])) == pytest.approx([np.pi, np.pi, -0.5 * np.pi, 0.25])
