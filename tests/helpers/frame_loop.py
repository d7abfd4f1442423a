"""A frame loop on a tiny compositor with a scripted head and an instant world model, for the
frame-loop and HUD tests."""

from __future__ import annotations

import math

import numpy as np

from genxr.platform.bus import Service
from genxr.platform.messages import Pose, TrackingFrame, WorldFrame, WorldFrameRequest
from genxr.platform.tracing import Tracer
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from genxr.xr_runtime.frame_loop import FrameLoop
from genxr.xr_runtime.sinks import LatestFrameSink
from genxr.xr_runtime.timing import DisplayClock, FrameTiming

WORLD = Service("world_model", WorldFrameRequest, WorldFrame)


class TurningHead:
    """A tracking source whose head yaws 1 degree per frame; frames listed in ``broken`` raise
    the ValidationError a NaN pose produces, frames in ``lost`` report the head untracked."""

    paces_display = False

    def __init__(self, clock, frames: int = 1_000_000, broken=(), lost=()) -> None:
        self.clock, self.frames, self.broken, self.lost = clock, frames, set(broken), set(lost)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if timing.frame_id >= self.frames:
            return None
        half = math.radians(timing.frame_id) / 2
        position = (math.nan, 1.6, 0.0) if timing.frame_id in self.broken else (0.0, 1.6, 0.0)
        now = self.clock.now_ns()
        return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=now,
                             predicted_display_time_ns=max(now, timing.predicted_display_time_ns),
                             head=Pose(position=position, orientation=(0.0, math.sin(half), 0.0, math.cos(half))),
                             head_tracked=timing.frame_id not in self.lost)


def answer(request: WorldFrameRequest) -> WorldFrame:
    newest = request.tracking[-1]
    return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=newest.frame_id,
                      head=newest.head, generated_for_time_ns=newest.predicted_display_time_ns,
                      vertical_fov_deg=90.0, image=np.full((16, 16, 3), 100, np.uint8))


def make_loop(source, bus, clock, tracer=None, rate_hz=90.0, **kwargs) -> tuple[FrameLoop, LatestFrameSink]:
    sink = LatestFrameSink()
    loop = FrameLoop(session_id="test", source=source, bus=bus, clock=clock, tracer=tracer or Tracer(clock=clock),
                     compositor=Compositor(CompositorConfig(width=32, height=32, stale_after_ms=60)),
                     sinks=[sink], display_clock=DisplayClock(rate_hz, clock), world_service=WORLD, **kwargs)
    return loop, sink
