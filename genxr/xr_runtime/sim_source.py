"""The simulated user as a tracking source: the simulator's scripted users, live.

Wraps a :class:`~genxr.components.sim.user.ScriptedUser`. The user's frames are stamped
on the user's own schedule (frame k at start + k periods); the source paces the loop by
that schedule, as a headset's runtime would. When the loop overruns, frames whose display
refresh has already passed are stepped (so contacts and objects stay consistent) but not
returned, and are counted as missed refreshes. ``loop=True`` restarts the script with the
next seed when it ends, so a session can run longer than one script.
"""

from __future__ import annotations

from collections.abc import Iterator

from genxr.components.sim.user import ScriptedUser, SimStep
from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import TrackingFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.timing import FrameTiming


class SimulatedSource:
    """Scripted user -> TrackingFrames at ``rate_hz`` (see module docstring)."""

    paces_display = True

    def __init__(self, behaviour: str = "look_around+press_button+grasp_carry_drop+wave", seed: int = 0,
                 rate_hz: float = 90.0, clock: Clock = MONOTONIC, loop: bool = True) -> None:
        self.behaviour, self.seed, self.rate_hz, self.clock, self.loop = behaviour, seed, rate_hz, clock, loop
        self.user: ScriptedUser | None = None
        self.latest: SimStep | None = None
        """The newest step, with the simulator's ground truth (for task success and judging)."""
        self._steps: Iterator[SimStep] | None = None
        self._pending: SimStep | None = None
        self._frame_offset = 0
        self._time_offset_ns = 0
        self._time_floor_ns: int | None = None
        self._episode = 0
        self._ended = False

    def __enter__(self) -> SimulatedSource:
        self._start_episode()
        return self

    def __exit__(self, *exc: object) -> None:
        self._steps = None

    def _start_episode(self) -> None:
        self.user = ScriptedUser(behaviour=self.behaviour, seed=self.seed + self._episode, rate_hz=self.rate_hz,
                                 clock=self.clock, latency_ns=round(NS_PER_S / self.rate_hz))
        self._steps = self.user.steps()

    def _next_step(self) -> SimStep | None:
        while True:
            step = next(self._steps, None)
            if step is not None:
                if self._time_floor_ns is not None:  # first frame of a new episode: continue the schedule
                    self._time_offset_ns = max(0, self._time_floor_ns - step.frame.sample_time_ns)
                    self._time_floor_ns = None
                return step
            if not self.loop:
                return None
            last = self._renumbered(self._pending) if self._pending is not None else None
            self._time_floor_ns = None if last is None else last.sample_time_ns + round(NS_PER_S / self.rate_hz)
            self._frame_offset += self.user.frame_count
            self._episode += 1
            self._start_episode()

    def _renumbered(self, step: SimStep) -> TrackingFrame:
        """The step's frame with ids and times continued across episodes."""
        frame = step.frame
        return frame.model_copy(update={"frame_id": frame.frame_id + self._frame_offset,
                                        "sample_time_ns": frame.sample_time_ns + self._time_offset_ns,
                                        "predicted_display_time_ns": frame.predicted_display_time_ns
                                        + self._time_offset_ns})

    def wait_frame(self) -> FrameTiming:
        missed = 0
        step = self._next_step()
        period = round(NS_PER_S / self.rate_hz)
        while step is not None and self.clock.now_ns() > step.frame.sample_time_ns + self._time_offset_ns + period:
            missed += 1  # its refresh is gone: keep the world consistent, do not show it
            following = self._next_step()
            if following is None:
                break
            step = following
        self._pending = step
        if step is None:
            self._ended = True
            return FrameTiming(0, self.clock.now_ns(), self.clock.now_ns(), period)
        frame = self._renumbered(step)
        self.clock.sleep_until_ns(frame.sample_time_ns)
        return FrameTiming(frame_id=frame.frame_id, wake_time_ns=self.clock.now_ns(),
                           predicted_display_time_ns=frame.predicted_display_time_ns, display_period_ns=period,
                           missed_frames=missed)

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if self._ended or self._pending is None:
            return None
        self.latest = self._pending
        return self._renumbered(self._pending)
