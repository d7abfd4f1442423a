"""Conditioning images and training batches of world model v2 (:mod:`.pixel_unet`).

Images here are float (B, 3, H, W) in [0, 1] at the boundary and [-1, 1] inside the model
(:func:`to_model`). Poses are (B, 7): position (m) then quaternion (x, y, z, w), STAGE space.
A training example is what one streaming step sees: the anchor, the ``context_frames``
frames before the target (the anchor itself where the stream has not produced that many
yet), the target's tracking and the previous frame's, taken every ``frame_stride``
simulator frames (:mod:`.data`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genxr.components.sim.layout import BALL_ID, BOX_ID, BUTTON_ID
from genxr.components.worldmodel.conditioning import Tracking, camera_frame_joints, tracking_from_arrays
from genxr.components.worldmodel.data import Episodes, images_of
from genxr.components.worldmodel.pixel_unet import PixelWorldConfig, draw_skeleton_depth
from genxr.components.worldmodel.reprojection import plane_homographies, reproject

PIXEL_FIELDS = ("rgb", "head_pose", "hand_positions", "hand_flags", "hand_active", "hand_mask", "object_mask",
                "object_state")
INTERACTED_OBJECTS = (BUTTON_ID, BOX_ID, BALL_ID)
LIT_INDEX = 1
OBJECT_POSITION_SLICE = slice(3, 9)
"""Entries of ``object_state`` (:data:`genxr.components.sim.layout.STATE_FIELDS`): the button's lit flag, and
the box's and ball's positions (m)."""
MOVING_OBJECT_M = 1e-3
"""Smallest object displacement between simulator frames (m) that counts as the object moving."""


def to_model(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return images * 2.0 - 1.0


def to_images(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def reprojected_to(images: torch.Tensor, poses: torch.Tensor, target_pose: torch.Tensor, config: PixelWorldConfig
                   ) -> torch.Tensor:
    """``images`` (B, 3, H, W) seen at ``poses`` (B, 7), warped to ``target_pose`` (B, 7): (B, 3, H, W)."""
    homographies = plane_homographies(poses, target_pose[:, None], images.shape[-1], config.vertical_fov_deg,
                                      config.plane_depth_m)
    return reproject(images, homographies)[:, 0]


def one_frame(tracking: Tracking, index: int) -> Tracking:
    """Frame ``index`` of ``tracking`` as a one-frame :class:`Tracking` (same reference)."""
    return tracking.frames(index, index + 1)


def skeleton(tracking: Tracking, config: PixelWorldConfig) -> torch.Tensor:
    """(B, 4, H, W) skeleton channels of a one-frame ``tracking`` (:func:`.pixel_unet.draw_skeleton_depth`)."""
    return draw_skeleton_depth(tracking, config.resolution, config.vertical_fov_deg,
                               config.skeleton_samples_per_bone)[:, 0]


def joint_features(tracking: Tracking) -> torch.Tensor:
    """(B, 208) joints of a one-frame ``tracking`` in its camera frame (m) with validity flags."""
    return torch.cat([camera_frame_joints(tracking), tracking.joint_valid[..., None]], -1)[:, 0].flatten(1)


def prior_of(condition: torch.Tensor) -> torch.Tensor:
    """The reprojected anchor (B, 3, H, W) in [-1, 1]: the first three channels of ``condition``, to which the
    model's output (a correction, :mod:`.pixel_unet`) is added."""
    return condition[:, :3]


def condition_images(config: PixelWorldConfig, anchor: torch.Tensor, anchor_pose: torch.Tensor,
                     context: torch.Tensor, context_poses: torch.Tensor, target_pose: torch.Tensor,
                     target_skeleton: torch.Tensor | None, previous_skeleton: torch.Tensor | None) -> torch.Tensor:
    """(B, in_channels - 3, H, W) conditioning of one step: the anchor (B, 3, H, W) and the context
    frames (B, K, 3, H, W) in [0, 1], reprojected from their poses (B, 7) / (B, K, 7) to ``target_pose``,
    in [-1, 1]; then the skeleton channels (:func:`skeleton`) if the model uses them."""
    parts = [to_model(reprojected_to(anchor, anchor_pose, target_pose, config))]
    parts += [to_model(reprojected_to(context[:, k], context_poses[:, k], target_pose, config))
              for k in range(context.shape[1])]
    if config.use_skeleton:
        parts += [target_skeleton, previous_skeleton[:, :2]]
    return torch.cat(parts, 1)


