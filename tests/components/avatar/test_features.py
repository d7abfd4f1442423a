"""Per-frame features: the user's bearing and the user-facing frame of the motion."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.features import (
    motion_features,
    turn_about_stance,
    user_bearing,
    user_features,
)
from genxr.components.avatar.train import conversation_features
from genxr.components.sim.conversation.dataset import simulate_conversation


def _standing(heading: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
    """Motion features (T, 135): rest pose turned to ``heading`` (T,) radians, pelvis at ``pelvis`` (T, 3)."""
    local = np.tile(np.eye(3), (len(heading), sk.AVATAR_JOINTS, 1, 1))
    local[:, 0] = sk.rotation_y(heading)
    return motion_features(sk.matrix_to_rot6d(local), pelvis)


def test_bearing_of_a_user_to_the_left_front_is_plus_45_degrees():
    head = np.array([[1.0, 1.7, 1.0], [0.0, 1.6, 2.0], [0.0, 1.6, -2.0]])
    assert np.allclose(np.degrees(user_bearing(user_features(head))), [45.0, 0.0, 180.0])


def test_turning_by_minus_the_bearing_makes_a_body_facing_the_user_face_plus_z():
    bearing = np.radians([30.0, -90.0, 170.0])
    motion = _standing(bearing, np.array([[1.0, 0.9, 0.0]] * 3))
    turned = turn_about_stance(motion, -bearing)
    root = sk.rot6d_to_matrix(turned[:, :6])
    assert np.allclose(sk.heading(root), 0.0, atol=1e-6)
    # the pelvis turns with the body about the vertical through the stance point: (1, 0.9, 0) by -30 deg
    assert np.allclose(turned[0, -3:], [np.cos(np.radians(30)), 0.9, np.sin(np.radians(30))], atol=1e-6)
    assert np.allclose(turned[:, 6:-3], motion[:, 6:-3])  # other joints' local rotations untouched


def test_turning_back_restores_the_motion_exactly():
    rng = np.random.default_rng(0)
    local = sk.rot6d_to_matrix(rng.normal(size=(5, sk.AVATAR_JOINTS, 6)))
    motion = motion_features(sk.matrix_to_rot6d(local), rng.normal(size=(5, 3)))
    angle = rng.uniform(-np.pi, np.pi, 5)
    assert np.allclose(turn_about_stance(turn_about_stance(motion, angle), -angle), motion, atol=1e-6)


@pytest.mark.parametrize("root_heading", ["absolute", "user"])
def test_training_motion_is_in_the_frame_the_vae_encodes(root_heading):
    talk = simulate_conversation(0, 0, 6.0)
    features = conversation_features(0, 0, 6.0, root_heading)
    absolute = motion_features(talk.rotations_6d, talk.root_translation)
    bearing = user_bearing(features.user)
    expected = absolute if root_heading == "absolute" else turn_about_stance(absolute, -bearing)
    assert np.allclose(features.motion, expected, atol=1e-6)
    relative = sk.wrap_angle(sk.heading(sk.rot6d_to_matrix(features.motion[:, :6])))
    if root_heading == "user":  # the agent turns toward the user: its heading in this frame stays small
        assert np.abs(relative).mean() < np.abs(sk.wrap_angle(sk.heading(sk.rot6d_to_matrix(absolute[:, :6])))).mean()
