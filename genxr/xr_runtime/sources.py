"""The protocol every tracking source implements (OpenXR, simulated user, replay).

A source is a context manager. Inside it the frame loop asks, once per display frame,

* ``wait_frame()`` for the frame's timing - only sources with ``paces_display = True``
  (OpenXR, whose ``xrWaitFrame`` throttles to the headset; the simulated user; replay at
  original timing); otherwise the loop's :class:`~genxr.xr_runtime.timing.DisplayClock` paces it;
* ``read(timing)`` for the :class:`~genxr.platform.messages.TrackingFrame` sampled for that
  frame: head and hands predicted for ``timing.predicted_display_time_ns``.

``read`` returns None when the source has ended (a replay ran out, the OpenXR session is
exiting). A source never returns an invalid frame: NaN poses from a runtime are reported
as lost tracking (flags cleared, ``head_tracked`` False), not passed on. Frames move forward:
frame ids and sample times strictly increase, a frame is never sampled in the future of the
source's clock, and it is predicted for its timing's display time
(``tests/contracts/test_tracking_sources.py`` holds every source to this).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, runtime_checkable

from genxr.platform.messages import TrackingFrame
from genxr.xr_runtime.timing import FrameTiming


class TrackingSourceLost(RuntimeError):
    """The source's device or runtime went away mid-session (an OpenXR runtime whose service
    died: instance or session lost). The session ends as an interruption does - every file closed
    and complete, a ``stopped`` event saying why - and the message says what happened."""


@runtime_checkable
class TrackingSource(Protocol):
    paces_display: bool
    """True when the source itself blocks to the display rate in :meth:`wait_frame`."""

    def __enter__(self) -> TrackingSource: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def wait_frame(self) -> FrameTiming:
        """The next frame's timing (only called when ``paces_display``)."""
        ...

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        """Tracking for the frame with ``timing``; None once the source has ended.
        ``wait_frame`` and ``read`` raise :class:`TrackingSourceLost` when the device is gone."""
        ...

