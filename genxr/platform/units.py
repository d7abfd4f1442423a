"""The one home of genxr's time-unit conversions: how many of a smaller unit make a larger one.

Timestamps and durations are integer nanoseconds (:mod:`genxr.platform.clock`); these integer
factors turn them into the seconds, milliseconds and microseconds that configs, metrics and
traces use (``duration_ns / NS_PER_MS``, ``round(seconds * NS_PER_S)``). They are ``int`` so
that integer-nanosecond arithmetic stays integer.
"""

from __future__ import annotations

NS_PER_S = 1_000_000_000
"""Nanoseconds per second."""
NS_PER_MS = 1_000_000
"""Nanoseconds per millisecond."""
NS_PER_US = 1_000
"""Nanoseconds per microsecond (Chrome trace events count microseconds)."""
US_PER_S = 1_000_000
"""Microseconds per second."""
US_PER_MS = 1_000
"""Microseconds per millisecond."""
MS_PER_S = 1_000
"""Milliseconds per second."""
