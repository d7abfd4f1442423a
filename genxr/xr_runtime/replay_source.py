"""A recorded session's tracking replayed as a tracking source, at its original timing or as fast as read.

A replay is a tracking stream like any other: frame ids and sample times strictly increase
(:class:`~genxr.platform.messages.StreamOrder`). A recording whose frames go backwards or
repeat (edited, concatenated, or written by something other than a session) is refused on
entering, with a :class:`RecordingError` naming the first such frame, before anything plays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import (
    StreamOrder,
    TrackingFrame,
)
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.format import (
    RecordingError,
)
from genxr.xr_runtime.recording.reader import Recording, read_recording
from genxr.xr_runtime.timing import FrameTiming

FIRST_FRAME_PERIOD_NS = NS_PER_S // 90
"""The display period reported for a recording's first frame (nothing before it to measure from): 90 Hz."""


class ReplaySource:
    """Plays a recording back as a tracking source.

    ``timing="original"`` paces the display itself: frames come at their recorded times,
    shifted to now on ``clock``, with their recorded ids and the same offset applied to every
    time in them, so latencies measured downstream stay meaningful. ``timing="fast"`` does not
    pace: the loop's display clock does, and each recorded frame is handed to the next display
    frame asked for, re-stamped onto the loop's clock and timing (sampled when read, shown at
    the timing's predicted display time, the timing's frame id) - never stamped in the future.
    """

    def __init__(self, folder: str | os.PathLike[str], *, timing: str = "original", clock: Clock = MONOTONIC) -> None:
        if timing not in ("original", "fast"):
            raise ValueError(f"timing must be 'original' or 'fast', got {timing!r}")
        self.folder = Path(folder)
        self.timing = timing
        self.clock = clock
        self.recording: Recording | None = None
        self._index = 0
        self._offset_ns = 0
        self._last_sample_ns = -1

    @property
    def paces_display(self) -> bool:
        return self.timing == "original"

    def __enter__(self) -> ReplaySource:
        self.recording = read_recording(self.folder)
        if not self.recording.frames:
            raise RecordingError(f"{self.folder} holds no tracking frames to replay")
        _check_order(self.folder, self.recording.frames)
        first = self.recording.frames[0]
        self._offset_ns = self.clock.now_ns() - first.sample_time_ns
        return self

    def __exit__(self, *exc: object) -> None:
        self.recording = None

    def _shifted(self, frame: TrackingFrame) -> TrackingFrame:
        update: dict[str, Any] = {"sample_time_ns": frame.sample_time_ns + self._offset_ns,
                                  "predicted_display_time_ns": frame.predicted_display_time_ns + self._offset_ns}
        if frame.audio is not None:
            update["audio"] = frame.audio.model_copy(update={"start_time_ns": frame.audio.start_time_ns + self._offset_ns})
        return frame.model_copy(update=update)

    def wait_frame(self) -> FrameTiming:
        """The next recorded frame's timing, once its time has come (original timing only)."""
        frames = self.recording.frames
        index = min(self._index, len(frames) - 1)
        frame = frames[index]
        period = (frames[index].predicted_display_time_ns - frames[index - 1].predicted_display_time_ns
                  if index > 0 else FIRST_FRAME_PERIOD_NS)
        self.clock.sleep_until_ns(frame.sample_time_ns + self._offset_ns)
        return FrameTiming(frame_id=frame.frame_id, wake_time_ns=self.clock.now_ns(),
                           predicted_display_time_ns=frame.predicted_display_time_ns + self._offset_ns,
                           display_period_ns=max(1, period))

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if self._index >= len(self.recording.frames):
            return None
        frame = self.recording.frames[self._index]
        self._index += 1
        if self.timing == "fast":  # onto the loop's clock: latencies are measured, not inherited
            return self._restamped(frame, timing)
        return self._shifted(frame)

    def _restamped(self, frame: TrackingFrame, timing: FrameTiming) -> TrackingFrame:
        sampled = max(self.clock.now_ns(), self._last_sample_ns + 1)
        self._last_sample_ns = sampled
        self._offset_ns = sampled - frame.sample_time_ns
        shifted = self._shifted(frame)
        return shifted.model_copy(update={"frame_id": timing.frame_id,
                                          "predicted_display_time_ns": max(timing.predicted_display_time_ns, sampled)})


def _check_order(folder: Path, frames: list[TrackingFrame]) -> None:
    """Raises :class:`RecordingError` at the first frame whose id or sample time does not increase."""
    order = StreamOrder(f"recording {folder}")
    for index, frame in enumerate(frames):
        try:
            order.check(frame)
        except ValidationError as err:
            field = err.errors()[0]["loc"][0]
            previous = order.last
            raise RecordingError(
                f"{folder}: tracking frame {index} (frame_id {frame.frame_id}, sample_time_ns "
                f"{frame.sample_time_ns}) cannot be replayed: its {field} {getattr(frame, field)} does not increase "
                f"past {getattr(previous, field)} of frame {index - 1} (frame_id {previous.frame_id}); "
                "a replay needs strictly increasing frame ids and sample times") from err
