"""Stereo views in the compositor: asymmetric OpenXR frusta checked against hand-computed
pixel shifts, symmetric angles equal to the mono path bit for bit, one image per eye from
each eye's orientation, and the avatar's parallax between the eyes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AvatarMotion, Pose, WorldFrame
from genxr.xr_runtime.avatar_overlay import BODY_COLOUR, project
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from genxr.xr_runtime.views import DisplayView, ViewFov

QUARTER = math.pi / 4


def yaw(degrees: float, position=(0.0, 1.6, 0.0)) -> Pose:
    half = math.radians(degrees) / 2
    return Pose(position=position, orientation=(0.0, math.sin(half), 0.0, math.cos(half)))


def world(image: np.ndarray, head: Pose | None = None, fov: float = 90.0) -> WorldFrame:
    return WorldFrame(session_id="s", request_id=0, frame_id=3, head=head or Pose(), generated_for_time_ns=0,
                      vertical_fov_deg=fov, image=image)


def index_image(size: int = 64) -> np.ndarray:
    """Red = column * 4, green = row * 4: every pixel says where it came from."""
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = (np.arange(size) * 4)[None, :]
    image[..., 1] = (np.arange(size) * 4)[:, None]
    return image


def shifted(tan_left: float, tan_right: float, tan_up: float = 1.0, tan_down: float = -1.0) -> ViewFov:
    return ViewFov(math.atan(tan_left), math.atan(tan_right), math.atan(tan_up), math.atan(tan_down))


def test_symmetric_angles_reproduce_the_mono_display_bit_for_bit():
    compositor = Compositor(CompositorConfig(width=64, height=64, vertical_fov_deg=90.0))
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    generated = world(image, head=yaw(-5.0), fov=70.0)
    mono = compositor.composite(1, 10, yaw(12.0), generated)
    view = DisplayView(pose=yaw(12.0), fov=ViewFov(-QUARTER, QUARTER, QUARTER, -QUARTER))
    stereo = compositor.composite(1, 10, Pose(), generated, views=[view])
    np.testing.assert_array_equal(stereo.image, mono.image)
    assert stereo.reprojection_deg == pytest.approx(mono.reprojection_deg)
    assert mono.view_images is None and len(stereo.view_images) == 1


def test_frustum_shifted_right_shows_content_from_the_right():
    # tan left/right = -0.75 / 1.25: the same width as the source's (-1, 1), moved by 0.25 = 1/8
    # of it. Display column c looks along x = 0.25 + x_ndc(c), the source's column c + 8.
    compositor = Compositor(CompositorConfig(width=64, height=64))
    image = index_image()
    shown = compositor.composite(1, 10, Pose(), world(image), views=[
        DisplayView(pose=Pose(), fov=shifted(-0.75, 1.25))]).image
    np.testing.assert_array_equal(shown[:, :56], image[:, 8:])
    np.testing.assert_array_equal(shown[:, 56:], np.broadcast_to(image[:, 63:], (64, 8, 3)))


def test_frustum_shifted_up_shows_content_from_above():
    # tan up/down = 1.25 / -0.75: display row r looks along y = 0.25 - y_ndc(r), the source's row r - 8.
    compositor = Compositor(CompositorConfig(width=64, height=64))
    image = index_image()
    shown = compositor.composite(1, 10, Pose(), world(image), views=[
        DisplayView(pose=Pose(), fov=shifted(-1.0, 1.0, 1.25, -0.75))]).image
    np.testing.assert_array_equal(shown[8:], image[:56])
    np.testing.assert_array_equal(shown[:8], np.broadcast_to(image[:1], (8, 64, 3)))


def test_a_wider_frustum_shrinks_the_content_about_its_centre():
    # tan +-2 over 64 columns: display column c looks along 2 * x_ndc(c), the source's
    # column 32 + 2 * (c + 0.5 - 32) - 0.5 = 2c - 31.5: halfway between two columns.
    compositor = Compositor(CompositorConfig(width=64, height=64))
    image = index_image()
    shown = compositor.composite(1, 10, Pose(), world(image), views=[
        DisplayView(pose=Pose(), fov=shifted(-2.0, 2.0))]).image
    columns = np.arange(16, 48)
    np.testing.assert_array_equal(shown[32, columns, 0], 4 * (2 * columns - 31.5))


def test_each_view_is_rendered_from_its_own_orientation_in_order():
    compositor = Compositor(CompositorConfig(width=32, height=32))
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    generated = world(image)
    square = ViewFov(-QUARTER, QUARTER, QUARTER, -QUARTER)
    left, right = DisplayView(pose=yaw(8.0), fov=square), DisplayView(pose=yaw(-8.0), fov=square)
    shown = compositor.composite(1, 10, Pose(), generated, views=[left, right])
    np.testing.assert_array_equal(shown.view_images[0], compositor.composite(1, 10, yaw(8.0), generated).image)
    np.testing.assert_array_equal(shown.view_images[1], compositor.composite(1, 10, yaw(-8.0), generated).image)
    np.testing.assert_array_equal(shown.image, shown.view_images[0])
    assert shown.reprojection_deg == pytest.approx(8.0) and shown.world_frame_id == 3


def test_views_without_content_are_blank_and_stale():
    compositor = Compositor(CompositorConfig(width=16, height=16))
    square = ViewFov(-QUARTER, QUARTER, QUARTER, -QUARTER)
    shown = compositor.composite(1, 10, Pose(), None, views=[DisplayView(Pose(), square)] * 2)
    assert shown.stale and len(shown.view_images) == 2 and not any(v.any() for v in shown.view_images)


def test_asymmetric_projection_of_a_point_straight_ahead():
    # tan left/right = -0.75 / 1.25: straight ahead (x = 0) is 0.75 / 2.0 of the way across.
    fov = shifted(-0.75, 1.25, 0.5, -1.5)
    pixels = project(np.array([[0.0, 1.6, -2.0]]), Pose(position=(0.0, 1.6, 0.0)), 80, 40, fov)
    assert pixels[0, 0] == pytest.approx(80 * 0.75 / 2.0)
    assert pixels[0, 1] == pytest.approx(40 * 0.5 / 2.0)


def test_the_avatar_has_parallax_between_the_eyes():
    # An avatar 2 m ahead seen by eyes 64 mm apart: focal 128 px (256 px over tan +-1), so the
    # left eye sees it 128 * 0.064 / 2 = 4.1 px further right than the right eye does.
    rest = np.broadcast_to(sk.matrix_to_rot6d(np.eye(3)), (1, 22, 6)).astype(np.float32)
    avatar = AvatarMotion(session_id="s", request_id=0, start_time_ns=0, fps=30.0, rotations_6d=rest,
                          root_translation=np.array([[0.0, sk.PELVIS_HEIGHT, -2.0]], np.float32))
    square = ViewFov(-QUARTER, QUARTER, QUARTER, -QUARTER)
    eyes = [DisplayView(Pose(position=(-0.032, 1.6, 0.0)), square), DisplayView(Pose(position=(0.032, 1.6, 0.0)), square)]
    shown = Compositor(CompositorConfig(width=256, height=256)).composite(1, 0, Pose(), None, avatar, views=eyes)
    left, right = (np.nonzero(np.all(image == BODY_COLOUR, axis=-1).any(axis=0))[0].mean() for image in shown.view_images)
    assert left - right == pytest.approx(128 * 0.064 / 2, abs=1.0)


@pytest.mark.parametrize("angles, message", [
    ((0.5, -0.5, 0.5, -0.5), "angle_left (0.5) must be less than angle_right (-0.5)"),
    ((-0.5, 0.5, -0.5, 0.5), "angle_down (0.5) must be less than angle_up (-0.5)"),
    ((-0.5, math.nan, 0.5, -0.5), "angle_right must be a finite angle"),
    ((-1.6, 0.5, 0.5, -0.5), "angle_left must be a finite angle within"),
])
def test_impossible_frusta_are_refused_naming_the_angle(angles, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ViewFov(*angles)


def test_symmetric_frustum_of_a_wide_display():
    fov = ViewFov.symmetric(90.0, 128, 64)
    tan_l, tan_r, tan_u, tan_d = fov.tangents()
    assert (tan_u, tan_d) == pytest.approx((1.0, -1.0)) and (tan_l, tan_r) == pytest.approx((-2.0, 2.0))
