"""The anchor frame reprojected to every frame's reported head pose: the world model's geometric prior.

The stream starts from one observed frame (the anchor) and must show the same room from
the head poses that follow. Most of what changes between frames is the view moving, and
that part is geometry, not something a small model should spend its capacity (and the
CPU budget) on learning from data: the anchor image, warped by the homography of the
head's motion since the anchor, already predicts the new frame far better than repeating
the anchor does (both scored on training episodes: docs/worldmodel.md, "Conditioning").

The homography assumes a fronto-parallel plane ``plane_depth_m`` in front of each frame's
camera (a plane-induced homography, Hartley & Zisserman 13.1): exact for any rotation,
approximate for translation (parallax of nearer or farther surfaces is left for the model).
The default depth, 2 m, was chosen on training episodes (docs/worldmodel.md, "Conditioning").
Pixels that the anchor did not see take the nearest edge pixel (border padding).

The world model then works in the space of *corrections to the prior*: its latents are the
frame's latents minus the reprojected anchor's (:func:`prior_relative`), and the prior's
latents are also given to it per frame, concatenated on channels. Predicting zero returns
the reprojection; what the model has to learn is what geometry cannot give: hands, the
button, moved objects, disocclusions, parallax. Generated Reality itself conditions on
Plucker rays only (kept here as well); this prior is genxr's addition for a model that
must learn on a CPU budget, and it can be switched off (``ConditioningConfig.reprojection``).

Conventions as :mod:`genxr.components.sim.camera`: OpenXR view space (+X right, +Y up,
-Z forward), pixels (u right, v down) from the top-left corner, square pixels.

Why not OpenCV's ``warpPerspective`` (used by the compositor's timewarp): training warps
batches of clips at once and the ONNX-exported stream keeps everything in torch, so this
is one batched ``torch.nn.functional.grid_sample``; on a 64x64 frame the two agree to
bilinear rounding (tested).
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import torch
from torch.nn import functional as F

from genxr.components.worldmodel.codec import FrameCodec
from genxr.components.worldmodel.conditioning import ConditioningConfig, Tracking, quaternion_matrix


@functools.lru_cache(maxsize=8)
def intrinsics(resolution: int, vertical_fov_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 3) matrix P taking a camera-frame direction (x, y, z) to homogeneous pixels (u, v, 1) * (-z),
    and its inverse (float64; cached, a stream asks for the same camera every chunk)."""
    f = (resolution / 2) / math.tan(math.radians(vertical_fov_deg) / 2)
    c = resolution / 2
    p = torch.tensor([[f, 0.0, -c], [0.0, -f, -c], [0.0, 0.0, -1.0]], dtype=torch.float64)
    return p, torch.linalg.inv(p)


def plane_homographies(reference: torch.Tensor, head_pose: torch.Tensor, resolution: int, vertical_fov_deg: float,
                       plane_depth_m: float) -> torch.Tensor:
    """(B, F, 3, 3) homographies taking pixels of each frame (pose ``head_pose`` (B, F, 7), STAGE space,
    position m then quaternion x, y, z, w) to pixels of the reference image (pose ``reference`` (B, 7)),
    for points on the plane ``plane_depth_m`` in front of the frame's camera (``inf``: rotation only)."""
    ref_rotation = quaternion_matrix(reference[:, 3:]).double()  # reference camera -> STAGE
    rotation = quaternion_matrix(head_pose[..., 3:]).double()  # frame camera -> STAGE
    relative = torch.einsum("bji,bfjk->bfik", ref_rotation, rotation)  # frame camera -> reference camera
    offset = torch.einsum("bji,bfj->bfi", ref_rotation, (head_pose[..., :3] - reference[:, None, :3]).double())
    # X_ref = R X + t; on the plane n.X = d with n = (0, 0, -1): X_ref = (R + t n^T / d) X
    normal = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    inverse_depth = 0.0 if math.isinf(plane_depth_m) else 1.0 / plane_depth_m
    h = relative + offset[..., :, None] * normal * inverse_depth
    p, p_inverse = intrinsics(resolution, vertical_fov_deg)
    return (p @ h @ p_inverse).float()


def reproject(images: torch.Tensor, homographies: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) seen from each frame: (B, F, 3, H, W); ``homographies`` (B, F, 3, 3) take a
    frame's pixel to the source image's pixel (bilinear sampling, border padding)."""
    b, channels, height, width = images.shape
    frames = homographies.shape[1]
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    pixels = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)  # (H W, 3)
    source = torch.einsum("bfij,nj->bfni", homographies, pixels)
    source = source[..., :2] / source[..., 2:].clamp_min(1e-6)  # behind the source camera: far outside
    grid = torch.stack([source[..., 0] / width * 2 - 1, source[..., 1] / height * 2 - 1], -1)
    grid = grid.reshape(b * frames, height, width, 2)
    expanded = images[:, None].expand(b, frames, channels, height, width).reshape(b * frames, channels, height, width)
    warped = F.grid_sample(expanded, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return warped.reshape(b, frames, channels, height, width)


def attach_prior(codec: FrameCodec, anchor_images: torch.Tensor, tracking: Tracking, conditioning: ConditioningConfig
                 ) -> tuple[Tracking, torch.Tensor]:
    """``tracking`` with its ``prior`` latents (B, F, C, h, w) filled in, and the prior's pixels
    (B, F, 3, H, W) in [0, 1]: the anchor ``anchor_images`` (B, 3, H, W) reprojected to every frame's
    head pose, or, with ``conditioning.reprojection`` off, the anchor itself repeated."""
    b, frames = tracking.head_pose.shape[:2]
    if conditioning.reprojection:
        homographies = plane_homographies(tracking.reference, tracking.head_pose, anchor_images.shape[-1],
                                          conditioning.vertical_fov_deg, conditioning.plane_depth_m)
        pixels = reproject(anchor_images, homographies)
    else:
        pixels = anchor_images[:, None].expand(b, frames, *anchor_images.shape[1:])
    with torch.no_grad():
        latents = codec.encode(pixels.flatten(0, 1))
    prior = latents.reshape(b, frames, *latents.shape[1:])
    return replace(tracking, prior=prior), pixels


def prior_relative(latents: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The diffusion models' data space: clip latents (B, F, C, h, w) whose first frame is the anchor
    become the anchor (unchanged, the clean context) followed by each later frame minus its prior
    (B, F, C, h, w; :func:`attach_prior`). A model that predicts zeros reproduces the prior."""
    return torch.cat([latents[:, :1], latents[:, 1:] - prior[:, 1:]], 1)


def frames_from(codec: FrameCodec, corrections: torch.Tensor, prior_pixels: torch.Tensor) -> torch.Tensor:
    """Images (B, T, 3, H, W) in [0, 1] of generated ``corrections`` (B, T, C, h, w): the prior's own pixels
    (B, T, 3, H, W) plus the decoded correction. Adding to the prior's pixels rather than decoding
    prior latents + correction keeps the detail the codec's 16 components drop (docs/worldmodel.md,
    "Teacher and student")."""
    change = codec.decode_change(corrections.flatten(0, 1)).reshape(prior_pixels.shape)
    return (prior_pixels + change).clamp(0.0, 1.0)
