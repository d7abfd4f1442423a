"""Rotations, quaternions and the minimum-jerk profile."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.geometry import (
    axis_angle_to_matrix,
    euler_yxz,
    matrix_to_quaternion,
    minimum_jerk,
    quaternion_to_matrix,
    rotation_x,
    rotation_y,
    rotation_z,
)


def test_quaternion_round_trip():
    rotations = euler_yxz(np.random.default_rng(4).uniform(-3, 3, (100, 3)))
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rotations)), rotations, atol=1e-12)


def test_elementary_rotations_follow_the_right_hand_rule():
    np.testing.assert_allclose(rotation_x(np.pi / 2) @ [0, 0, -1], [0, 1, 0], atol=1e-12)  # forward tilts up
    np.testing.assert_allclose(rotation_y(np.pi / 2) @ [0, 0, -1], [-1, 0, 0], atol=1e-12)  # forward turns left
    np.testing.assert_allclose(rotation_z(np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(np.array([0.0, 0.7, 0.0])), rotation_y(0.7), atol=1e-12)


def test_minimum_jerk_starts_and_ends_at_rest():
    s = minimum_jerk(np.linspace(0, 1, 1001))
    assert s[0] == 0 and s[-1] == 1 and s[500] == pytest.approx(0.5)
    velocity = np.gradient(s, 1e-3)
    assert abs(velocity[0]) < 1e-2 and abs(velocity[-1]) < 1e-2 and velocity.max() == pytest.approx(1.875, rel=1e-3)
    assert minimum_jerk(-1.0) == 0 and minimum_jerk(2.0) == 1
