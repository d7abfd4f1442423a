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
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.video_encoder import HEADER


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
    """Encodes display frames to an H.264 mp4 at the display rate, in a child process.

    The frame loop only hands each frame's bytes to a writer thread (a copy, ~0.05 ms at
    256x256); the thread feeds them through a pipe to
    :mod:`genxr.xr_runtime.video_encoder`, a separate process at ``nice`` that encodes with
    PyAV / libx264 (``preset``, zero-latency tuning, one thread). Encoding in the session's
    process took the GIL for milliseconds per frame and cost the loop its deadlines; see that
    module's docstring for the numbers.

    The recording never stalls the display: if the encoder falls more than
    ``max_queued_bytes`` behind (256 MiB: ~15 s of 256x256 frames, a few frames of a headset's
    2k eye), newer frames are dropped and counted in
    :attr:`dropped_frames` (the session's metrics report it). The file is written to
    ``<path>.partial`` and renamed on close once the encoder has finished it, so a crash never
    leaves a file that looks complete but is not. An encoder that fails raises
    :class:`SinkError` with its message on the next ``submit`` or on ``close``.
    """

    name = "video"

    def __init__(self, path: str | os.PathLike[str], fps: float = 90.0, crf: int = 23, preset: str = "veryfast",
                 nice: int = 10, max_queued_bytes: int = 256 << 20) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if max_queued_bytes < 1:
            raise ValueError(f"max_queued_bytes must be >= 1, got {max_queued_bytes}")
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self.frames = 0
        """Frames handed to the encoder."""
        self.dropped_frames = 0
        """Frames not recorded because the encoder was ``max_queued_bytes`` behind."""
        self._size: tuple[int, int] | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._max_queued_bytes = max_queued_bytes
        self._queued_bytes = 0
        self._queued_lock = threading.Lock()
        self._error: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._partial.open("wb").close()  # fail here, not in the child, if the place is unwritable
        except OSError as err:
            raise SinkError(f"cannot write video {str(self.path)!r}: {err.strerror or err}") from err
        self._process = subprocess.Popen(
            [sys.executable, "-m", "genxr.xr_runtime.video_encoder", str(self._partial), str(fps), str(crf), preset,
             str(nice)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            process_group=0)  # Ctrl-C goes to the terminal's process group: not to the encoder, which
        # finishes the file when the session closes its input
        self._writer = threading.Thread(target=self._write_frames, name="video-sink-writer", daemon=True)
        self._writer.start()

    def _write_frames(self) -> None:
        """Writer thread: queued bytes -> the encoder's stdin (the write releases the GIL)."""
        stdin = self._process.stdin
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the encoder is gone; submit/close report it
            try:
                stdin.write(data)
            except (BrokenPipeError, OSError) as err:
                self._error = f"the video encoder stopped ({err})"
            finally:
                with self._queued_lock:
                    self._queued_bytes -= len(data)
        try:
            stdin.close()
        except OSError:
            pass

    def _failure(self, detail: str) -> SinkError:
        stderr = self._process.stderr.read().decode(errors="replace").strip() if self._process.poll() is not None else ""
        return SinkError(f"cannot write video {str(self.path)!r}: {stderr or detail}")

    def submit(self, frame: DisplayFrame) -> None:
        if self._error is not None:
            raise self._failure(self._error)
        image = frame.image
        if self._size is None:
            self._size = (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)
            if min(self._size) < 2:
                raise SinkError(f"cannot write video {str(self.path)!r}: frame {image.shape[1]}x{image.shape[0]} "
                                "is smaller than 2x2")
            header = HEADER.pack(*self._size)
            with self._queued_lock:
                self._queued_bytes += len(header)
            self._queue.put(header)
        width, height = self._size
        if (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2) != self._size or image.ndim != 3:
            raise SinkError(f"cannot write video {str(self.path)!r}: frame {frame.frame_id} is "
                            f"{image.shape[1]}x{image.shape[0]}, the video is {width}x{height}")
        data = np.ascontiguousarray(image[:height, :width]).tobytes()
        with self._queued_lock:
            if self.frames and self._queued_bytes + len(data) > self._max_queued_bytes:
                self.dropped_frames += 1
                return
            self._queued_bytes += len(data)
        self._queue.put(data)
        self.frames += 1

    def close(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        self._queue.put(None)
        self._writer.join()
        try:
            returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        stderr = process.stderr.read().decode(errors="replace").strip()
        process.stderr.close()
        if returncode != 0 or self._error is not None:
            # What was written stays as <path>.partial: incomplete, and named so.
            raise SinkError(f"cannot write video {str(self.path)!r}: "
                            f"{stderr or self._error or f'encoder exited with status {returncode}'}")
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
