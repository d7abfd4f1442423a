"""The avatar overlay: FK at the display time, projection with the display camera, bones
drawn where the body is, nothing drawn behind the camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AvatarMotion, Pose
from genxr.xr_runtime.avatar_overlay import BODY_COLOUR, EYE_COLOUR, draw_avatar, joints_at, project


def standing(frames: int = 4, root=(0.0, sk.PELVIS_HEIGHT, -2.0), fps: float = 30.0) -> AvatarMotion:
    rest = np.broadcast_to(sk.matrix_to_rot6d(np.eye(3)), (frames, 22, 6)).astype(np.float32)
    roots = np.tile(np.asarray(root, np.float32), (frames, 1))
    roots[:, 0] += np.arange(frames) * 0.1  # steps right by 10 cm per frame
    return AvatarMotion(session_id="s", request_id=0, start_time_ns=1_000_000_000, fps=fps, rotations_6d=rest,
                        root_translation=roots)


def test_joints_follow_the_frame_for_the_display_time_and_hold_the_last():
    motion = standing()
    first = joints_at(motion, 1_000_000_000)
    second = joints_at(motion, 1_000_000_000 + round(1e9 / 30))
    assert second[0, 0] - first[0, 0] == pytest.approx(0.1, abs=1e-6)
    assert np.allclose(joints_at(motion, 9_000_000_000), joints_at(motion, 1_000_000_000 + 3 * round(1e9 / 30)))
    assert np.allclose(first[0], [0.0, sk.PELVIS_HEIGHT, -2.0], atol=1e-6)


def test_projection_puts_a_point_straight_ahead_at_the_centre():
    pixels = project(np.array([[0.0, 1.6, -3.0], [0.0, 2.6, -3.0]]), Pose(position=(0.0, 1.6, 0.0)), 64, 64, 90.0)
    assert pixels[0, :2] == pytest.approx([32.0, 32.0]) and pixels[0, 2] == pytest.approx(3.0)
    assert pixels[1, 1] < 32, "higher points are higher in the image (rows go down)"


def test_the_body_is_drawn_in_front_and_not_behind():
    image = np.zeros((64, 64, 3), np.uint8)
    head = Pose(position=(0.0, 1.6, 0.0))
    drawn = draw_avatar(image, standing(), 1_000_000_000, head, 90.0)
    body = np.all(drawn == BODY_COLOUR, axis=-1)
    assert body.sum() > 20
    columns = np.nonzero(body.any(axis=0))[0]
    assert 24 <= columns.mean() <= 40, "the avatar stands straight ahead"
    turned_away = Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(math.pi / 2), 0.0, math.cos(math.pi / 2)))
    assert not draw_avatar(image, standing(), 1_000_000_000, turned_away, 90.0).any()


def turned(yaw_deg: float) -> AvatarMotion:
    """:func:`standing` with the whole body turned ``yaw_deg`` about +Y (0: facing the camera at the origin)."""
    motion = standing()
    yaw = math.radians(yaw_deg)
    root = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rotations = motion.rotations_6d.copy()
    rotations[:, 0] = sk.matrix_to_rot6d(root)
    return motion.model_copy(update={"rotations_6d": rotations})


def eye_pixels(motion: AvatarMotion, size: int = 256) -> np.ndarray:
    drawn = draw_avatar(np.zeros((size, size, 3), np.uint8), motion, 1_000_000_000, Pose(position=(0.0, 1.6, 0.0)), 60.0)
    return np.argwhere(np.all(drawn == EYE_COLOUR, axis=-1))  # (n, 2) rows, columns


def test_the_eyes_show_where_the_avatar_looks():
    """Issue #17, Build 3: eye contact must be visible - the eyes are in the middle of the face
    when the avatar looks at the user, off to the side when it looks away, hidden from behind."""
    head_column = project(joints_at(standing(), 1_000_000_000)[[sk.JOINT["head"]]], Pose(position=(0.0, 1.6, 0.0)),
                          256, 256, 60.0)[0, 0]
    facing = eye_pixels(turned(0.0))
    assert len(facing) > 4 and abs(facing[:, 1].mean() - head_column) < 1.5, "both eyes, centred on the face"
    left_columns = {round(c) for c in facing[:, 1]}
    assert min(left_columns) < head_column < max(left_columns), "one eye each side of the face's centre"
    aside = eye_pixels(turned(60.0))
    assert len(aside) > 0 and abs(aside[:, 1].mean() - head_column) > 3, "looking aside: the eyes move to the side"
    assert len(eye_pixels(turned(180.0))) == 0, "from behind no eye shows"
