"""Head and hand conditioning, as in Generated Reality: Plucker ray maps, a 2D hand-skeleton
image in the user's view, and the 3D joints in the camera frame.

Inputs are a :class:`Tracking` of tensors per frame of a clip (B clips, F frames):

* ``head_pose`` (B, F, 7): reported head (camera) pose in STAGE space, position (m) then
  quaternion (x, y, z, w);
* ``hand_positions`` (B, F, 2, 26, 3): reported joints (left, right; OpenXR joint order), m;
* ``joint_valid`` (B, F, 2, 26): 1 where the hand is active and the joint position valid;
  lost tracking is this mask going to 0 - positions there are ignored, never trusted;
* ``reference`` (B, 7): the stream's reference pose (its first frame); ray maps are relative to it;
* ``prior`` (B, F, C, h, w) or None: latents of the anchor image reprojected to each frame's
  head pose (:mod:`.reprojection`), filled in by :func:`.reprojection.attach_prior`.

Paths (each switchable in :class:`ConditioningConfig`, for ablations):

1. camera: per transformer token, the Plucker coordinates ``[o x d, d]`` of an r x r grid of
   rays through the token's pixels, expressed in the reference camera's frame (OpenXR view
   space: +Y up, -Z forward), embedded by an MLP and ADDED to the token;
2. skeleton: the tracked bones projected with the reported head pose and drawn (Gaussian
   falloff, one channel per hand) into an image of the user's view, encoded by strided
   convs to the latent grid and CONCATENATED on channels with the video latents;
3. joints: both hands' joints in the camera frame with their validity flags (2 x 26 x 4
   numbers per frame) embedded by an MLP and ADDED to every token of the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated

import numpy as np
import torch
from pydantic import ConfigDict, Field, PositiveFloat, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn

from genxr.platform.messages import LocationFlags, TrackingFrame

JOINTS = 26
BONES: tuple[tuple[int, int], ...] = ((0, 1),) + tuple(
    pair for chain in ((1, 2, 3, 4, 5), (1, 6, 7, 8, 9, 10), (1, 11, 12, 13, 14, 15), (1, 16, 17, 18, 19, 20),
                       (1, 21, 22, 23, 24, 25))
    for pair in pairwise(chain))
"""(parent, child) OpenXR joint indices: palm-wrist, then wrist to each finger tip (25 bones)."""


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ConditioningConfig:
    """Which paths are on, their sizes, and the camera model the frames were rendered with (validated)."""

    use_camera: bool = True
    use_skeleton: bool = True
    use_joints: bool = True
    reprojection: bool = True
    plane_depth_m: PositiveFloat = 2.0
    vertical_fov_deg: Annotated[float, Field(gt=0.0, lt=180.0)] = 80.0
    rays_per_token: PositiveInt = 4
    skeleton_resolution: PositiveInt = 32
    skeleton_channels: PositiveInt = 8
    skeleton_samples_per_bone: PositiveInt = 8


@dataclass
class Tracking:
    """Tensors of a clip's tracking, and the geometric prior derived from it (shapes in the module docstring)."""

    head_pose: torch.Tensor
    hand_positions: torch.Tensor
    joint_valid: torch.Tensor
    reference: torch.Tensor
    prior: torch.Tensor | None = None

    def frames(self, start: int, stop: int) -> Tracking:
        """Frames ``start:stop`` with the same reference."""
        return self.select(slice(start, stop))

    def then(self, later: Tracking) -> Tracking:
        """These frames followed by ``later``'s (same reference; the prior is kept only if both have one)."""
        prior = None if self.prior is None or later.prior is None else torch.cat([self.prior, later.prior], 1)
        return Tracking(torch.cat([self.head_pose, later.head_pose], 1),
                        torch.cat([self.hand_positions, later.hand_positions], 1),
                        torch.cat([self.joint_valid, later.joint_valid], 1), self.reference, prior)

    def select(self, index: slice | list[int]) -> Tracking:
        """The frames ``index`` (a slice or a list of frame indices) with the same reference."""
        return Tracking(self.head_pose[:, index], self.hand_positions[:, index], self.joint_valid[:, index],
                        self.reference, None if self.prior is None else self.prior[:, index])


def quaternion_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations from (..., 4) quaternions (x, y, z, w), normalised first."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    x, y, z, w = q.unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).reshape(*q.shape[:-1], 3, 3)


