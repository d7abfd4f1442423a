"""Where display frames go: an mp4 file, PNG frames, or the latest frame in memory.

Every sink has ``name``, ``submit(frame)`` and ``close()`` and is a context manager. The
frame loop submits each :class:`~genxr.platform.messages.DisplayFrame` to every sink and
records a span per sink. A sink that fails to write raises :class:`SinkError` naming its
file; the loop reports it and stops the session with every file closed.

The OpenXR swapchain sink belongs with a graphics session (pyopenxr's GL context) and is
not in this module; see docs/xr_runtime.md for the headset path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from genxr.platform.messages import DisplayFrame
from genxr.platform.video import DEFAULT_MAX_QUEUED_BYTES, VideoError, VideoWriter


class SinkError(OSError):
    """A sink could not write; the message names the file."""


@runtime_checkable
class Sink(Protocol):
    name: str

    def submit(self, frame: DisplayFrame) -> None: ...

    def close(self) -> None: ...


class _ContextSink:
    name = "sink"

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release by default."""


class VideoSink(_ContextSink):
    """Records display frames to an H.264 mp4, each at its display time (so the mp4 runs at the
    rate the display was paced at - a runtime's, whatever ``fps``, the nominal rate, says), through
    :class:`~genxr.platform.video.VideoWriter` (encoded in a niced child process; the frame
    loop only queues bytes, and frames are dropped and counted rather than stalling the
    display). A writer failure is a :class:`SinkError` naming the file.
    """

    name = "video"

    def __init__(self, path: str | os.PathLike[str], fps: float = 90.0, crf: int = 23, preset: str = "veryfast",
                 nice: int = 10, max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES) -> None:
        try:
            self._writer = VideoWriter(path, fps, crf, preset, nice, max_queued_bytes)
        except VideoError as err:
            raise SinkError(str(err)) from err
        self.path = self._writer.path

    @property
    def frames(self) -> int:
        """Frames handed to the encoder."""
        return self._writer.frames

    @property
    def dropped_frames(self) -> int:
        """Frames not recorded because the encoder was ``max_queued_bytes`` behind."""
        return self._writer.dropped_frames

    def submit(self, frame: DisplayFrame) -> None:
        try:
            self._writer.write(frame.image, f"frame {frame.frame_id}", time_ns=frame.display_time_ns)
        except VideoError as err:
            raise SinkError(str(err)) from err

    def close(self) -> None:
        try:
            self._writer.close()
        except VideoError as err:
            raise SinkError(str(err)) from err


class PngSink(_ContextSink):
    """Writes every ``every``-th display frame as ``frame_<id>.png`` into ``folder``."""

    name = "png"

    def __init__(self, folder: str | os.PathLike[str], every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.folder = Path(folder)
        self.every = every
        self.written = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SinkError(f"cannot create PNG folder {str(self.folder)!r}: {err.strerror or err}") from err

    def submit(self, frame: DisplayFrame) -> None:
        if frame.frame_id % self.every:
            return
        from PIL import Image

        path = self.folder / f"frame_{frame.frame_id:06d}.png"
        try:
            Image.fromarray(frame.image).save(path)
        except OSError as err:
            raise SinkError(f"cannot write {str(path)!r}: {err}") from err
        self.written += 1


class LatestFrameSink(_ContextSink):
    """Keeps the newest display frame in memory (a preview, a test, a dashboard thumbnail)."""

    name = "latest"

    def __init__(self) -> None:
        self.latest: DisplayFrame | None = None
        self.count = 0

    def submit(self, frame: DisplayFrame) -> None:
        self.latest = frame
        self.count += 1
