"""Display views: where each eye looks, and through which (possibly asymmetric) frustum.

A headset's PRIMARY_STEREO view configuration gives, every frame, one view per eye: a
pose in the reference space (the eye's position, metres, and orientation) and an
``XrFovf`` - four angles in radians measured from the view's -Z axis: ``angle_left`` and
``angle_down`` are usually negative, ``angle_right`` and ``angle_up`` positive, and they
are rarely symmetric (each eye sees more to its own side). The mono display of a session
without a headset is the special case :meth:`ViewFov.symmetric`.

Conventions (OpenXR): view frame +X right, +Y up, looking down -Z; image rows go down.
The ray through the centre of display pixel (row, col) of a ``width`` x ``height`` view is

    x = c_x + x_ndc * h_x,   y = c_y - y_ndc * h_y,   z = -1

with ``x_ndc = (col + 0.5) / width * 2 - 1`` (likewise ``y_ndc`` for rows),
``c_x = (tan(right) + tan(left)) / 2``, ``h_x = (tan(right) - tan(left)) / 2`` (likewise
up/down). Written as centre + half-extent so that symmetric angles (``c = 0``) give
bit-for-bit the rays of the mono pinhole camera the compositor has always used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genxr.platform.messages import Pose

_MAX_HALF_ANGLE = math.radians(89.0)
"""Angles at or beyond 90 degrees from the view axis have no pinhole projection."""


@dataclass(frozen=True)
class ViewFov:
    """One view's frustum as OpenXR's four angles, radians, from the view's -Z axis."""

    angle_left: float
    angle_right: float
    angle_up: float
    angle_down: float

    def __post_init__(self) -> None:
        for name in ("angle_left", "angle_right", "angle_up", "angle_down"):
            value = getattr(self, name)
            if not (math.isfinite(value) and abs(value) <= _MAX_HALF_ANGLE):
                raise ValueError(f"{name} must be a finite angle within +-89 degrees (radians), got {value!r}")
        if not self.angle_left < self.angle_right:
            raise ValueError(f"angle_left ({self.angle_left}) must be less than angle_right ({self.angle_right})")
        if not self.angle_down < self.angle_up:
            raise ValueError(f"angle_down ({self.angle_down}) must be less than angle_up ({self.angle_up})")

    @classmethod
    def symmetric(cls, vertical_fov_deg: float, width: int, height: int) -> ViewFov:
        """The frustum of a mono pinhole display: ``vertical_fov_deg`` (degrees) over ``height``
        pixels, the same focal length (square pixels) over ``width``."""
        tan_y = math.tan(math.radians(vertical_fov_deg) / 2)
        half_x = math.atan(tan_y * width / height)
        half_y = math.radians(vertical_fov_deg) / 2
        return cls(angle_left=-half_x, angle_right=half_x, angle_up=half_y, angle_down=-half_y)

    def tangents(self) -> tuple[float, float, float, float]:
        """(tan left, tan right, tan up, tan down): the frustum's edges on the z = -1 plane."""
        return (math.tan(self.angle_left), math.tan(self.angle_right),
                math.tan(self.angle_up), math.tan(self.angle_down))

    def pixel_rays(self, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ray_x (1, W), ray_y (H, 1)) float32: the x and y of the rays through the pixel
        centres of a ``width`` x ``height`` image, view frame, on the z = -1 plane (see the
        module docstring; a pixel's ray is ``(ray_x[col], ray_y[row], -1)``)."""
        tan_l, tan_r, tan_u, tan_d = self.tangents()
        xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
        ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
        ray_x = xs * ((tan_r - tan_l) / 2) + (tan_r + tan_l) / 2
        ray_y = -(ys * ((tan_u - tan_d) / 2)) + (tan_u + tan_d) / 2
        return ray_x[None, :], ray_y[:, None]


@dataclass(frozen=True)
class DisplayView:
    """One view to render: the eye's ``pose`` in the reference space and its ``fov``."""

    pose: Pose
    fov: ViewFov
