"""Timewarp compositor: re-project the newest generated frame to the newest head pose.

The world model answers in chunks and its frames are 100+ ms old when shown. Head
rotation must still feel immediate, so every display frame re-projects the newest
:class:`~genxr.platform.messages.WorldFrame` from the head orientation it was generated
for (``R_g``) to the orientation predicted for display (``R_d``). For a pure rotation
this is depth-independent, the homography ``x_src ~ K_src R_g^T R_d K_dst^-1 x_dst``.

Conventions (OpenXR): camera frame +X right, +Y up, looking down -Z; image rows go down.
A display pixel's ray in its camera frame is ``(x * tan(fov_x/2), -y * tan(fov_y/2), -1)``
for normalised device coordinates x, y in [-1, 1] (pixel centres); rotations act on
column vectors and take camera-frame vectors to the reference (world) frame.

Resampling is one bilinear OpenCV ``warpPerspective`` with that homography (as 3x3 pixel
matrices, ``K_src R K_dst^-1``), which also upsamples the model's 64x64 to the display
resolution; edges are clamped (``BORDER_REPLICATE``): rays that leave the generated view
repeat its border pixels instead of showing black. OpenCV works on uint8 in one call; the
same warp as a torch ray grid + ``grid_sample`` is a dozen tensor ops, each releasing and
re-taking the GIL beside a model thread, and several times slower (docs/xr_runtime.md, "Measured").
When a display corner's ray is (nearly) behind the generation camera a homography would
mirror it; those frames take the torch path, which clamps such rays to the border. Translation of the head since generation is not corrected
(that needs depth: positional timewarp is outside this compositor).

Stereo: given :class:`~genxr.xr_runtime.views.DisplayView`s (a headset's eyes, each with
its own orientation and asymmetric OpenXR field of view) the same warp runs once per view
with that view's pixel rays (``ViewFov.pixel_rays``) and orientation ``R_v`` in place of
``R_d``. The world model generates one mono image, so both eyes see it re-projected
without disparity (as if at infinity); the avatar, which is geometry, is drawn per view
from each eye's position and so does have parallax.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genxr.platform.messages import MIN_IMAGE_SIDE, AvatarMotion, DisplayFrame, Pose, WorldFrame
from genxr.platform.units import NS_PER_MS
from genxr.xr_runtime.avatar_overlay import draw_avatar
from genxr.xr_runtime.views import DisplayView, ViewFov

MIN_CORNER_DEPTH = 0.05
"""Least generation-camera depth of a display corner's ray (per unit display depth) for the homography path."""
MIN_RAY_DEPTH = 1e-6
"""Generation-camera depth (per unit display depth) the torch path clamps rays at or behind the camera to."""
GRID_LIMIT_NDC = 4.0
"""Torch-path sampling coordinates are clamped to +-this, source NDC (+-1 = its edges), to stay finite."""
MAX_CACHED_VIEW_FOVS = 16
"""Most per-view pixel-ray sets cached (count); past it the cache is cleared."""


@dataclass(frozen=True)
class CompositorConfig:
    width: int = 256
    """Display width, pixels (per eye)."""
    height: int = 256
    vertical_fov_deg: float = 90.0
    """Vertical field of view of the display camera, degrees."""
    stale_after_ms: float = 500.0
    """A world frame older than this (its content age at display time: :meth:`Compositor.composite`) is stale."""

    def __post_init__(self) -> None:
        if self.width < MIN_IMAGE_SIDE or self.height < MIN_IMAGE_SIDE:
            raise ValueError(f"display size must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels "
                             f"(the smallest DisplayFrame), got {self.width}x{self.height}")
        if not 0 < self.vertical_fov_deg < 180:
            raise ValueError(f"vertical_fov_deg must be in (0, 180), got {self.vertical_fov_deg}")