def tracking_from_arrays(head_pose: np.ndarray, hand_positions: np.ndarray, hand_flags: np.ndarray,
                         hand_active: np.ndarray) -> Tracking:
    """A :class:`Tracking` of one clip (batch 1) from data set arrays (F, 7), (F, 2, 26, 3), (F, 2, 26), (F, 2);
    the reference is the first frame."""
    valid = ((hand_flags & int(LocationFlags.POSITION_VALID)) != 0) & (hand_active[..., None] != 0)
    head = torch.as_tensor(head_pose, dtype=torch.float32)[None]
    return Tracking(head, torch.as_tensor(hand_positions, dtype=torch.float32)[None],
                    torch.as_tensor(valid, dtype=torch.float32)[None], head[:, 0].clone())


def tracking_from_messages(frames: list[TrackingFrame], reference: torch.Tensor) -> Tracking:
    """A :class:`Tracking` (batch 1) of ``frames``; a missing or inactive hand has all joints invalid."""
    heads, positions, valid = [], [], []
    for frame in frames:
        heads.append([*frame.head.position, *frame.head.orientation])
        hands_p, hands_v = [], []
        for hand in (frame.left_hand, frame.right_hand):
            if hand is None or not hand.is_active:
                hands_p.append(np.zeros((JOINTS, 3), np.float32))
                hands_v.append(np.zeros(JOINTS, np.float32))
            else:
                hands_p.append(hand.positions)
                hands_v.append(((hand.location_flags & int(LocationFlags.POSITION_VALID)) != 0).astype(np.float32))
        positions.append(hands_p)
        valid.append(hands_v)
    return Tracking(torch.tensor(np.asarray(heads), dtype=torch.float32)[None],
                    torch.tensor(np.asarray(positions), dtype=torch.float32)[None],
                    torch.tensor(np.asarray(valid), dtype=torch.float32)[None], reference.reshape(1, 7).float())


def camera_directions(grid: int, rays_per_token: int, vertical_fov_deg: float) -> torch.Tensor:
    """(grid * grid, r * r, 3) unit ray directions (camera frame) through an r x r sub-grid of each
    token's square of the image, tokens row-major from the top-left (square image)."""
    n = grid * rays_per_token
    centres = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2.0 - 1.0  # -1..1 across the image
    tan_half = math.tan(math.radians(vertical_fov_deg) / 2)
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    directions = torch.stack([u * tan_half, -v * tan_half, -torch.ones_like(u)], -1)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    directions = directions.reshape(grid, rays_per_token, grid, rays_per_token, 3).permute(0, 2, 1, 3, 4)
    return directions.reshape(grid * grid, rays_per_token * rays_per_token, 3)


def plucker_rays(tracking: Tracking, directions: torch.Tensor) -> torch.Tensor:
    """(B, F, N, R * 6) Plucker coordinates ``[o x d, d]`` in the reference frame of the rays
    ``directions`` (N, R, 3) of every frame's camera."""
    ref_rotation = quaternion_matrix(tracking.reference[:, 3:])  # (B, 3, 3) reference -> STAGE
    rotation = quaternion_matrix(tracking.head_pose[..., 3:])  # (B, F, 3, 3) camera -> STAGE
    relative = torch.einsum("bji,bfjk->bfik", ref_rotation, rotation)  # camera -> reference
    origin = torch.einsum("bji,bfj->bfi", ref_rotation, tracking.head_pose[..., :3] - tracking.reference[:, None, :3])
    d = torch.einsum("bfij,nrj->bfnri", relative, directions)
    o = origin[:, :, None, None, :].expand_as(d)
    return torch.cat([torch.linalg.cross(o, d), d], -1).flatten(-2)


def camera_frame_joints(tracking: Tracking) -> torch.Tensor:
    """(B, F, 2, 26, 3) joints in the reporting camera's frame (OpenXR view space), 0 where invalid."""
    rotation = quaternion_matrix(tracking.head_pose[..., 3:])
    local = torch.einsum("bfji,bfhnj->bfhni", rotation, tracking.hand_positions - tracking.head_pose[..., None, None, :3])
    return local * tracking.joint_valid[..., None]


