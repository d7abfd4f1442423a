"""The recorder: a session's messages appended to a recording folder in checksummed, fsync'd chunks.

The format is described in :mod:`genxr.xr_runtime.recording`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import (
    DisplayFrame,
    Message,
    SessionEvent,
    TrackingFrame,
    WorldFrame,
    encode,
)
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.format import (
    CHUNKS_FILE,
    MANIFEST_FILE,
    RecordingError,
    chunk_bytes,
    fsync_dir,
    write_json_atomic,
)


class Recorder:
    """Appends a session's messages to a recording folder in checksummed, fsync'd chunks
    (see the module docstring). ``fsync_ns`` and ``bytes_written`` count the cost."""

    def __init__(self, folder: str | os.PathLike[str], metadata: dict[str, Any] | None = None, *,
                 flush_interval_s: float = 0.5, clock: Clock = MONOTONIC) -> None:
        if not 0 < flush_interval_s <= 1.0:
            raise ValueError(f"flush_interval_s must be in (0, 1] seconds, got {flush_interval_s}")
        self.folder = Path(folder)
        self.metadata = dict(metadata or {})
        self.flush_interval_ns = round(flush_interval_s * NS_PER_S)
        self.clock = clock
        self.frames = 0
        self.events = 0
        self.images = 0
        self.chunks = 0
        self.bytes_written = 0
        self.fsync_ns = 0
        self._pending: list[bytes] = []
        self._last_commit_ns = 0
        self._fd: int | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Recorder:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.folder / MANIFEST_FILE, {"complete": False, **self.metadata})
            self._fd = os.open(self.folder / CHUNKS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            fsync_dir(self.folder)
        except OSError as err:
            raise OSError(err.errno, f"cannot write the recording folder {str(self.folder)!r}: "
                                     f"{err.strerror or err}") from err
        self._last_commit_ns = self.clock.now_ns()
        return self

    def _add(self, message: Message) -> None:
        if self._fd is None:
            raise RecordingError(f"{self.folder}: the recorder is not open (use it as a context manager)")
        payload = encode(message)
        with self._lock:
            self._pending.append(payload)
            if self.clock.now_ns() - self._last_commit_ns >= self.flush_interval_ns:
                self._commit()

    def add_frame(self, frame: TrackingFrame) -> None:
        self._add(frame)
        self.frames += 1

    def add_event(self, event: SessionEvent) -> None:
        self._add(event)
        self.events += 1

    def add_image(self, image: DisplayFrame | WorldFrame) -> None:
        """Records a displayed or generated image (the optional image stream)."""
        self._add(image)
        self.images += 1

    def flush(self) -> None:
        """Writes and fsyncs the pending records now, as one chunk."""
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        self._last_commit_ns = self.clock.now_ns()
        if not self._pending:
            return
        data = chunk_bytes(self.chunks, self._pending)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            start = time.perf_counter_ns()
            os.fsync(self._fd)
            self.fsync_ns += time.perf_counter_ns() - start
        except OSError as err:
            try:  # cut the torn chunk: a later commit (on close, once space is freed) continues a clean file
                os.ftruncate(self._fd, self.bytes_written)
            except OSError:
                pass
            raise OSError(err.errno, f"cannot append to the recording {str(self.folder / CHUNKS_FILE)!r}: "
                                     f"{err.strerror or err}; the {self.chunks} chunks written before are intact "
                                     f"({len(self._pending)} records of this chunk are lost)") from err
        self.chunks += 1
        self.bytes_written += len(data)
        self._pending = []

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is None:
            return
        try:
            with self._lock:
                self._commit()
            write_json_atomic(self.folder / MANIFEST_FILE, {
                "complete": True, **self.metadata, "tracking_frames": self.frames, "events": self.events,
                **({"images": self.images} if self.images else {}), "chunks": self.chunks,
                "ended_by": None if exc_type is None else exc_type.__name__})
        except OSError:
            if exc_type is None:
                raise  # otherwise the session's own error is the one to see; the chunks on disk stay intact
        finally:
            os.close(self._fd)
            self._fd = None
