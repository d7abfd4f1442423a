"""Pinhole camera of the head (view) pose, OpenXR conventions, in torch.

Camera frame = the head pose's frame: right-handed, +X right, +Y up, the camera looks
down -Z. Pixel coordinates (u, v): u to the right, v **down**, origin at the top-left
corner of the image, pixel (row i, column j) covers [j, j+1) x [i, i+1) so its centre is
(j + 0.5, i + 0.5). A camera-frame point (x, y, z) with z < 0 projects to

    u = W / 2 + f * x / (-z),    v = H / 2 - f * y / (-z),    f = (H / 2) / tan(vfov / 2)

with square pixels (the horizontal FOV follows from the aspect ratio). Depth is the
z-buffer depth, -z, in metres: the distance along the viewing axis, not along the ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PinholeCamera:
    """``width`` x ``height`` pixels, vertical field of view ``vertical_fov_deg`` degrees."""

    width: int = 64
    height: int = 64
    vertical_fov_deg: float = 90.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= 4096):
                raise ValueError(f"camera {name} {value!r} must be an integer in [1, 4096] pixels")
        if not (1.0 <= self.vertical_fov_deg <= 170.0):
            raise ValueError(f"vertical_fov_deg {self.vertical_fov_deg} must be in [1, 170] degrees")

    @property
    def focal_px(self) -> float:
        """Focal length in pixels."""
        return (self.height / 2) / math.tan(math.radians(self.vertical_fov_deg) / 2)

    def ray_directions(self) -> torch.Tensor:
        """(H * W, 3) float32 unit ray directions in the camera frame, row-major from the top-left pixel."""
        f = self.focal_px
        v, u = torch.meshgrid(torch.arange(self.height, dtype=torch.float64) + 0.5,
                              torch.arange(self.width, dtype=torch.float64) + 0.5, indexing="ij")
        directions = torch.stack([(u - self.width / 2) / f, -(v - self.height / 2) / f,
                                  -torch.ones_like(u)], dim=-1).reshape(-1, 3)
        return (directions / directions.norm(dim=-1, keepdim=True)).float()

    def project(self, points: torch.Tensor, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel coordinates (B, ..., 2) and depth (B, ...) metres of world points (B, ..., 3).

        ``view`` (B, 4, 4) is camera-to-world (the head pose). Points behind the camera get
        depth <= 0 and meaningless pixel coordinates.
        """
        batch = points.shape[0]
        flat = points.reshape(batch, -1, 3)
        rotation, origin = view[:, :3, :3], view[:, :3, 3]
        camera = torch.einsum("bji,bnj->bni", rotation, flat - origin[:, None, :])  # R^T (p - o)
        depth = -camera[..., 2]
        safe = torch.where(depth.abs() > 1e-9, depth, torch.full_like(depth, 1e-9))
        f = self.focal_px
        uv = torch.stack([self.width / 2 + f * camera[..., 0] / safe, self.height / 2 - f * camera[..., 1] / safe], -1)
        return uv.reshape(*points.shape[:-1], 2), depth.reshape(points.shape[:-1])