def draw_skeleton(tracking: Tracking, resolution: int, vertical_fov_deg: float, samples_per_bone: int) -> torch.Tensor:
    """(B, F, 2, resolution, resolution) binary images of each hand's valid bones (both ends valid and
    in front of the camera) projected with the reported head pose: ``samples_per_bone`` points along
    every bone are splatted to their nearest pixel (a scatter, O(bones) rather than O(pixels x bones))."""
    joints = camera_frame_joints(tracking)
    depth = -joints[..., 2]
    focal = (resolution / 2) / math.tan(math.radians(vertical_fov_deg) / 2)
    safe = depth.clamp_min(1e-3)
    uv = torch.stack([resolution / 2 + focal * joints[..., 0] / safe, resolution / 2 - focal * joints[..., 1] / safe], -1)
    ok = (tracking.joint_valid > 0) & (depth > 0.05)
    parent, child = (torch.tensor(index) for index in zip(*BONES))
    t = torch.linspace(0.0, 1.0, samples_per_bone)[:, None]
    a, b = uv[..., parent, None, :], uv[..., child, None, :]  # (B, F, 2, 25, 1, 2)
    points = (a + t * (b - a)).floor().long()  # (B, F, 2, 25, S, 2)
    inside = ((points >= 0) & (points < resolution)).all(-1) & (ok[..., parent] & ok[..., child])[..., None]
    batch, frames = uv.shape[:2]
    image = torch.zeros(batch * frames * 2, resolution * resolution)
    plane = torch.arange(batch * frames * 2).reshape(batch, frames, 2, 1, 1).expand_as(inside)
    pixel = points[..., 1] * resolution + points[..., 0]
    image[plane[inside], pixel[inside]] = 1.0
    return image.reshape(batch, frames, 2, resolution, resolution)


class ConditionEncoder(nn.Module):
    """Learned parts of the three paths: ``token_bias`` (added) and ``skeleton_latents`` (concatenated)."""

    def __init__(self, config: ConditioningConfig, width: int, token_grid: int, latent_size: int) -> None:
        super().__init__()
        self.config = config
        self.token_grid = token_grid
        if config.use_camera:
            self.register_buffer("directions", camera_directions(token_grid, config.rays_per_token,
                                                                 config.vertical_fov_deg), persistent=False)
            rays = 6 * config.rays_per_token ** 2
            self.camera = nn.Sequential(nn.Linear(rays, width), nn.SiLU(), nn.Linear(width, width))
        if config.use_joints:
            self.joints = nn.Sequential(nn.Linear(2 * JOINTS * 4, width), nn.SiLU(), nn.Linear(width, width))
        if config.use_skeleton:
            stages = int(math.log2(config.skeleton_resolution // latent_size))
            if 2 ** stages * latent_size != config.skeleton_resolution:
                raise ValueError(f"skeleton_resolution {config.skeleton_resolution} must be latent_size {latent_size} "
                                 "times a power of two")
            layers: list[nn.Module] = []
            channels = 2
            for _ in range(stages):
                layers += [nn.Conv2d(channels, config.skeleton_channels, 4, stride=2, padding=1), nn.SiLU()]
                channels = config.skeleton_channels
            layers.append(nn.Conv2d(channels, config.skeleton_channels, 3, padding=1))
            self.skeleton = nn.Sequential(*layers)

    @property
    def extra_channels(self) -> int:
        """Channels concatenated to the latents (0 with the skeleton path off)."""
        return self.config.skeleton_channels if self.config.use_skeleton else 0

    def skeleton_latents(self, tracking: Tracking) -> torch.Tensor | None:
        """(B, F, skeleton_channels, h, w) encoded skeleton images, or None with the path off."""
        if not self.config.use_skeleton:
            return None
        c = self.config
        images = draw_skeleton(tracking, c.skeleton_resolution, c.vertical_fov_deg, c.skeleton_samples_per_bone)
        b, f = images.shape[:2]
        encoded = self.skeleton(images.flatten(0, 1))
        return encoded.reshape(b, f, *encoded.shape[1:])

    def token_bias(self, tracking: Tracking) -> torch.Tensor | None:
        """(B, F, N, width) camera + joint embeddings added to the tokens, or None with both off."""
        bias = None
        if self.config.use_camera:
            bias = self.camera(plucker_rays(tracking, self.directions))
        if self.config.use_joints:
            features = torch.cat([camera_frame_joints(tracking), tracking.joint_valid[..., None]], -1).flatten(2)
            joint = self.joints(features)[:, :, None, :]
            bias = joint if bias is None else bias + joint
        return bias
