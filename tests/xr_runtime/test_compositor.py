"""Timewarp compositor: identity when the head did not turn, the right shift for a known
rotation, no black borders, upsampling to display resolution, stale marking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genxr.platform.messages import Pose, WorldFrame
from genxr.xr_runtime.compositor import Compositor, CompositorConfig, display_rays, rotation_angle_deg


def yaw(degrees: float) -> Pose:
    """Head turned left by ``degrees`` about +Y (OpenXR: +Y up)."""
    half = math.radians(degrees) / 2
    return Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(half), 0.0, math.cos(half)))


def world(image: np.ndarray, head: Pose = Pose(), fov: float = 90.0, time_ns: int = 0) -> WorldFrame:
    return WorldFrame(session_id="s", request_id=0, frame_id=4, head=head, generated_for_time_ns=time_ns,
                      vertical_fov_deg=fov, image=image)


def column_image(width: int = 64, height: int = 64) -> np.ndarray:
    """Each column's red value is its x index * 4: tells where a sampled pixel came from."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (np.arange(width) * 4)[None, :]
    image[..., 1] = 128
    return image


def test_rays_look_down_minus_z_with_plus_y_up():
    rays = display_rays(3, 3, 90.0).reshape(3, 3, 3)
    np.testing.assert_allclose(rays[1, 1].numpy(), [0, 0, -1], atol=1e-6)
    assert rays[0, 1, 1] > 0, "top image row looks up (+Y)"
    assert rays[1, 2, 0] > 0, "right image column looks right (+X)"


def test_no_rotation_is_the_identity_at_the_same_resolution():
    compositor = Compositor(CompositorConfig(width=64, height=64, vertical_fov_deg=90.0))
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    shown = compositor.composite(1, 10, Pose(), world(image))
    np.testing.assert_array_equal(shown.image, image)
    assert shown.reprojection_deg == pytest.approx(0.0, abs=1e-6)
    assert shown.world_frame_id == 4 and not shown.stale


def test_turning_left_moves_content_right_by_the_projected_angle():
    compositor = Compositor(CompositorConfig(width=64, height=64, vertical_fov_deg=90.0))
    image = column_image()
    shown = compositor.composite(1, 10, yaw(10.0), world(image)).image
    # The display centre now looks 10 degrees left of the generation centre: it samples the
    # source at x_ndc = tan(-10 deg) / tan(45 deg), i.e. column 32 + 32 * x_ndc - 0.5.
    expected_column = 32 * (1 + math.tan(math.radians(-10.0))) - 0.5
    centre = shown[32, 31:33, 0].astype(float).mean() / 4
    assert centre == pytest.approx(expected_column, abs=0.6)
    assert rotation_angle_deg(yaw(10.0).rotation_matrix()) == pytest.approx(10.0)


def test_large_rotation_shows_clamped_border_not_black():
    compositor = Compositor(CompositorConfig(width=32, height=32))
    image = np.full((16, 16, 3), 200, np.uint8)
    shown = compositor.composite(1, 10, yaw(120.0), world(image)).image
    assert shown.min() == 200, "rays outside the generated view repeat its border"


def test_upsamples_the_model_resolution_to_the_display():
    compositor = Compositor(CompositorConfig(width=256, height=256))
    shown = compositor.composite(1, 10, Pose(), world(column_image(64, 64))).image
    assert shown.shape == (256, 256, 3) and shown.dtype == np.uint8
    assert shown[:, :, 1].min() == 128


def test_old_content_is_marked_stale_and_no_content_is_blank_and_stale():
    compositor = Compositor(CompositorConfig(width=16, height=16, stale_after_ms=100))
    fresh = compositor.composite(1, 50_000_000, Pose(), world(column_image(16, 16), time_ns=0))
    old = compositor.composite(2, 150_000_001, Pose(), world(column_image(16, 16), time_ns=0))
    assert not fresh.stale and fresh.content_age_ns == 50_000_000
    assert old.stale
    nothing = compositor.composite(3, 10, Pose(), None)
    assert nothing.stale and nothing.world_frame_id is None and nothing.image.shape == (16, 16, 3)


def test_bad_display_config_is_refused():
    with pytest.raises(ValueError, match="vertical_fov_deg must be in"):
        CompositorConfig(vertical_fov_deg=180)
    with pytest.raises(ValueError, match="display size must be at least"):
        CompositorConfig(width=0)


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k  # Rodrigues


@pytest.mark.parametrize("fov", [None, "asymmetric"])
def test_the_opencv_homography_and_the_torch_grid_agree(fov):
    """The fast path (one OpenCV warpPerspective) and the reference path (the ray grid through
    torch's grid_sample) give the same pixels, up to rounding, for rotations up to 30 degrees (content
    100+ ms old under a fast head turn; wider turns of a wide display take the reference path)."""
    from genxr.xr_runtime.views import ViewFov

    compositor = Compositor(CompositorConfig(width=96, height=80))
    view = None if fov is None else ViewFov(angle_left=-0.9, angle_right=0.7, angle_up=0.8, angle_down=-0.85)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x, y = (compositor._ray_x, compositor._ray_y) if view is None else compositor._rays_for(view)
    tan_y = math.tan(math.radians(75.0) / 2)
    for _ in range(20):
        rotation = random_rotation(rng, 30.0)
        assert compositor._homography(x, y, 64, 64, tan_y, tan_y, rotation) is not None
        fast = compositor.warp(image, 75.0, rotation, fov=view).astype(int)
        reference = compositor._warp_torch(image, tan_y, tan_y, rotation, x, y).astype(int)
        assert np.abs(fast - reference).max() <= 1


def test_a_view_turned_behind_the_generation_camera_shows_the_border_not_a_mirror():
    compositor = Compositor(CompositorConfig(width=32, height=32))
    image = column_image()
    half_turn = yaw(170.0).rotation_matrix()
    x, y = compositor._ray_x, compositor._ray_y
    assert compositor._homography(x, y, 64, 64, 1.0, 1.0, half_turn) is None, "no homography behind the camera"
    warped = compositor.warp(image, 90.0, half_turn)
    assert set(np.unique(warped[..., 0])) <= {0, 252}, "only the clamped left or right border shows"


@pytest.mark.parametrize(("width", "height"), [(1, 64), (64, 1), (0, 0)])
def test_a_display_smaller_than_the_smallest_display_frame_is_refused(width, height):
    with pytest.raises(ValueError, match=rf"at least 2x2 pixels .*got {width}x{height}"):
        CompositorConfig(width=width, height=height)
