import math

import numpy as np
import torch

from genxr.components.worldmodel.conditioning import (
    BONES,
    ConditionEncoder,
    ConditioningConfig,
    Tracking,
    camera_directions,
    camera_frame_joints,
    draw_skeleton,
    plucker_rays,
    quaternion_matrix,
    tracking_from_messages,
)
from genxr.platform.messages import HandJoints, Pose, TrackingFrame

IDENTITY = torch.tensor([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0])


def _yaw(angle: float, position=(0.0, 1.6, 0.0)) -> torch.Tensor:
    return torch.tensor([*position, 0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)])


def _tracking(heads: list[torch.Tensor], joints: torch.Tensor | None = None, valid: float = 1.0) -> Tracking:
    f = len(heads)
    if joints is None:  # a hand 0.4 m in front of the camera, fingers spread sideways
        joints = torch.zeros(26, 3)
        joints[:, 0] = torch.linspace(-0.08, 0.08, 26)
        joints[:, 1] = 1.6
        joints[:, 2] = -0.4
    positions = joints.expand(1, f, 2, 26, 3).clone()
    return Tracking(torch.stack(heads)[None], positions, torch.full((1, f, 2, 26), valid), heads[0][None].clone())


def test_bones_cover_every_joint_once_as_child():
    children = sorted(child for _, child in BONES)
    assert children == list(range(1, 26))


def test_plucker_of_the_reference_frame_has_zero_moment_and_camera_directions():
    directions = camera_directions(4, 2, 80.0)
    rays = plucker_rays(_tracking([IDENTITY]), directions).reshape(1, 1, 16, 4, 6)
    assert torch.allclose(rays[..., :3], torch.zeros(3), atol=1e-6)
    assert torch.allclose(rays[..., 3:], directions[None, None], atol=1e-6)
    assert (directions[..., 2] < 0).all()  # OpenXR: cameras look down -Z


def test_plucker_follows_head_rotation_and_translation_relative_to_reference():
    directions = camera_directions(2, 1, 80.0)
    turned = _yaw(math.pi / 2, position=(0.5, 1.6, 0.0))
    rays = plucker_rays(_tracking([IDENTITY, turned]), directions)[0, 1].reshape(4, 6)
    rotation = quaternion_matrix(turned[3:])
    expected_d = directions[:, 0] @ rotation.T
    assert torch.allclose(rays[:, 3:], expected_d, atol=1e-5)
    origin = torch.tensor([0.5, 0.0, 0.0])
    assert torch.allclose(rays[:, :3], torch.linalg.cross(origin.expand(4, 3), expected_d), atol=1e-5)


def test_joints_in_camera_frame_and_zero_when_invalid():
    tracking = _tracking([IDENTITY, _yaw(math.pi)])
    local = camera_frame_joints(tracking)
    assert torch.allclose(local[0, 0, 0, :, 1:], torch.tensor([0.0, -0.4]).expand(26, 2), atol=1e-6)
    assert (local[0, 1, ..., 2] > 0).all()  # turned around: the hand is behind the camera
    lost = camera_frame_joints(_tracking([IDENTITY], valid=0.0))
    assert (lost == 0).all()


def test_skeleton_is_drawn_in_front_and_empty_when_lost_or_behind():
    image = draw_skeleton(_tracking([IDENTITY, _yaw(math.pi)]), 32, 80.0, 8)
    assert image.shape == (1, 2, 2, 32, 32)
    assert image[0, 0].sum() > 10  # in view
    rows = image[0, 0, 0].nonzero()[:, 0]
    assert (rows >= 14).all() and (rows <= 17).all()  # the hand is at eye height: the middle rows
    assert image[0, 1].sum() == 0  # behind the camera
    assert draw_skeleton(_tracking([IDENTITY], valid=0.0), 32, 80.0, 8).sum() == 0


def test_ablation_switches_remove_paths():
    full = ConditionEncoder(ConditioningConfig(), 32, 4, 8)
    head_only = ConditionEncoder(ConditioningConfig(use_skeleton=False, use_joints=False), 32, 4, 8)
    none = ConditionEncoder(ConditioningConfig(use_camera=False, use_skeleton=False, use_joints=False), 32, 4, 8)
    tracking = _tracking([IDENTITY, IDENTITY])
    assert full.skeleton_latents(tracking).shape == (1, 2, 8, 8, 8)
    assert head_only.skeleton_latents(tracking) is None and head_only.extra_channels == 0
    assert head_only.token_bias(tracking).shape == (1, 2, 16, 32)
    assert none.token_bias(tracking) is None and not list(none.parameters())
    changed = _tracking([IDENTITY, IDENTITY])
    changed.hand_positions[..., 0] += 0.05
    assert not torch.allclose(full.token_bias(tracking), full.token_bias(changed))
    assert torch.allclose(head_only.token_bias(tracking), head_only.token_bias(changed))


def test_tracking_from_messages_marks_missing_and_inactive_hands_invalid():
    flags = np.full(26, 0xF, np.uint8)
    hand = HandJoints(hand="left", is_active=True, location_flags=flags, positions=np.zeros((26, 3), np.float32),
                      orientations=np.tile(np.array([0, 0, 0, 1], np.float32), (26, 1)), radii=np.full(26, 0.01, np.float32))
    inactive = hand.model_copy(update={"hand": "right", "is_active": False})
    frames = [TrackingFrame(frame_id=0, sample_time_ns=0, predicted_display_time_ns=0, head=Pose(), left_hand=hand,
                            right_hand=inactive),
              TrackingFrame(frame_id=1, sample_time_ns=1, predicted_display_time_ns=1, head=Pose())]
    tracking = tracking_from_messages(frames, IDENTITY)
    assert tracking.joint_valid[0, 0, 0].all() and not tracking.joint_valid[0, 0, 1].any()
    assert not tracking.joint_valid[0, 1].any()
    assert tracking.reference.shape == (1, 7)
