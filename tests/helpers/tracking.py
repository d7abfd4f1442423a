"""Tracking frames for tests: both hands fully tracked, taken from the simulated user.

The frames come from :class:`~genxr.components.sim.user.ScriptedUser` pressing a button,
seen by a tracker that never loses a hand (full field of view, no dropouts), so every
frame has 26 valid joints per hand with realistic, moving poses. Frame ``i`` of the test
stream is sample ``i`` of that episode (repeating after :data:`EPISODE_FRAMES`), renumbered
``i`` with strictly increasing times.
"""

from __future__ import annotations

from functools import lru_cache

from genxr.components.sim.tracking import TrackingNoise
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock
from genxr.platform.messages import TrackingFrame

EPISODE_FRAMES = 90
PERIOD_NS = 11_111_111
"""One 90 Hz display period."""


@lru_cache(maxsize=1)
def _episode() -> tuple[TrackingFrame, ...]:
    always_tracked = TrackingNoise(hand_fov_deg=360.0, hand_range_m=100.0, loss_rate_hz=0.0)
    user = ScriptedUser("press_button", seed=0, clock=ManualClock(), noise=always_tracked)
    return tuple(step.frame for step in user.steps(EPISODE_FRAMES))


def two_handed_frame(frame_id: int = 0) -> TrackingFrame:
    """Frame ``frame_id``: both hands tracked, sampled at ``1000 + frame_id`` ns, displayed 1 us later."""
    sample_ns = 1_000 + frame_id
    return _episode()[frame_id % EPISODE_FRAMES].model_copy(
        update={"frame_id": frame_id, "sample_time_ns": sample_ns, "predicted_display_time_ns": sample_ns + 1_000})


def paced_frames(count: int, start_ns: int = 1_000_000, period_ns: int = PERIOD_NS) -> list[TrackingFrame]:
    """``count`` two-handed frames one display period apart, each predicted two periods ahead."""
    return [two_handed_frame(i).model_copy(update={"sample_time_ns": start_ns + i * period_ns,
                                                   "predicted_display_time_ns": start_ns + (i + 2) * period_ns})
            for i in range(count)]
