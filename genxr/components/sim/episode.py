"""An episode as arrays: tracking, ground truth, object state and rendered frames, per frame.

:func:`record_episode` runs a :class:`~genxr.components.sim.user.ScriptedUser` and renders
its true view; the returned dict is the schema of a data set shard (:data:`FIELDS`).
Hands are in (left, right) order on axis 1; joints in OpenXR order; poses are
(x, y, z, qx, qy, qz, qw) in the STAGE frame (metres).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genxr.components.sim.behaviours import BEHAVIOURS
from genxr.components.sim.geometry import matrix_to_quaternion
from genxr.components.sim.renderer import RenderBatch, Renderer
from genxr.components.sim.scene import Scene
from genxr.components.sim.user import ScriptedUser, SimStep

FIELDS: dict[str, str] = {
    "sample_time_ns": "(T,) int64 sample time of the tracking frame, ns",
    "predicted_display_time_ns": "(T,) int64 predicted display time, ns",
    "head_pose": "(T, 7) float32 reported head pose (position m, quaternion xyzw)",
    "head_tracked": "(T,) uint8 1 while the head is tracked",
    "hand_active": "(T, 2) uint8 is_active of the reported left/right hand",
    "hand_flags": "(T, 2, 26) uint8 reported XrSpaceLocationFlags per joint",
    "hand_positions": "(T, 2, 26, 3) float32 reported joint positions, m",
    "hand_orientations": "(T, 2, 26, 4) float32 reported joint orientations, xyzw",
    "hand_radii": "(T, 2, 26) float32 joint radii, m",
    "true_head_pose": "(T, 7) float32 ground-truth head (camera) pose",
    "true_hand_positions": "(T, 2, 26, 3) float32 ground-truth joint positions, m",
    "true_hand_orientations": "(T, 2, 26, 4) float32 ground-truth joint orientations, xyzw",
    "object_state": "(T, 9) float32 SceneState.vector(): press m, lit, grasped, box xyz, ball xyz",
    "behaviour": "(T,) uint8 index into BEHAVIOUR_NAMES of the running behaviour",
    "rgb": "(T, H, W, 3) uint8 rendered colour image",
    "depth": "(T, H, W) float32 z-buffer depth, m",
    "hand_mask": "(T, H, W) uint8 0 none, 1 left hand, 2 right hand",
    "object_mask": "(T, H, W) uint8 object id (scene.OBJECT_NAMES)",
    "joints_2d": "(T, 2, 26, 2) float32 pixel (u, v) of the true joints",
    "joints_depth": "(T, 2, 26) float32 z-buffer depth of the true joints, m",
}
"""Every per-frame array of an episode, with its shape, dtype and unit."""

BEHAVIOUR_NAMES: tuple[str, ...] = tuple(BEHAVIOURS)


def _pose7(matrix: np.ndarray) -> np.ndarray:
    return np.concatenate([matrix[..., :3, 3], matrix_to_quaternion(matrix[..., :3, :3])], -1)


def render_batch(scene: Scene, steps: Sequence[SimStep]) -> RenderBatch:
    """The :class:`RenderBatch` of the true view of ``steps`` (frames of one episode in ``scene``)."""
    layout = scene.layout
    prims = [scene.primitives(step.state) for step in steps]
    b = len(steps)

    def tile(value: np.ndarray | float) -> torch.Tensor:
        return torch.from_numpy(np.broadcast_to(np.asarray(value, np.float32), (b, *np.shape(value))).copy())

    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([p[key] for p in prims]))

    return RenderBatch(
        view=torch.from_numpy(np.stack([step.head for step in steps]).astype(np.float32)),
        room_min=tile(layout.room_min), room_max=tile(layout.room_max), floor_colours=tile(layout.floor_colours),
        checker_m=tile(layout.checker_m), wall_colour=tile(layout.wall_colour),
        stripe_colour=tile(layout.stripe_colour), stripe_height_m=tile(layout.stripe_height_m),
        ceiling_colour=tile(layout.ceiling_colour),
        boxes=stack("boxes"), box_colours=stack("box_colours"), box_ids=torch.from_numpy(prims[0]["box_ids"]),
        spheres=stack("spheres"), sphere_colours=stack("sphere_colours"),
        sphere_ids=torch.from_numpy(prims[0]["sphere_ids"]),
        hand_joints=torch.from_numpy(np.stack([[h.positions for h in step.hands] for step in steps]).astype(np.float32)),
        hand_radii=torch.from_numpy(np.stack([[h.radii for h in step.hands] for step in steps]).astype(np.float32)),
        hand_visible=torch.ones((b, 2)),
        skin_colour=tile(layout.skin_colour),
    )


def record_episode(user: ScriptedUser, renderer: Renderer, n_frames: int | None = None,
                   batch_size: int = 64) -> dict[str, np.ndarray]:
    """Runs ``user`` for ``n_frames`` (default: its scripted length) and renders every frame in
    batches of ``batch_size``; returns the arrays of :data:`FIELDS`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps = list(user.steps(n_frames))
    rendered: dict[str, list[np.ndarray]] = {k: [] for k in ("rgb", "depth", "hand_mask", "object_mask",
                                                            "joints_2d", "joints_depth")}
    for start in range(0, len(steps), batch_size):
        out = renderer.render(render_batch(user.scene, steps[start:start + batch_size]))
        for key in rendered:
            rendered[key].append(getattr(out, key).numpy())
    frames = [step.frame for step in steps]
    hands = [(f.left_hand, f.right_hand) for f in frames]
    behaviour_index = {name: k for k, name in enumerate(BEHAVIOUR_NAMES)}
    record = {
        "sample_time_ns": np.array([f.sample_time_ns for f in frames], np.int64),
        "predicted_display_time_ns": np.array([f.predicted_display_time_ns for f in frames], np.int64),
        "head_pose": np.array([[*f.head.position, *f.head.orientation] for f in frames], np.float32),
        "head_tracked": np.array([f.head_tracked for f in frames], np.uint8),
        "hand_active": np.array([[h.is_active for h in pair] for pair in hands], np.uint8),
        "hand_flags": np.stack([[h.location_flags for h in pair] for pair in hands]),
        "hand_positions": np.stack([[h.positions for h in pair] for pair in hands]),
        "hand_orientations": np.stack([[h.orientations for h in pair] for pair in hands]),
        "hand_radii": np.stack([[h.radii for h in pair] for pair in hands]),
        "true_head_pose": _pose7(np.stack([step.head for step in steps])).astype(np.float32),
        "true_hand_positions": np.stack([[h.positions for h in step.hands] for step in steps]).astype(np.float32),
        "true_hand_orientations": np.stack([[h.orientations for h in step.hands] for step in steps]).astype(np.float32),
        "object_state": np.stack([step.state.vector() for step in steps]),
        "behaviour": np.array([behaviour_index[step.behaviour] for step in steps], np.uint8),
        **{key: np.concatenate(value) for key, value in rendered.items()},
    }
    return {key: np.ascontiguousarray(record[key]) for key in FIELDS}
