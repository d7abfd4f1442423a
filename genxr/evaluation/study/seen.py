"""Task success as the participant saw it: judged on the world frames a session displayed.

The simulator's :class:`~genxr.evaluation.study.tasks.TaskJudge` says what happened in the
room; this judge says what the participant was *shown*. A world model that never lights the
button, or a frozen world, fails here however well the simulated hand pressed. It reads the
world-model evaluation's detectors (:mod:`genxr.components.worldmodel.metrics`) on every
world frame the session put on the display (a sink sees each display frame's
``world_frame_id``; the world service is wrapped to keep the frames it answered, so each new
content shown is judged once, at the head pose it was generated for - the timewarp only
rotates it).

* ``press_button``: the button's pixels in the shown frame are lit (:func:`button_lit`,
  green chromaticity of the cap), where the button's pixels come from the simulator's object
  mask rendered at the frame's head pose (the button does not move; its cap sinks ~1 cm).
* ``grasp_and_move``: the ball left its place in the shown world - of the pixels where the
  ball stands at the start (rendered at the frame's head pose), fewer than
  :data:`BALL_LEFT_FRACTION` still show the ball's colour - and at least
  :data:`MIN_BALL_PIXELS` pixels of the ball's colour show elsewhere in the frame. The ball's
  colour is its chromaticity in the start render (shading changes brightness, not
  chromaticity), within :data:`BALL_CHROMA_TOLERANCE`; pixels that show that colour in the
  start render outside the ball (another object of a similar hue) do not count.

On the simulator's own world (``world_model: ground_truth``) both judges agree (tested);
the difference between them is what the world model showed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from genxr.components.sim.episode import render_batch
from genxr.components.sim.layout import BALL_ID
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.scene import Scene
from genxr.components.sim.user import SimStep
from genxr.components.sim.world_service import hidden_hand
from genxr.components.worldmodel.metrics import button_lit, chromaticity
from genxr.platform.messages import DisplayFrame, WorldFrame, WorldFrameRequest

SEEN_KINDS = ("press_button", "grasp_and_move")
"""Task kinds judged on the shown frames."""
MIN_BALL_PIXELS = 3
"""Fewest ball-coloured pixels away from the ball's start that count as the ball shown elsewhere."""
BALL_LEFT_FRACTION = 0.3
"""The ball has left its start when fewer than this share of its start pixels still show its colour."""
BALL_CHROMA_TOLERANCE = 0.03
"""Largest chromaticity distance (rgb / sum) of a pixel showing the ball's colour."""
MIN_BRIGHTNESS = 0.15
"""Darker pixels (sum of rgb in [0, 1]) have no reliable chromaticity and never count."""
KEPT_WORLD_FRAMES = 64
"""World frames kept for the display to refer to (the loop shows the newest few)."""


class SeenJudge:
    """Judges one trial's task on the frames displayed (see module docstring). ``wrap(handler)``
    returns the world service to run; the judge is itself a display sink (``submit``/``close``)."""

    name = "seen-judge"

    def __init__(self, kind: str, seed: int) -> None:
        if kind not in SEEN_KINDS:
            raise ValueError(f"task kind {kind!r} cannot be judged on the shown frames; kinds: {', '.join(SEEN_KINDS)}")
        self.kind = kind
        self.start = Scene(seed)
        self.success = False
        self.first_success_frame: int | None = None
        self.judged = 0
        self._frames: OrderedDict[int, WorldFrame] = OrderedDict()
        self._last_judged: int | None = None
        self._renderers: dict[tuple[int, int, float], Renderer] = {}
        self._lock = threading.Lock()

    def wrap(self, handler: Callable[[WorldFrameRequest], WorldFrame]) -> Callable[[WorldFrameRequest], WorldFrame]:
        """``handler`` keeping each frame it answers for the display to refer to."""

        def keep(request: WorldFrameRequest) -> WorldFrame:
            frame = handler(request)
            with self._lock:
                self._frames[frame.frame_id] = frame
                while len(self._frames) > KEPT_WORLD_FRAMES:
                    self._frames.popitem(last=False)
            return frame

        for attribute in ("describe", "rate_hz"):
            if hasattr(handler, attribute):
                setattr(keep, attribute, getattr(handler, attribute))
        return keep

    def submit(self, shown: DisplayFrame) -> None:
        world_id = shown.world_frame_id
        if self.success or world_id is None or world_id == self._last_judged:
            return
        with self._lock:
            frame = self._frames.get(world_id)
        if frame is None:
            return
        self._last_judged = world_id
        self.judged += 1
        if self.judge(frame):
            self.success, self.first_success_frame = True, shown.frame_id

    def close(self) -> None:
        """Nothing to release."""

    def _start_render(self, frame: WorldFrame):
        """The room at its start (no hands) rendered from ``frame``'s head pose, camera and size."""
        height, width = frame.image.shape[:2]
        key = (width, height, float(frame.vertical_fov_deg))
        if key not in self._renderers:
            self._renderers[key] = Renderer(RendererConfig(width=width, height=height,
                                                           vertical_fov_deg=frame.vertical_fov_deg))
        hands = (hidden_hand("left"), hidden_hand("right"))
        step = SimStep(frame=None, head=frame.head.matrix(), hands=hands, state=self.start.state,
                       behaviour="tracked", time_s=0.0)
        batch = render_batch(self.start, [step])
        batch = replace(batch, hand_visible=torch.zeros((1, 2), dtype=torch.float32))
        return self._renderers[key].render(batch)

    def judge(self, frame: WorldFrame) -> bool:
        """Whether ``frame`` shows the task done."""
        start = self._start_render(frame)
        shown = frame.image.astype(np.float64) / 255.0
        mask = start.object_mask[0].numpy()
        if self.kind == "press_button":
            lit, visible = button_lit(shown[None], mask[None])
            return bool(lit[0] and visible[0])
        ball = mask == BALL_ID
        if not ball.any():
            return False
        start_rgb = start.rgb[0].numpy().astype(np.float64) / 255.0
        colour = chromaticity(start_rgb)[ball].mean(0)

        def ball_like(image: np.ndarray) -> np.ndarray:
            return (np.linalg.norm(chromaticity(image) - colour, axis=-1) < BALL_CHROMA_TOLERANCE) & \
                (image.sum(-1) > MIN_BRIGHTNESS)

        like = ball_like(shown)
        left = like[ball].mean() < BALL_LEFT_FRACTION
        elsewhere = like & ~ball & ~ball_like(start_rgb)
        return bool(left and elsewhere.sum() >= MIN_BALL_PIXELS)
