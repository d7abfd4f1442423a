"""``genxr bench soak``: the end-to-end session for minutes, watched for leaks and dying services.

Runs the session ``genxr demo`` runs (simulated user at 90 Hz, in-process bus, the shipped
world-model student and avatar, 256x256 timewarp, mp4 sink, recording, span stream) for
``minutes`` in one piece, and reports per minute and overall:

* memory: the process's RSS (psutil; MB = 10^6 bytes) when the first frame is shown
  (``rss_mb_start``, after the models loaded), at the end (``rss_mb_end``), its peak, and
  ``rss_slope_mb_per_min``: the least-squares slope of the per-minute samples (each minute's
  RSS at its end). The first minute's start-up allocations (encoder buffers, torch caches)
  stay out of the fit, which needs two whole minutes (``None`` before that; ``rss_fit_samples``
  says how many samples it has);
* deadline misses: overall ``deadline_miss_rate`` (the loop's count); per minute the display
  refreshes of that minute without a frame (refreshes at ``rate_hz`` minus frames shown, to
  within a frame at the minute's edges);
* the world-model and avatar services: responses collected per minute (``world_hz``,
  ``avatar_hz``), timeouts and failures per minute (from the ``receive`` spans of the
  session's ``spans.jsonl``) and overall (``world_failures``, ``world_timeouts``,
  ``avatar_failures``, ``avatar_timeouts``: the loop's own counts, which also include
  requests the bus refused to send).

RSS and frame counts are sampled through the session's ``on_progress`` callback: one clock
read per frame, one RSS read per second, one progress line on stderr per minute; the span
file is read after the session ends, so nothing here runs alongside the loop. The session is
written to a temporary folder that is removed afterwards, or to ``out``.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genxr.platform.clock import MONOTONIC
from genxr.platform.config import load_config
from genxr.platform.services import AVATAR_SERVICE, WORLD_SERVICE
from genxr.platform.units import NS_PER_S, NS_PER_US
from genxr.xr_runtime.session import LIVE_SPANS_FILE, run_session

NS_PER_MIN = 60 * NS_PER_S
BYTES_PER_MB = 1e6
RSS_EVERY_NS = NS_PER_S
"""How often the frame callback reads RSS (psutil's read of /proc is ~20 us; a frame is 11 ms)."""
SERVICES = {"world": WORLD_SERVICE.name, "avatar": AVATAR_SERVICE.name}
"""Report prefix -> the session's service name."""


def slope_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (minutes, value) samples, per minute; None with fewer than two."""
    if len(samples) < 2:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


class _Watch:
    """The frame callback: frames and RSS per minute, a progress line at each minute's end."""

    def __init__(self, minutes: float, rate_hz: float, progress: Callable[[str], None] | None) -> None:
        import psutil

        self.process = psutil.Process()
        self.minutes, self.rate_hz, self.progress = minutes, rate_hz, progress
        self.start_ns: int | None = None
        self.rss_start = self.rss_peak = self.rss_last = 0.0
        self.rss_last_ns = self.next_rss_ns = 0
        self.minute = 0
        self.frames: list[int] = [0]
        self.minute_ends: list[tuple[float, float]] = []
        """(minutes since the first frame, RSS MB) at each minute's end; the last one when the session ended."""

    def rss_mb(self, now_ns: int) -> float:
        rss = self.process.memory_info().rss / BYTES_PER_MB
        self.rss_peak = max(self.rss_peak, rss)
        self.rss_last, self.rss_last_ns = rss, now_ns
        return rss

    def finish(self) -> None:
        """Closes the last minute with the last RSS read inside the loop (at most a second before its end:
        what the session does after its loop - trace.json, metrics - is not the soak's to measure)."""
        self.minute_ends.append(((self.rss_last_ns - self.start_ns) / NS_PER_MIN, self.rss_last))

    def __call__(self, frame_id: int) -> None:
        now = MONOTONIC.now_ns()
        if self.start_ns is None:
            self.start_ns, self.next_rss_ns = now, now + RSS_EVERY_NS
            self.rss_start = self.rss_mb(now)
        # a frame the loop shows just past the session's end (its wait ran over) is the last minute's
        minute = min((now - self.start_ns) // NS_PER_MIN, math.ceil(self.minutes) - 1)
        while minute > self.minute:  # a minute ended (several, after a stall): its RSS and a line
            self.minute_ends.append(((now - self.start_ns) / NS_PER_MIN, self.rss_mb(now)))
            self._report(self.minute)
            self.minute += 1
            self.frames.append(0)
        self.frames[-1] += 1
        if now >= self.next_rss_ns:
            self.next_rss_ns = now + RSS_EVERY_NS
            self.rss_mb(now)

    def _report(self, minute: int) -> None:
        if self.progress is None:
            return
        frames = self.frames[minute]
        refreshes = 60 * self.rate_hz
        self.progress(f"soak: minute {minute + 1}/{math.ceil(self.minutes)}: {frames} frames, "
                      f"{max(refreshes - frames, 0) / refreshes:.1%} refreshes missed, RSS {self.rss_last:.0f} MB")


def _service_minutes(spans: Path, start_ns: int, buckets: int) -> dict[str, list[dict[str, int]]]:
    """Per service prefix and minute: responses collected, timeouts, failures, from the loop's
    ``receive <service>`` spans (a failed receive carries ``args.error``)."""
    out = {prefix: [{"updates": 0, "timeouts": 0, "failures": 0} for _ in range(buckets)] for prefix in SERVICES}
    names = {f"receive {name}": prefix for prefix, name in SERVICES.items()}
    with open(spans, "rb") as handle:
        for line in handle:
            if b'"receive ' not in line:
                continue
            try:
                span = json.loads(line)
            except ValueError:  # a torn last line (the session was cut off)
                continue
            prefix = names.get(span.get("name"))
            if prefix is None:
                continue
            minute = min(max(int((span["ts"] * NS_PER_US - start_ns) // NS_PER_MIN), 0), buckets - 1)
            error = (span.get("args") or {}).get("error")
            kind = "updates" if not error else "timeouts" if error.startswith("RequestTimeoutError") else "failures"
            out[prefix][minute][kind] += 1
    return out


def run(minutes: float = 10.0, out: Path | None = None, rate_hz: float = 90.0, resolution: int = 256,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The soak of ``minutes`` minutes; see the module docstring. ``progress`` gets a line per minute."""
    if not minutes > 0 or math.isinf(minutes):
        raise ValueError(f"minutes must be a positive number, got {minutes}")
    config = load_config(session={"display_rate_hz": rate_hz}, display={"width": resolution, "height": resolution})
    watch = _Watch(minutes, rate_hz, progress)
    with tempfile.TemporaryDirectory(prefix="genxr-soak-") as tmp:
        folder = Path(out) if out is not None else Path(tmp) / "session"
        if progress is not None:
            progress(f"soak: {minutes:g} min session at {rate_hz:g} Hz into {folder}")
        result = run_session(config, folder, seconds=minutes * 60, on_progress=watch)
        if watch.start_ns is None:
            raise RuntimeError("the session showed no frame")
        watch.finish()
        seconds = result.metrics["duration_s"]
        buckets = len(watch.frames)
        if progress is not None:
            progress(f"soak: session done ({result.metrics['frames']} frames); reading its spans")
        services = _service_minutes(folder / LIVE_SPANS_FILE, watch.start_ns, buckets)
    per_minute = []
    for minute, frames in enumerate(watch.frames):
        length_s = 60.0 if minute < buckets - 1 else max(seconds - 60.0 * minute, 1e-9)
        refreshes = max(round(length_s * rate_hz), frames)
        entry: dict[str, Any] = {
            "minute": minute + 1, "seconds": round(length_s, 3), "frames": frames,
            "deadline_misses": refreshes - frames, "deadline_miss_rate": (refreshes - frames) / refreshes,
            "rss_mb": watch.minute_ends[minute][1],
        }
        for prefix, counts in services.items():
            entry[f"{prefix}_hz"] = counts[minute]["updates"] / length_s
            entry.update({f"{prefix}_{kind}": value for kind, value in counts[minute].items()})
        per_minute.append(entry)
    samples = [(at, rss) for at, rss in watch.minute_ends if at >= 1.0]  # the first minute's end onward
    metrics = result.metrics
    report: dict[str, Any] = {
        "minutes": minutes, "seconds": seconds, "rate_hz": rate_hz, "resolution": resolution,
        "world_model": result.world_model, "avatar": result.avatar, "frames": metrics["frames"],
        "rss_mb_start": watch.rss_start, "rss_mb_end": watch.rss_last, "rss_mb_peak": watch.rss_peak,
        "rss_slope_mb_per_min": slope_per_min(samples), "rss_fit_samples": len(samples),
        "deadline_miss_rate": metrics["deadline_miss_rate"],
        "world_model_hz": metrics["world_model_hz"], "avatar_hz": metrics["avatar_hz"],
    }
    for prefix, name in SERVICES.items():
        report[f"{prefix}_failures"] = metrics["failures"].get(name, 0)
        report[f"{prefix}_timeouts"] = metrics["timeouts"].get(name, 0)
    report.update(dropped_spans=metrics.get("dropped_spans"), interrupted=result.interrupted,
                  session=str(folder) if out is not None else None, per_minute=per_minute)
    return report
