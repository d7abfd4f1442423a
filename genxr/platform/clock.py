"""The one clock of genxr: monotonic integer nanoseconds.

Every timestamp in a message (``sample_time_ns``, ``predicted_display_time_ns``, span
starts) comes from a :class:`Clock`. Production code takes the clock as a constructor
argument and defaults to :data:`MONOTONIC`; tests inject a :class:`ManualClock` and move
time by hand, so no test depends on how fast the machine is.

``time.monotonic_ns`` is CLOCK_MONOTONIC on Linux, the clock OpenXR's
``XR_KHR_convert_timespec_time`` converts from, so OpenXR times and genxr times are one
time base.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from genxr.platform.units import NS_PER_S


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock in integer nanoseconds."""

    def now_ns(self) -> int:
        """Current time, ns; never decreases."""
        ...

    def sleep_until_ns(self, deadline_ns: int) -> None:
        """Block until ``now_ns() >= deadline_ns`` (returns at once if already past)."""
        ...


class MonotonicClock:
    """The system's monotonic clock (CLOCK_MONOTONIC)."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until_ns(self, deadline_ns: int) -> None:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / NS_PER_S)


class ManualClock:
    """A clock that moves only when told to; ``sleep_until_ns`` jumps to the deadline.

    Thread-safe: a thread blocked in :meth:`wait_until_ns` wakes when another thread
    advances the clock past its deadline.
    """

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {start_ns}")
        self._now_ns = start_ns
        self._changed = threading.Condition()

    def now_ns(self) -> int:
        return self._now_ns

    def advance_ns(self, delta_ns: int) -> int:
        """Moves time forward by ``delta_ns`` (>= 0) and returns the new time."""
        if delta_ns < 0:
            raise ValueError(f"a monotonic clock cannot go back: delta_ns={delta_ns}")
        with self._changed:
            self._now_ns += delta_ns
            self._changed.notify_all()
            return self._now_ns

    def sleep_until_ns(self, deadline_ns: int) -> None:
        if deadline_ns > self._now_ns:
            self.advance_ns(deadline_ns - self._now_ns)

    def wait_until_ns(self, deadline_ns: int, timeout_s: float | None = None) -> bool:
        """Blocks until another thread advances time to ``deadline_ns``; False on real-time timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._now_ns >= deadline_ns, timeout=timeout_s)


MONOTONIC = MonotonicClock()
"""The process-wide default clock."""
