"""Streaming generation with world model v2: :class:`PixelWorldStream` (same API as
:class:`.stream.WorldModelStream`: ``reset(anchor_image, anchor_tracking)``, ``step(frames)``).

Each tracking frame given to :meth:`PixelWorldStream.step` yields exactly one generated
frame, conditioned on the anchor and the last ``context_frames`` *generated* frames (never
a frame twice, never overlapping chunks), each reprojected to the new head pose. The
skeleton image of a frame is drawn once: as the target's conditioning when it is
generated, then kept as the next frame's "previous skeleton" (memoised, not redrawn).
At the start the context is the anchor repeated, as in training.

Bad tracking: a lost hand is invalid joints (its skeleton is empty, its joints zero); the
stream carries on from its own frames and the anchor, so it recovers when tracking returns.
A head pose with a non-finite or zero quaternion is refused by :meth:`step` with the
frame's index, before anything is generated.
"""

from __future__ import annotations

import numpy as np
import torch

from genxr.components.worldmodel.conditioning import Tracking, tracking_from_messages
from genxr.components.worldmodel.pixel_data import (
    condition_images,
    joint_features,
    one_frame,
    prior_of,
    skeleton,
    to_images,
)
from genxr.components.worldmodel.pixel_unet import PixelWorldModel
from genxr.platform.messages import TrackingFrame


class PixelWorldStream:
    """Frames from tracking, one per tracking frame (see the module docstring).

    ``steps`` Euler steps per frame (1-3); ``noise_scale`` in [0, 1] multiplies the starting
    noise (0, the default: a deterministic function of the anchor and the tracking)."""

    def __init__(self, model: PixelWorldModel, steps: int = 1, seed: int = 0, noise_scale: float = 0.0) -> None:
        if not 0.0 <= noise_scale <= 1.0:
            raise ValueError(f"noise_scale {noise_scale!r} must be in [0, 1] (1 = trained noise, 0 = deterministic)")
        if steps < 1:
            raise ValueError(f"steps {steps!r} must be at least 1")
        self.model = model.eval()
        self.steps, self.noise_scale = steps, noise_scale
        self.generator = torch.Generator().manual_seed(seed)
        self.reference: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None
        self.anchor_pose: torch.Tensor | None = None
        self.context: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.previous_skeleton: torch.Tensor | None = None
        self.frames_generated = 0

    chunk_frames = 1
    """Frames per model call (the API of :class:`.stream.WorldModelStream`)."""

    def _tracking(self, frames: list[TrackingFrame] | Tracking) -> Tracking:
        if isinstance(frames, Tracking):
            return Tracking(frames.head_pose, frames.hand_positions, frames.joint_valid, self.reference)
        return tracking_from_messages(list(frames), self.reference)

    @torch.no_grad()
    def reset(self, anchor_image: np.ndarray, anchor_tracking: TrackingFrame | Tracking) -> None:
        """Starts over from ``anchor_image`` (H, W, 3) uint8 seen at ``anchor_tracking`` (one frame)."""
        resolution = self.model.config.resolution
        if tuple(np.shape(anchor_image)) != (resolution, resolution, 3):
            raise ValueError(f"anchor_image shape {np.shape(anchor_image)} must be ({resolution}, {resolution}, 3)")
        if isinstance(anchor_tracking, Tracking):
            self.reference = anchor_tracking.head_pose[:, 0].clone()
            tracking = self._tracking(anchor_tracking.frames(0, 1))
        else:
            head = anchor_tracking.head
            self.reference = torch.tensor([[*head.position, *head.orientation]], dtype=torch.float32)
            tracking = self._tracking([anchor_tracking])
        self.anchor = torch.from_numpy(np.array(anchor_image, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
        self.anchor_pose = tracking.head_pose[:, 0]
        self.context = [(self.anchor, self.anchor_pose)] * self.model.config.context_frames
        self.previous_skeleton = skeleton(tracking, self.model.config) if self.model.config.use_skeleton else None
        self.frames_generated = 0

    @torch.no_grad()
    def step(self, tracking_frames: list[TrackingFrame] | Tracking) -> np.ndarray:
        """Generates one frame per tracking frame given: (f, H, W, 3) uint8."""
        if self.anchor is None:
            raise RuntimeError("call reset(anchor_image, anchor_tracking) before step()")
        tracking = self._tracking(tracking_frames)
        quaternion_norm = tracking.head_pose[0, :, 3:].norm(dim=-1)
        bad = ~torch.isfinite(tracking.head_pose[0]).all(-1) | (quaternion_norm < 1e-6)
        if bad.any():
            index = int(bad.nonzero()[0])
            raise ValueError(f"tracking frame {index}: head pose {tracking.head_pose[0, index].tolist()} is not a "
                             "finite pose with a non-zero quaternion")
        config = self.model.config
        out = []
        for index in range(tracking.head_pose.shape[1]):
            frame = one_frame(tracking, index)
            pose = frame.head_pose[:, 0]
            target_skeleton = skeleton(frame, config) if config.use_skeleton else None
            context = torch.stack([image for image, _ in self.context], 1)
            poses = torch.stack([p for _, p in self.context], 1)
            condition = condition_images(config, self.anchor, self.anchor_pose, context, poses, pose,
                                         target_skeleton, self.previous_skeleton)
            noise = torch.randn((1, 3, config.resolution, config.resolution), generator=self.generator)
            x = self.model.sample(condition, joint_features(frame) if config.use_joints else None, self.steps,
                                  noise * self.noise_scale)
            image = to_images(prior_of(condition) + x)
            self.context = self.context[1:] + [(image, pose)]
            self.previous_skeleton = target_skeleton
            out.append(image[0])
        self.frames_generated += len(out)
        return (torch.stack(out).permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()
