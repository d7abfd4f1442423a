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

import numpy as np

from genxr.platform.messages import DisplayFrame


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
    """Encodes display frames to an H.264 mp4 at the display rate (PyAV / FFmpeg's libx264).

    The file is written to ``<path>.partial`` and renamed on close, so a crash never leaves
    a file that looks complete but is not.
    """

    name = "video"

    def __init__(self, path: str | os.PathLike[str], fps: float = 90.0, crf: int = 23) -> None:
        import av

        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._partial), mode="w", format="mp4")
        except (OSError, av.FFmpegError) as err:
            raise SinkError(f"cannot write video {str(self.path)!r}: {err}") from err
        self._stream = self._container.add_stream("libx264", rate=round(fps), options={"crf": str(crf)})
        self._stream.pix_fmt = "yuv420p"
        self._av = av

    def submit(self, frame: DisplayFrame) -> None:
        image = frame.image
        if self.frames == 0:
            self._stream.width, self._stream.height = image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2
        image = image[: self._stream.height, : self._stream.width]
        video_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        try:
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except (OSError, self._av.FFmpegError) as err:
            raise SinkError(f"cannot write video {str(self.path)!r}: {err}") from err
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self.frames:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        finally:
            self._container = None
        if self.frames:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)


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
