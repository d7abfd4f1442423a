"""What a frame loop measured: per-frame times in nanoseconds and their summary in ms and Hz.

:class:`LoopMetrics` is filled by :class:`~genxr.xr_runtime.frame_loop.FrameLoop` and read by the
latency HUD (:mod:`genxr.xr_runtime.hud`), the session's ``metrics.json`` and the benchmarks.

Times are on the one genxr clock (:mod:`genxr.platform.clock`); "display time" is a display
frame's predicted display time, "sample time" a tracking frame's ``sample_time_ns``. The
latency measures, side by side:

* ``rotational_m2p_ms`` (rotational motion-to-photon), every display frame: display time minus
  the sample time of the tracking frame it was re-projected with. With
  ``display.added_latency_ms`` that is the delayed frame actually used, so it rises by the
  added amount.
* ``content_latency_ms``, once per world frame, on the first display frame showing it: display
  time minus the sample time of the newest tracking frame the world frame was generated from
  (``WorldFrame.frame_id``). How long the model's pipeline takes to put fresh content on
  screen; it does not see how often content arrives (a 4 Hz and a 30 Hz world with the same
  per-request time report the same content latency).
* ``content_age_ms``, every display frame showing world content: display time minus the same
  sample time, for the world frame on screen then. How old the world content the user sees is;
  it grows while a world frame stays on screen, so it includes the update period (a 4 Hz world
  adds ~125 ms on average, a 30 Hz one ~17 ms). The HUD's ``content age`` line is this number.

The avatar's gaze, per avatar motion frame received, against the user's head when it arrived
(SARAH's measures, :mod:`genxr.components.avatar.metrics`): ``avatar_eye_contact_ratio`` (share
of frames whose gaze angle is below ``EYE_CONTACT_DEG``, 12 degrees), ``avatar_gaze_deg_p50``
and ``avatar_facing_deg_p50`` (degrees).

A session's first ``session.warmup_s`` seconds are run and recorded, but left out of
:meth:`LoopMetrics.summary` (:meth:`LoopMetrics.end_warmup`); ``warmup_frames`` says how many
display frames that was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from genxr.components.avatar.metrics import EYE_CONTACT_DEG
from genxr.platform.stats import percentile
from genxr.platform.units import NS_PER_MS, NS_PER_S


@dataclass
class LoopMetrics:
    """Per-frame measurements of one run, all in nanoseconds; summarised by :meth:`summary`."""

    frame_time_ns: list[int] = field(default_factory=list)
    compositor_ns: list[int] = field(default_factory=list)
    rotational_m2p_ns: list[int] = field(default_factory=list)
    """Tracking sample -> predicted display time of the frame re-projected with it."""
    content_latency_ns: list[int] = field(default_factory=list)
    """Tracking sample -> display time of the first frame showing content generated from it."""
    content_age_ns: list[int] = field(default_factory=list)
    """Per display frame with world content: tracking sample the content was generated from -> display time."""
    end_frame_margin_ns: list[int] = field(default_factory=list)
    """Per frame ended to a runtime (OpenXR ``xrEndFrame``): predicted display time minus the time it
    was ended; negative = ended after its display time (late). Empty without a runtime."""
    avatar_gaze_deg: list[float] = field(default_factory=list)
    """Per avatar motion frame received: angle (degrees) between the avatar's head forward and the
    direction to the user's head when it arrived (:func:`~genxr.components.avatar.metrics.gaze_and_facing_deg`)."""
    avatar_facing_deg: list[float] = field(default_factory=list)
    """Per avatar motion frame received: ground-plane angle (degrees) from its body facing to the user."""
    missed_frames: int = 0
    frames: int = 0
    world_updates: int = 0
    avatar_updates: int = 0
    timeouts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    tracking_lost_frames: int = 0
    stale_frames: int = 0
    duration_ns: int = 0
    display_period_ns: int | None = None
    """The display's refresh period as the newest frame's timing gave it: the runtime's
    ``predicted_display_period`` when a runtime paces the loop, else ``session.display_rate_hz``'s."""
    warmup: LoopMetrics | None = None
    """What had been measured when the warm-up ended (:meth:`end_warmup`); None without one."""

    def end_warmup(self, elapsed_ns: int) -> None:
        """Leaves everything measured so far, ``elapsed_ns`` of the run, out of :meth:`summary`
        (the lists, counters and rates go on from here; the HUD still reads all of them)."""
        snapshot = LoopMetrics(**{f.name: _copied(getattr(self, f.name)) for f in fields(self) if f.name != "warmup"})
        snapshot.duration_ns = elapsed_ns
        self.warmup = snapshot

    def measured(self) -> LoopMetrics:
        """What was measured after the warm-up: lists from where it ended, counters and the
        duration less its share (all of it when there was none)."""
        before = self.warmup
        if before is None:
            return self
        values = {}
        for f in fields(self):
            if f.name == "warmup":
                continue
            now, then = getattr(self, f.name), getattr(before, f.name)
            if f.name == "display_period_ns":
                values[f.name] = now
            elif isinstance(now, list):
                values[f.name] = now[len(then):]
            elif isinstance(now, dict):
                values[f.name] = {key: count - then.get(key, 0) for key, count in now.items()
                                  if count - then.get(key, 0)}
            else:
                values[f.name] = now - then
        return LoopMetrics(**values)

    def summary(self) -> dict[str, float | int | None]:
        """The run after its warm-up in ms, Hz and counts (``warmup_frames``: display frames left out)."""
        def pct(values: list[int], q: float) -> float | None:
            return percentile(values, q, per=NS_PER_MS)

        m = self.measured()
        seconds = max(m.duration_ns, 1) / NS_PER_S
        refreshes = m.frames + m.missed_frames
        return {
            "frames": m.frames,
            "warmup_frames": 0 if self.warmup is None else self.warmup.frames,
            "duration_s": m.duration_ns / NS_PER_S,
            "display_rate_hz": NS_PER_S / m.display_period_ns if m.display_period_ns else None,
            "frame_time_ms_p50": pct(m.frame_time_ns, 50), "frame_time_ms_p99": pct(m.frame_time_ns, 99),
            "deadline_miss_rate": m.missed_frames / refreshes if refreshes else 0.0,
            "compositor_ms_p50": pct(m.compositor_ns, 50), "compositor_ms_p99": pct(m.compositor_ns, 99),
            "rotational_m2p_ms_p50": pct(m.rotational_m2p_ns, 50),
            "rotational_m2p_ms_p99": pct(m.rotational_m2p_ns, 99),
            "content_latency_ms_p50": pct(m.content_latency_ns, 50),
            "content_latency_ms_p99": pct(m.content_latency_ns, 99),
            "content_age_ms_p50": pct(m.content_age_ns, 50), "content_age_ms_p99": pct(m.content_age_ns, 99),
            "world_model_hz": m.world_updates / seconds, "avatar_hz": m.avatar_updates / seconds,
            "avatar_eye_contact_ratio": (float(np.mean(np.asarray(m.avatar_gaze_deg) < EYE_CONTACT_DEG))
                                         if m.avatar_gaze_deg else None),
            "avatar_gaze_deg_p50": float(np.median(m.avatar_gaze_deg)) if m.avatar_gaze_deg else None,
            "avatar_facing_deg_p50": float(np.median(m.avatar_facing_deg)) if m.avatar_facing_deg else None,
            "tracking_lost_frames": m.tracking_lost_frames, "stale_frames": m.stale_frames,
            "timeouts": dict(m.timeouts), "failures": dict(m.failures),
            "end_frame_margin_ms_p50": pct(m.end_frame_margin_ns, 50),
            "end_frame_margin_ms_p01": pct(m.end_frame_margin_ns, 1),
            "frames_ended_late": sum(1 for margin in m.end_frame_margin_ns if margin < 0),
        }


def _copied(value):
    """A list or dict copied (the live one keeps growing); a number as it is."""
    return value.copy() if isinstance(value, (list, dict)) else value