@dataclass
class PixelBatch:
    """One training batch: targets (B, 3, H, W) - the frame minus the reprojected anchor, both in [-1, 1]
    units (:func:`prior_of`) - their conditioning, joint features and per-pixel loss weights (B, 1, H, W)."""

    target: torch.Tensor
    condition: torch.Tensor
    joints: torch.Tensor
    weight: torch.Tensor


def event_frames(episodes: Episodes) -> np.ndarray:
    """(N, 2) (episode, frame) pairs where something happens that a frame rarely shows: the button lit,
    or the box or ball moving. Training draws part of each batch from them (:func:`training_batch`)."""
    state = episodes.arrays["object_state"]
    lit = state[..., LIT_INDEX] > 0.5
    positions = state[..., OBJECT_POSITION_SLICE]
    moving = np.zeros_like(lit)
    moving[:, 1:] = np.abs(np.diff(positions, axis=1)).max(-1) > MOVING_OBJECT_M
    return np.argwhere(lit | moving)


def _example_indices(episodes: Episodes, context_frames: int, stride: int, max_gap: int,
                     rng: np.random.Generator, events: np.ndarray | None) -> tuple[int, int, int, list[int]]:
    """(episode, anchor, target, context) simulator-frame indices of one random example; its target one of
    ``events`` (:func:`event_frames`) if given."""
    gap = int(rng.integers(max_gap + 1))
    span = (1 + gap) * stride
    if span >= episodes.frames:
        raise ValueError(f"episodes of {episodes.frames} frames are too short for an anchor-target span of {span}")
    if events is not None and len(events):
        episode, target = (int(v) for v in events[rng.integers(len(events))])
        target = max(target, span)
        anchor = target - span
    else:
        episode = int(rng.integers(episodes.count))
        anchor = int(rng.integers(episodes.frames - span))
        target = anchor + span
    context = [max(anchor, target - (context_frames - k) * stride) for k in range(context_frames)]
    return episode, anchor, target, context


def training_batch(episodes: Episodes, config: PixelWorldConfig, batch: int, stride: int, max_gap: int,
                   rng: np.random.Generator, hand_weight: float, object_weight: float,
                   events: np.ndarray | None = None, event_fraction: float = 0.0) -> PixelBatch:
    """``batch`` random examples (teacher forcing: the context is ground truth, noised by up to
    ``config.context_noise_max``), a share ``event_fraction`` of them with targets among ``events``
    (:func:`event_frames`). Loss weights: 1, plus ``hand_weight`` on pixels where a hand is or was in
    the previous context frame, plus ``object_weight`` on the button, box and ball."""
    targets, conditions, joints, weights = [], [], [], []
    for _ in range(batch):
        chosen = events if rng.random() < event_fraction else None
        e, anchor, target, context = _example_indices(episodes, config.context_frames, stride, max_gap, rng, chosen)
        a = episodes.arrays
        index = [anchor, *context, target]
        tracking = tracking_from_arrays(a["head_pose"][e, index], a["hand_positions"][e, index],
                                        a["hand_flags"][e, index], a["hand_active"][e, index])
        images = images_of(a["rgb"][e, index])
        poses = tracking.head_pose[0]
        k = config.context_frames
        noise_level = float(rng.uniform(0.0, config.context_noise_max))
        context_images = (images[1:1 + k] + torch.from_numpy(
            rng.standard_normal(images[1:1 + k].shape).astype(np.float32)) * noise_level / 2.0).clamp(0.0, 1.0)
        target_tracking, previous_tracking = one_frame(tracking, k + 1), one_frame(tracking, k)
        skeletons = (skeleton(target_tracking, config), skeleton(previous_tracking, config)) \
            if config.use_skeleton else (None, None)
        conditions.append(condition_images(config, images[:1], poses[:1], context_images[None], poses[None, 1:1 + k],
                                           poses[k + 1:], *skeletons))
        joints.append(joint_features(target_tracking))
        targets.append(to_model(images[k + 1:]) - prior_of(conditions[-1]))
        hands = (a["hand_mask"][e, target] > 0) | (a["hand_mask"][e, context[-1]] > 0)
        objects = np.isin(a["object_mask"][e, target], INTERACTED_OBJECTS)
        weights.append(torch.from_numpy(1.0 + hand_weight * hands + object_weight * objects).float()[None, None])
    return PixelBatch(torch.cat(targets), torch.cat(conditions), torch.cat(joints), torch.cat(weights))
