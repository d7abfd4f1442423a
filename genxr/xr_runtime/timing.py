"""Display timing: when the frame being built now will be on the display.

OpenXR paces an application with ``xrWaitFrame``, which returns ``predictedDisplayTime``
(the middle of the display interval the frame will be shown in) and
``predictedDisplayPeriod``. Without a runtime, :class:`DisplayClock` plays that role: it
wakes the loop once per refresh period on the genxr clock and predicts the display time
as ``wake time + pipeline_depth * period``: genxr composites and submits within the frame,
so by default the frame is shown at the next refresh (depth 1). A loop that overruns skips the refreshes it missed, as a real
compositor does, and the skips are counted as deadline misses. With a runtime pacing the
loop the runtime decides: :func:`skipped_refreshes` counts the refreshes between consecutive
predicted display times.
"""

from __future__ import annotations

from dataclasses import dataclass

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.views import DisplayView


@dataclass(frozen=True)
class FrameTiming:
    """One display frame's timing, all in ns on the genxr clock."""

    frame_id: int
    wake_time_ns: int
    """When the loop was released to build this frame."""
    predicted_display_time_ns: int
    display_period_ns: int
    should_render: bool = True
    missed_frames: int = 0
    """Display refreshes skipped just before this frame because the loop overran."""
    views: tuple[DisplayView, ...] = ()
    """A headset's views (eyes) located for ``predicted_display_time_ns`` (OpenXR graphics
    session: ``xrLocateViews``, PRIMARY_STEREO, reference space); empty for a mono display
    or when the runtime had no valid view poses. The compositor renders one image per view."""
    previous_end_margin_ns: int | None = None
    """How long before its predicted display time the previous frame was ended (OpenXR:
    ``xrEndFrame``), negative when it was ended late; None when the source ends no frames
    (no runtime) or no frame was ended since the last wait."""


def skipped_refreshes(previous_display_ns: int | None, display_ns: int, period_ns: int) -> int:
    """Display refreshes skipped between two consecutive frames' predicted display times: a gap
    of more than one period is a missed frame, counted in whole periods (runtimes predict on the
    display's refresh grid). 0 for the first frame (``previous_display_ns`` None) or no period."""
    if previous_display_ns is None or period_ns <= 0:
        return 0
    return max(0, round((display_ns - previous_display_ns) / period_ns) - 1)


class DisplayClock:
    """Paces a frame loop at ``rate_hz`` on ``clock`` (see module docstring)."""

    def __init__(self, rate_hz: float = 90.0, clock: Clock = MONOTONIC, pipeline_depth: float = 1.0) -> None:
        if not 0 < rate_hz <= 1000:
            raise ValueError(f"rate_hz must be in (0, 1000], got {rate_hz}")
        if pipeline_depth < 0:
            raise ValueError(f"pipeline_depth must be >= 0, got {pipeline_depth}")
        self.clock = clock
        self.period_ns = round(NS_PER_S / rate_hz)
        self.pipeline_depth = pipeline_depth
        self._next_vsync_ns: int | None = None
        self._frame_id = 0
        self.missed_frames = 0
        """Refreshes skipped since the clock started."""

    def wait_frame(self) -> FrameTiming:
        """Blocks until the next refresh and returns its timing."""
        now = self.clock.now_ns()
        if self._next_vsync_ns is None:
            self._next_vsync_ns = now
        missed = 0
        if now > self._next_vsync_ns + self.period_ns:
            missed = (now - self._next_vsync_ns) // self.period_ns
            self._next_vsync_ns += missed * self.period_ns
            self.missed_frames += missed
        self.clock.sleep_until_ns(self._next_vsync_ns)
        wake = max(self.clock.now_ns(), self._next_vsync_ns)
        timing = FrameTiming(
            frame_id=self._frame_id,
            wake_time_ns=wake,
            predicted_display_time_ns=self._next_vsync_ns + round(self.pipeline_depth * self.period_ns),
            display_period_ns=self.period_ns,
            missed_frames=missed,
        )
        self._frame_id += 1
        self._next_vsync_ns += self.period_ns
        return timing
