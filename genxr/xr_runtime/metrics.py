"""What a frame loop measured: per-frame times in nanoseconds and their summary in ms and Hz.

:class:`LoopMetrics` is filled by :class:`~genxr.xr_runtime.frame_loop.FrameLoop` and read by the
latency HUD (:mod:`genxr.xr_runtime.hud`), the session's ``metrics.json`` and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    end_frame_margin_ns: list[int] = field(default_factory=list)
    """Per frame ended to a runtime (OpenXR ``xrEndFrame``): predicted display time minus the time it
    was ended; negative = ended after its display time (late). Empty without a runtime."""
    missed_frames: int = 0
    frames: int = 0
    world_updates: int = 0
    avatar_updates: int = 0
    timeouts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    tracking_lost_frames: int = 0
    stale_frames: int = 0
    duration_ns: int = 0

    def summary(self) -> dict[str, float | int | None]:
        def pct(values: list[int], q: float) -> float | None:
            return percentile(values, q, per=NS_PER_MS)

        seconds = max(self.duration_ns, 1) / NS_PER_S
        refreshes = self.frames + self.missed_frames
        return {
            "frames": self.frames,
            "duration_s": self.duration_ns / NS_PER_S,
            "frame_time_ms_p50": pct(self.frame_time_ns, 50), "frame_time_ms_p99": pct(self.frame_time_ns, 99),
            "deadline_miss_rate": self.missed_frames / refreshes if refreshes else 0.0,
            "compositor_ms_p50": pct(self.compositor_ns, 50), "compositor_ms_p99": pct(self.compositor_ns, 99),
            "rotational_m2p_ms_p50": pct(self.rotational_m2p_ns, 50),
            "rotational_m2p_ms_p99": pct(self.rotational_m2p_ns, 99),
            "content_latency_ms_p50": pct(self.content_latency_ns, 50),
            "content_latency_ms_p99": pct(self.content_latency_ns, 99),
            "world_model_hz": self.world_updates / seconds, "avatar_hz": self.avatar_updates / seconds,
            "tracking_lost_frames": self.tracking_lost_frames, "stale_frames": self.stale_frames,
            "timeouts": dict(self.timeouts), "failures": dict(self.failures),
            "end_frame_margin_ms_p50": pct(self.end_frame_margin_ns, 50),
            "end_frame_margin_ms_p01": pct(self.end_frame_margin_ns, 1),
            "frames_ended_late": sum(1 for margin in self.end_frame_margin_ns if margin < 0),
        }
