"""``genxr bench recorder``: throughput and fsync cost of the crash-safe session recorder.

Records ``seconds`` of a 90 Hz session - each frame a two-handed TrackingFrame and a
64x64 DisplayFrame (the image stream) - as fast as the disk takes it, with the session
clock advanced one display period per frame, so chunks are cut and fsync'd exactly as in a
live session (every ``flush_interval_s`` of session time). Reports ``frames_per_s`` and
``mb_per_s`` (10^6 bytes/s) of wall time, ``realtime_factor`` (how many times faster than
90 Hz it records) and ``fsync_ms_per_s``: milliseconds spent in fsync per second of
session time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from genxr.evaluation.benchmarks.bus import two_handed_frame
from genxr.platform.clock import ManualClock
from genxr.platform.messages import DisplayFrame
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.recording.reader import verify_recording
from genxr.xr_runtime.recording.writer import Recorder


def run(seconds: float = 10.0, rate_hz: float = 90.0, resolution: int = 64, flush_interval_s: float = 0.5,
        folder: Path | None = None) -> dict[str, float | int]:
    """Records ``seconds`` of session into ``folder`` (a temp folder by default); returns the figures."""
    if seconds <= 0 or rate_hz <= 0:
        raise ValueError(f"seconds and rate_hz must be > 0, got {seconds} and {rate_hz}")
    count = max(1, round(seconds * rate_hz))
    period_ns = round(NS_PER_S / rate_hz)
    tracking = [two_handed_frame(i) for i in range(min(count, 256))]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8) for _ in range(8)]
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(folder or scratch) / "recording"
        clock = ManualClock(start_ns=1)
        start = time.perf_counter()
        with Recorder(target, clock=clock, flush_interval_s=flush_interval_s) as recorder:
            for i in range(count):
                frame = tracking[i % len(tracking)]
                shift = clock.now_ns() - frame.sample_time_ns  # a replayable stream: ids and times move forward
                frame = frame.model_copy(update={"frame_id": i, "sample_time_ns": frame.sample_time_ns + shift,
                                                 "predicted_display_time_ns": frame.predicted_display_time_ns + shift})
                recorder.add_frame(frame)
                recorder.add_image(DisplayFrame(frame_id=i, display_time_ns=clock.now_ns(),
                                                image=images[i % len(images)]))
                clock.advance_ns(period_ns)
        wall_s = time.perf_counter() - start
        report = verify_recording(target)
    session_s = count / rate_hz
    return {
        "frames": count, "resolution": resolution, "rate_hz": rate_hz, "session_s": session_s,
        "frames_per_s": count / wall_s, "mb_per_s": recorder.bytes_written / wall_s / 1e6,
        "bytes_per_frame": recorder.bytes_written / count, "realtime_factor": count / wall_s / rate_hz,
        "chunks": recorder.chunks, "fsync_ms_per_s": recorder.fsync_ns / NS_PER_MS / session_s,
        "verified_records": report.records,
    }
