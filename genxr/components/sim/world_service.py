"""The ground-truth world service: the simulator's room, driven by the tracked hands, rendered.

A world model answers a :class:`~genxr.platform.messages.WorldFrameRequest` (recent
tracking frames) with a :class:`~genxr.platform.messages.WorldFrame`. This service gives
the exact answer instead of a learned one: it keeps its own copy of the seeded room
(:class:`~genxr.components.sim.scene.Scene`), steps its contact logic with the hands as
tracked (so what the user's hands do to the button, box and ball happens here too), and
ray-casts the view from the newest head pose with the simulator's renderer. It is what the
world model is judged against, a "ground truth" condition for user studies, and the world
of a session when no world-model checkpoint is loaded. It is not a model and says so in
``WorldFrame.model`` ("ground_truth").

Frames: the room and all poses are in the STAGE reference space (metres, +Y up); the
image is rendered with the renderer's pinhole camera (OpenXR convention, -Z forward).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from genxr.components.sim.episode import render_batch
from genxr.components.sim.geometry import quaternion_to_matrix
from genxr.components.sim.hand import HandPose
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.scene import Scene
from genxr.components.sim.user import SimStep
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, TrackingFrame, WorldFrame, WorldFrameRequest
from genxr.platform.units import NS_PER_S

MODEL_NAME = "ground_truth"

FIRST_STEP_RATE_HZ = 90
"""The first tracking frame (no earlier one to measure from) steps the room one period of this rate."""
MAX_STEP_S = 0.1
"""Longest single room step, seconds: a gap in the tracking is not simulated as one long step."""
HIDDEN_HAND_RADIUS_M = 0.01
"""Joint radius of the placeholder hands drawn (not visible) when a request has no hand data, metres."""


def hand_pose_of(hand: HandJoints) -> HandPose:
    """The simulator's :class:`HandPose` (world frame) of a tracked hand."""
    rotations = quaternion_to_matrix(hand.orientations.astype(np.float64))
    return HandPose(side=hand.hand, positions=hand.positions.astype(np.float64), rotations=rotations,
                    radii=hand.radii.astype(np.float64))


def _tracked_hands(frame: TrackingFrame) -> list[HandPose]:
    return [hand_pose_of(h) for h in (frame.left_hand, frame.right_hand) if h is not None and h.is_active]


class GroundTruthWorld:
    """Callable world service (see module docstring); thread-safe, one per session."""

    def __init__(self, seed: int = 0, renderer: RendererConfig | None = None) -> None:
        self.scene = Scene(seed)
        self.renderer = Renderer(renderer or RendererConfig())
        self._last_frame: TrackingFrame | None = None
        self._lock = threading.Lock()

    def _advance(self, frames: list[TrackingFrame]) -> None:
        """Steps the room with every tracking frame newer than the last one applied."""
        for frame in frames:
            last = self._last_frame
            if last is not None and frame.sample_time_ns <= last.sample_time_ns:
                continue
            dt_s = 1 / FIRST_STEP_RATE_HZ if last is None else (frame.sample_time_ns - last.sample_time_ns) / NS_PER_S
            self.scene.step(_tracked_hands(frame), min(dt_s, MAX_STEP_S))
            self._last_frame = frame

    def __call__(self, request: WorldFrameRequest) -> WorldFrame:
        with self._lock:
            self._advance(request.tracking)
            newest = request.tracking[-1]
            left, right = newest.left_hand, newest.right_hand
            hands = tuple(hand_pose_of(h) if h is not None else None for h in (left, right))
            placeholder = next((h for h in hands if h is not None), None)
            drawn = tuple(h if h is not None else placeholder for h in hands)
            visible = [h is not None and h.is_active for h in (left, right)]
            if placeholder is None:  # no hand data at all: draw nothing
                drawn, visible = (hidden_hand("left"), hidden_hand("right")), [False, False]
            step = SimStep(frame=newest, head=newest.head.matrix(), hands=drawn, state=self.scene.state,
                           behaviour="tracked", time_s=0.0)
            batch = render_batch(self.scene, [step])
            batch = replace(batch, hand_visible=torch.tensor([visible], dtype=torch.float32))
            image = self.renderer.render(batch).rgb[0].numpy()
        return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=newest.frame_id,
                          head=newest.head, generated_for_time_ns=newest.predicted_display_time_ns,
                          vertical_fov_deg=self.renderer.config.vertical_fov_deg, image=image, model=MODEL_NAME)


def hidden_hand(side: str) -> HandPose:
    """A hand for the renderer's slots that is never drawn: every joint at the origin (pass it with
    ``hand_visible`` False)."""
    return HandPose(side=side, positions=np.zeros((HAND_JOINT_COUNT, 3)),
                    rotations=np.tile(np.eye(3), (HAND_JOINT_COUNT, 1, 1)),
                    radii=np.full(HAND_JOINT_COUNT, HIDDEN_HAND_RADIUS_M))


FROZEN_MODEL_NAME = "frozen"


class FrozenWorld:
    """The world that never updates (the study condition ``frozen``): the room rendered once, by
    :class:`GroundTruthWorld` at the first request's newest pose, then that same frame - its
    head pose and time included - for every later request of the session; the compositor
    reprojects it to each display frame's head pose as it does any world frame. A new
    ``session_id`` renders anew. ``WorldFrame.model`` says ``frozen``."""

    def __init__(self, seed: int = 0, renderer: RendererConfig | None = None) -> None:
        self.seed, self.renderer = seed, renderer
        self._first: WorldFrame | None = None
        self._lock = threading.Lock()

    def __call__(self, request: WorldFrameRequest) -> WorldFrame:
        with self._lock:
            if self._first is None or self._first.session_id != request.session_id:
                self._first = GroundTruthWorld(self.seed, self.renderer)(request).model_copy(
                    update={"model": FROZEN_MODEL_NAME})
            first = self._first
        return first.model_copy(update={"request_id": request.request_id})
