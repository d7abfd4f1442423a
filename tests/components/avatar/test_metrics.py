"""Metrics on closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar import metrics
from genxr.components.avatar import skeleton as sk


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (20000, 2))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # same covariance I, means 3 apart: FD = 9; scaled by 2: Tr(I + 4I - 2*2I) = 2 per ... = 2
    assert metrics.frechet_distance(a, a + [3.0, 0.0]) == pytest.approx(9.0, rel=1e-6)
    assert metrics.frechet_distance(a, 2.0 * a) == pytest.approx(2.0, rel=0.05)


def test_constant_samples_do_not_break_frechet():
    rng = np.random.default_rng(1)
    value = metrics.frechet_distance(rng.normal(size=(500, 3)), np.zeros((500, 3)))
    assert np.isfinite(value) and value == pytest.approx(3.0, rel=0.2)


def test_beat_consistency_by_hand():
    assert metrics.beat_consistency(np.array([30, 60]), np.array([30, 69])) == pytest.approx(
        0.5 * (1.0 + np.exp(-0.09 / 0.18)))
    assert metrics.beat_consistency(np.array([30]), np.zeros(0, dtype=int)) == 0.0
    with pytest.raises(ValueError):
        metrics.beat_consistency(np.zeros(0, dtype=int), np.array([1]))


def test_pose_features_remove_position_and_heading():
    rotations = np.broadcast_to(sk.matrix_to_rot6d(np.eye(3)), (2, 22, 6)).copy()
    rotations[1, 0] = sk.matrix_to_rot6d(sk.rotation_y(1.0))
    features = metrics.pose_features(rotations, np.array([[0.0, 0.9, 0.0], [2.0, 0.9, 1.0]]))
    assert features.shape == (2, 66) and features[0] == pytest.approx(features[1])


def test_gaze_and_facing_of_the_rest_pose():
    rotations = np.broadcast_to(sk.matrix_to_rot6d(np.eye(3)), (1, 22, 6))
    gaze, facing = metrics.gaze_and_facing_deg(rotations, np.array([[0.0, 0.93, 0.0]]), np.array([[0.0, 1.53, 2.03]]))
    assert gaze == pytest.approx([0.0], abs=1e-6) and facing == pytest.approx([0.0], abs=1e-6)


def test_speed_by_chunk_phase_shows_a_seam_jump():
    frames, joints = 24, 22
    steady = np.cumsum(np.full((frames, joints, 3), 0.01), axis=0)  # every joint moves 0.01 m per axis per frame
    jumpy = np.repeat(steady[::4], 4, axis=0)  # held for a chunk, then a jump at each seam
    step = np.sqrt(3) * 0.01 * len(sk.UPPER_BODY)
    assert np.allclose(metrics.speed_by_chunk_phase(steady.reshape(frames, -1)), step)
    assert np.allclose(metrics.speed_by_chunk_phase(jumpy.reshape(frames, -1)), [0, 0, 0, 4 * step])
    with pytest.raises(ValueError, match="3 frames"):
        metrics.speed_by_chunk_phase(steady[:3].reshape(3, -1))
