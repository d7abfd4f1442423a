"""Pinhole projection in OpenXR conventions: +X right, +Y up, the camera looks down -Z; pixel centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genxr.components.sim.camera import PinholeCamera
from genxr.components.sim.geometry import euler_yxz


def view(position=(0.0, 0.0, 0.0), angles=(0.0, 0.0, 0.0)) -> torch.Tensor:
    matrix = np.eye(4)
    matrix[:3, :3] = euler_yxz(np.array(angles))
    matrix[:3, 3] = position
    return torch.from_numpy(matrix).float()[None]


def test_projection_follows_openxr_axes_and_pixel_centres():
    camera = PinholeCamera(width=64, height=48, vertical_fov_deg=90.0)
    points = torch.tensor([[[0.0, 0.0, -2.0], [1.0, 0.0, -2.0], [0.0, 1.0, -2.0], [0.0, 0.0, 2.0]]])
    uv, depth = camera.project(points, view())
    assert uv[0, 0].tolist() == [32.0, 24.0]  # straight ahead: image centre
    assert uv[0, 1, 0] > 32 and uv[0, 1, 1] == 24  # +X is to the right
    assert uv[0, 2, 1] < 24 and uv[0, 2, 0] == 32  # +Y is up (v grows downward)
    assert uv[0, 1, 0] - 32 == pytest.approx(camera.focal_px / 2)  # f x / -z
    assert depth[0].tolist() == [2.0, 2.0, 2.0, -2.0]  # behind the camera: negative depth
    turned, _ = camera.project(torch.tensor([[[-2.0, 0.0, 0.0]]]), view(angles=(np.pi / 2, 0.0, 0.0)))
    assert turned[0, 0].tolist() == pytest.approx([32.0, 24.0], abs=1e-4)  # yaw +90 deg looks along -X


def test_rays_pass_through_pixel_centres():
    camera = PinholeCamera(width=8, height=6, vertical_fov_deg=70.0)
    rays = camera.ray_directions().reshape(6, 8, 3)
    uv, _ = camera.project(rays.reshape(1, -1, 3) * 3.0, view())
    expected = torch.stack(torch.meshgrid(torch.arange(6) + 0.5, torch.arange(8) + 0.5, indexing="ij")[::-1], -1)
    assert torch.allclose(uv.reshape(6, 8, 2), expected, atol=1e-4)


@pytest.mark.parametrize("bad", [{"width": 0}, {"height": 5000}, {"vertical_fov_deg": 180.0}])
def test_bad_camera_is_rejected_by_field(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        PinholeCamera(**bad)