def display_rays(width: int, height: int, vertical_fov_deg: float) -> torch.Tensor:
    """(H*W, 3) float32 ray directions of a pinhole camera's pixel centres, camera frame (-Z forward)."""
    tan_y = math.tan(math.radians(vertical_fov_deg) / 2)
    tan_x = tan_y * width / height
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    rays = torch.stack([grid_x * tan_x, -grid_y * tan_y, -torch.ones_like(grid_x)], dim=-1)
    return rays.reshape(-1, 3)


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle of a (3, 3) rotation matrix, degrees."""
    cosine = (float(np.trace(rotation)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


class Compositor:
    """Builds :class:`DisplayFrame`s from the newest world frame (see module docstring)."""

    def __init__(self, config: CompositorConfig = CompositorConfig()) -> None:
        self.config = config
        import cv2

        cv2.setNumThreads(1)  # process-wide: the warp is tiny, and the other core belongs to the models
        rays = display_rays(config.width, config.height, config.vertical_fov_deg).reshape(config.height, config.width, 3)
        # A pixel's ray is (ray_x[col], ray_y[row], -1): rotating it is three broadcast sums, far
        # cheaper on a CPU than an (H*W, 3) @ (3, 3) matmul.
        self._ray_x = rays[0, :, 0][None, :]  # (1, W)
        self._ray_y = rays[:, 0, 1][:, None]  # (H, 1)
        self._grid = torch.empty(1, config.height, config.width, 2)  # reused sampling grid, NDC of the source
        self._blank = np.zeros((config.height, config.width, 3), np.uint8)
        self._blank.flags.writeable = False
        self._view_rays: dict[ViewFov, tuple[torch.Tensor, torch.Tensor]] = {}
        """Pixel rays per view frustum: a headset's per-eye FOVs rarely change, so this stays tiny."""

    def warp(self, image: np.ndarray, source_fov_deg: float, relative_rotation: np.ndarray,
             fov: ViewFov | None = None) -> np.ndarray:
        """Re-projects ``image`` (h, w, 3) uint8, seen with vertical FOV ``source_fov_deg``, through
        ``relative_rotation`` = R_g^T R_d (display camera -> generation camera, (3, 3)) into the
        display's symmetric frustum, or into ``fov`` (a view's asymmetric frustum) when given.

        Returns (H, W, 3) uint8 at the display resolution.
        """
        h, w = image.shape[:2]
        tan_y = math.tan(math.radians(source_fov_deg) / 2)
        tan_x = tan_y * w / h
        rotation = np.asarray(relative_rotation, dtype=np.float64)
        x, y = (self._ray_x, self._ray_y) if fov is None else self._rays_for(fov)
        homography = self._homography(x, y, w, h, tan_x, tan_y, rotation)
        if homography is not None:
            import cv2

            return cv2.warpPerspective(np.ascontiguousarray(image), homography, (self.config.width, self.config.height),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        return self._warp_torch(image, tan_x, tan_y, rotation, x, y)

    @staticmethod
    def _homography(x: torch.Tensor, y: torch.Tensor, w: int, h: int, tan_x: float, tan_y: float,
                    rotation: np.ndarray) -> np.ndarray | None:
        """(3, 3) display pixel -> source pixel map ``K_src R K_dst^-1`` (homogeneous, pixel centres
        at integers as OpenCV counts them), or None when a display corner's ray is at or behind
        the generation camera's image plane (a homography would mirror it; the torch path clamps)."""
        width, height = x.shape[1], y.shape[0]
        x0, y0 = float(x[0, 0]), float(y[0, 0])
        dx = (float(x[0, -1]) - x0) / (width - 1) if width > 1 else 0.0
        dy = (float(y[-1, 0]) - y0) / (height - 1) if height > 1 else 0.0
        display_inverse = np.array([[dx, 0.0, x0], [0.0, dy, y0], [0.0, 0.0, -1.0]])  # (col, row, 1) -> ray
        corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
        depth = -(corners @ display_inverse.T @ rotation.T)[:, 2]  # in front of the generation camera: > 0
        if depth.min() < MIN_CORNER_DEPTH:
            return None
        source = np.array([[w / (2 * tan_x), 0.0, -(w / 2 - 0.5)],  # ray (X, Y, Z) -> (u, v) * depth, depth = -Z
                           [0.0, -h / (2 * tan_y), -(h / 2 - 0.5)],
                           [0.0, 0.0, -1.0]])
        return source @ rotation @ display_inverse

    def _warp_torch(self, image: np.ndarray, tan_x: float, tan_y: float, rotation: np.ndarray, x: torch.Tensor,
                    y: torch.Tensor) -> np.ndarray:
        """The same warp as one ``grid_sample``, for rotations that take the view (nearly) behind the
        generation camera: such rays are clamped to the border instead of mirrored."""
        r = [[float(v) for v in row] for row in rotation]

        def rotated(k: int) -> torch.Tensor:  # (H, W) component k of R @ (x, y, -1), generation camera frame
            return x * r[k][0] + y * r[k][1] - r[k][2]

        depth = (-rotated(2)).clamp_min_(MIN_RAY_DEPTH)  # rays behind the camera land far outside: clamped to the border
        grid = self._grid
        torch.div(rotated(0), depth.mul(tan_x), out=grid[0, :, :, 0])
        torch.div(rotated(1), depth.mul_(-tan_y), out=grid[0, :, :, 1])
        grid.clamp_(-GRID_LIMIT_NDC, GRID_LIMIT_NDC)
        source = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]  # (1, 3, h, w), a copy
        warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return warped[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    def _rays_for(self, fov: ViewFov) -> tuple[torch.Tensor, torch.Tensor]:
        rays = self._view_rays.get(fov)
        if rays is None:
            if len(self._view_rays) >= MAX_CACHED_VIEW_FOVS:  # a runtime that changes FOV every frame: keep the newest only
                self._view_rays.clear()
            rays = self._view_rays[fov] = fov.pixel_rays(self.config.width, self.config.height)
        return rays

    def composite(self, frame_id: int, display_time_ns: int, display_head: Pose,
                  world: WorldFrame | None, avatar: AvatarMotion | None = None,
                  views: Sequence[DisplayView] = (), content_sampled_ns: int | None = None) -> DisplayFrame:
        """The display frame for ``display_head`` (the pose predicted for ``display_time_ns``),
        with the avatar's newest motion drawn over the world when there is one.

        With ``views`` (a headset's eyes, reference space) every view is rendered from its own
        pose and frustum into ``DisplayFrame.view_images`` (in the same order); ``image`` is
        then the first view and ``reprojection_deg`` that view's rotation.

        ``content_sampled_ns``: when the tracking ``world`` was generated from was sampled (the
        frame loop knows, by ``world.frame_id``); ``content_age_ns`` and staleness are then
        measured from it, as ``content_age_ms`` of :mod:`genxr.xr_runtime.metrics`. Without it,
        from ``world.generated_for_time_ns``."""
        if views:
            return self._composite_views(frame_id, display_time_ns, world, avatar, views, content_sampled_ns)
        if world is None:
            image = self._blank
            if avatar is not None:
                image = draw_avatar(image, avatar, display_time_ns, display_head, self.config.vertical_fov_deg)
            return DisplayFrame(frame_id=frame_id, display_time_ns=display_time_ns, image=image, stale=True)
        relative = world.head.rotation_matrix().T @ display_head.rotation_matrix()
        image = self.warp(world.image, world.vertical_fov_deg, relative)
        if avatar is not None:
            image = draw_avatar(image, avatar, display_time_ns, display_head, self.config.vertical_fov_deg,
                                in_place=True)
        age_ns = _content_age_ns(display_time_ns, world, content_sampled_ns)
        return DisplayFrame(
            frame_id=frame_id, display_time_ns=display_time_ns, image=_frozen(image), world_frame_id=world.frame_id,
            reprojection_deg=rotation_angle_deg(relative), content_age_ns=age_ns,
            stale=age_ns > self.config.stale_after_ms * NS_PER_MS,
        )

    def _composite_views(self, frame_id: int, display_time_ns: int, world: WorldFrame | None,
                         avatar: AvatarMotion | None, views: Sequence[DisplayView],
                         content_sampled_ns: int | None) -> DisplayFrame:
        images, rotations = [], []
        for view in views:
            if world is None:
                image = self._blank
            else:
                relative = world.head.rotation_matrix().T @ view.pose.rotation_matrix()
                image = self.warp(world.image, world.vertical_fov_deg, relative, fov=view.fov)
                rotations.append(rotation_angle_deg(relative))
            if avatar is not None:
                image = draw_avatar(image, avatar, display_time_ns, view.pose, view.fov, in_place=world is not None)
            images.append(_frozen(image))
        if world is None:
            return DisplayFrame(frame_id=frame_id, display_time_ns=display_time_ns, image=images[0],
                                view_images=images, stale=True)
        age_ns = _content_age_ns(display_time_ns, world, content_sampled_ns)
        return DisplayFrame(
            frame_id=frame_id, display_time_ns=display_time_ns, image=images[0], view_images=images,
            world_frame_id=world.frame_id, reprojection_deg=rotations[0], content_age_ns=age_ns,
            stale=age_ns > self.config.stale_after_ms * NS_PER_MS,
        )


def _content_age_ns(display_time_ns: int, world: WorldFrame, content_sampled_ns: int | None) -> int:
    """How old ``world`` is at ``display_time_ns`` (>= 0): from its tracking's sample time when known."""
    since = world.generated_for_time_ns if content_sampled_ns is None else content_sampled_ns
    return max(0, display_time_ns - since)


def _frozen(image: np.ndarray) -> np.ndarray:
    """``image`` as a read-only C-contiguous array, which a message shares instead of copying:
    the first view is both ``image`` and ``view_images[0]`` of its DisplayFrame."""
    image = np.ascontiguousarray(image)
    image.flags.writeable = False
    return image
