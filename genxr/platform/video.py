"""Video files: RGB frames -> an H.264 mp4, encoded in a niced child process.

:class:`VideoWriter` is the one mp4 writer of genxr: the XR runtime's
:class:`~genxr.xr_runtime.sinks.VideoSink` records display frames with it and the
simulator's preview (``genxr sim render --out episode.mp4``) writes episodes with it.
The caller only hands each frame's bytes to a writer thread (a copy);
the thread feeds them through a pipe to :mod:`genxr.platform.video_encoder`, a separate
process at ``nice`` that encodes with PyAV / libx264 (``preset``, zero-latency tuning, one
thread); docs/xr_runtime.md says why encoding leaves the session's process.

Writing never stalls the caller: if the encoder falls more than ``max_queued_bytes``
behind (256 MiB: ~15 s of 256x256 frames, a few frames of a headset's 2k eye), newer frames
are dropped and counted in :attr:`VideoWriter.dropped_frames`. The file is written to
``<path>.partial`` and renamed on close once the encoder has finished it, so a crash never
leaves a file that looks complete but is not. An encoder that fails raises
:class:`VideoError` with its message on the next ``write`` or on ``close``.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from genxr.platform.units import NS_PER_S
from genxr.platform.video_encoder import FRAME_TIME, HEADER

DEFAULT_MAX_QUEUED_BYTES = 256 << 20
"""Bytes queued for the encoder before newer frames are dropped (256 MiB)."""
ENCODER_EXIT_TIMEOUT_S = 120.0
"""How long ``close`` waits for the encoder to finish the file before killing it."""


class VideoError(OSError):
    """A video could not be written; the message names the file."""


class VideoWriter:
    """Encodes uint8 RGB frames (height, width, 3) to an H.264 mp4 at ``fps`` frames/s, or at the
    times given with each frame (:meth:`write`'s ``time_ns``: a display's refreshes as paced).

    Odd widths and heights are cropped to even (yuv420p needs even sizes); every frame must
    have the first frame's size. A context manager; ``close`` finishes the file.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 90.0, crf: int = 23, preset: str = "veryfast",
                 nice: int = 10, max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if max_queued_bytes < 1:
            raise ValueError(f"max_queued_bytes must be >= 1, got {max_queued_bytes}")
        self.path = Path(path)
        self._fps = fps
        self._partial = self.path.with_name(self.path.name + ".partial")
        self.frames = 0
        """Frames handed to the encoder."""
        self.dropped_frames = 0
        """Frames not written because the encoder was ``max_queued_bytes`` behind."""
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
            raise VideoError(f"cannot write video {str(self.path)!r}: {err.strerror or err}") from err
        self._process: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "genxr.platform.video_encoder", str(self._partial), str(fps), str(crf), preset,
             str(nice)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            process_group=0)  # Ctrl-C goes to the terminal's process group: not to the encoder, which
        # finishes the file when the caller closes its input
        self._writer = threading.Thread(target=self._write_frames, name="video-writer", daemon=True)
        self._writer.start()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_frames(self) -> None:
        """Writer thread: queued bytes -> the encoder's stdin (the write releases the GIL)."""
        stdin = self._process.stdin
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the encoder is gone; write/close report it
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

    def _failure(self, detail: str) -> VideoError:
        stderr = self._process.stderr.read().decode(errors="replace").strip() if self._process.poll() is not None else ""
        return VideoError(f"cannot write video {str(self.path)!r}: {stderr or detail}")

    def write(self, image: np.ndarray, label: str = "", time_ns: int | None = None) -> None:
        """Queues one frame; ``label`` (e.g. ``"frame 12"``) names it in a size error. ``time_ns``:
        when it is shown (ns, any origin, increasing); without it, the next slot at ``fps``
        (a dropped frame leaves its slot empty either way: the video keeps the caller's time)."""
        if self._process is None:
            raise VideoError(f"cannot write video {str(self.path)!r}: it is closed")
        if self._error is not None:
            raise self._failure(self._error)
        label = label or f"frame {self.frames + self.dropped_frames}"
        if self._size is None:
            self._size = (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)
            if min(self._size) < 2:
                raise VideoError(f"cannot write video {str(self.path)!r}: frame {image.shape[1]}x{image.shape[0]} "
                                 "is smaller than 2x2")
            header = HEADER.pack(*self._size)
            with self._queued_lock:
                self._queued_bytes += len(header)
            self._queue.put(header)
        width, height = self._size
        if (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2) != self._size or image.ndim != 3:
            raise VideoError(f"cannot write video {str(self.path)!r}: {label} is "
                             f"{image.shape[1]}x{image.shape[0]}, the video is {width}x{height}")
        if time_ns is None:
            time_ns = round((self.frames + self.dropped_frames) * NS_PER_S / self._fps)
        data = FRAME_TIME.pack(int(time_ns)) + np.ascontiguousarray(image[:height, :width]).tobytes()
        with self._queued_lock:
            if self.frames and self._queued_bytes + len(data) > self._max_queued_bytes:
                self.dropped_frames += 1
                return
            self._queued_bytes += len(data)
        self._queue.put(data)
        self.frames += 1

    def close(self) -> None:
        """Finishes the file and renames it into place; what was written of a failed one stays as ``.partial``."""
        if self._process is None:
            return
        process, self._process = self._process, None
        self._queue.put(None)
        self._writer.join()
        try:
            returncode = process.wait(timeout=ENCODER_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        stderr = process.stderr.read().decode(errors="replace").strip()
        process.stderr.close()
        if returncode != 0 or self._error is not None:
            raise VideoError(f"cannot write video {str(self.path)!r}: "
                             f"{stderr or self._error or f'encoder exited with status {returncode}'}")
        if self.frames:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)
