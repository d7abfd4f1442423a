"""Session recordings that survive crashes, and the source that replays them.

A recording is a folder:

* ``tracking.msgpack`` - every :class:`TrackingFrame` of the session as a stream of
  records, each a 4-byte little-endian length followed by the message's msgpack bytes
  (:func:`genxr.platform.messages.encode`). Appended and flushed as the session runs, so a
  crash loses at most the record being written.
* ``events.jsonl`` - one :class:`SessionEvent` per line (JSON), flushed per event.
* ``manifest.json`` - written at start with ``complete: false`` and rewritten atomically
  (temp file + rename) on a clean close with ``complete: true`` and the counts.

:func:`read_recording` reads every whole record; a half-written last record (a crash
mid-write) is reported in ``truncated_bytes`` and skipped, never silently mixed in. A
corrupt record in the middle is an error naming its byte offset.

Hand-written rather than MCAP or rosbag: both need a schema registry and a reader library
for a stream that is one message type, and neither writes genxr's exact msgpack bytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import MAX_MESSAGE_BYTES, SessionEvent, TrackingFrame, decode, encode
from genxr.xr_runtime.timing import FrameTiming

TRACKING_FILE = "tracking.msgpack"
EVENTS_FILE = "events.jsonl"
MANIFEST_FILE = "manifest.json"
_LENGTH = struct.Struct("<I")


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file and byte offset."""


def write_json_atomic(path: Path, body: Any) -> None:
    """Writes ``body`` as JSON to ``path`` through a temp file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(body, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Recorder:
    """Appends a session's tracking frames and events to a recording folder (see module docstring)."""

    def __init__(self, folder: str | os.PathLike[str], metadata: dict[str, Any] | None = None,
                 flush_every: int = 9) -> None:
        self.folder = Path(folder)
        self.metadata = dict(metadata or {})
        self.flush_every = flush_every
        self.frames = 0
        self.events = 0
        self._tracking = None
        self._events = None

    def __enter__(self) -> Recorder:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.folder / MANIFEST_FILE, {"complete": False, **self.metadata})
            self._tracking = open(self.folder / TRACKING_FILE, "wb")
            self._events = open(self.folder / EVENTS_FILE, "w")
        except OSError as err:
            raise OSError(f"cannot write the recording folder {str(self.folder)!r}: {err.strerror or err}") from err
        return self

    def add_frame(self, frame: TrackingFrame) -> None:
        payload = encode(frame)
        self._tracking.write(_LENGTH.pack(len(payload)) + payload)
        self.frames += 1
        if self.frames % self.flush_every == 0:
            self._tracking.flush()

    def add_event(self, event: SessionEvent) -> None:
        self._events.write(event.model_dump_json() + "\n")
        self._events.flush()
        self.events += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in (self._tracking, self._events):
            if handle is not None:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        if self._tracking is not None:
            write_json_atomic(self.folder / MANIFEST_FILE, {
                "complete": True, **self.metadata, "tracking_frames": self.frames, "events": self.events,
                "ended_by": None if exc_type is None else exc_type.__name__})


@dataclass
class Recording:
    """What :func:`read_recording` found."""

    frames: list[TrackingFrame]
    events: list[SessionEvent]
    manifest: dict[str, Any]
    truncated_bytes: int = 0
    """Bytes of a half-written last tracking record that were skipped."""
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete")) and self.truncated_bytes == 0


def _records(path: Path) -> Iterator[tuple[int, bytes] | tuple[int, None]]:
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            yield offset, None
            return
        (length,) = _LENGTH.unpack_from(data, offset)
        if length > MAX_MESSAGE_BYTES:
            raise RecordingError(f"{path}: record at byte {offset} claims {length} bytes; the file is corrupt")
        end = offset + _LENGTH.size + length
        if end > len(data):
            yield offset, None
            return
        yield offset, data[offset + _LENGTH.size:end]
        offset = end


def read_recording(folder: str | os.PathLike[str]) -> Recording:
    """Reads a recording folder; see the module docstring for what happens to damage."""
    folder = Path(folder)
    tracking = folder / TRACKING_FILE
    if not tracking.is_file():
        raise RecordingError(f"{folder} is not a genxr recording: {TRACKING_FILE} is missing")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordingError(f"{folder / MANIFEST_FILE} cannot be read: {err}") from err
    frames, notes, truncated = [], [], 0
    size = tracking.stat().st_size
    for offset, payload in _records(tracking):
        if payload is None:
            truncated = size - offset
            notes.append(f"{tracking}: skipped a half-written last record ({truncated} bytes at byte {offset})")
            break
        try:
            frames.append(decode(payload, expected=TrackingFrame))
        except ValueError as err:  # includes pydantic's ValidationError
            raise RecordingError(f"{tracking}: record at byte {offset} is corrupt: {err}") from err
    events = []
    events_path = folder / EVENTS_FILE
    if events_path.is_file():
        for number, line in enumerate(events_path.read_text().splitlines(), start=1):
            try:
                events.append(SessionEvent.model_validate_json(line))
            except ValueError as err:
                notes.append(f"{events_path}:{number}: skipped an unreadable event ({err.__class__.__name__})")
    if not manifest.get("complete"):
        notes.append(f"{folder}: the session did not close cleanly (manifest complete=false)")
    return Recording(frames, events, manifest, truncated, notes)


class ReplaySource:
    """Plays a recording back as a tracking source.

    ``timing="original"`` paces frames by their recorded predicted display times (shifted
    to now on ``clock``); ``timing="fast"`` returns them as fast as the loop asks. Times in
    the replayed frames are shifted by the same offset, so latencies measured downstream
    stay meaningful; frame ids are kept.
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

    @property
    def paces_display(self) -> bool:
        return True

    def __enter__(self) -> ReplaySource:
        self.recording = read_recording(self.folder)
        if not self.recording.frames:
            raise RecordingError(f"{self.folder} holds no tracking frames to replay")
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
        frames = self.recording.frames
        index = min(self._index, len(frames) - 1)
        frame = frames[index]
        period = (frames[index].predicted_display_time_ns - frames[index - 1].predicted_display_time_ns
                  if index > 0 else 11_111_111)
        if self.timing == "original":
            self.clock.sleep_until_ns(frame.sample_time_ns + self._offset_ns)
        else:  # re-stamp onto the loop's clock so downstream latencies are measured, not inherited
            self._offset_ns = max(self._offset_ns, self.clock.now_ns() - frame.sample_time_ns)
        return FrameTiming(frame_id=frame.frame_id, wake_time_ns=self.clock.now_ns(),
                           predicted_display_time_ns=frame.predicted_display_time_ns + self._offset_ns,
                           display_period_ns=max(1, period))

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if self._index >= len(self.recording.frames):
            return None
        frame = self.recording.frames[self._index]
        self._index += 1
        return self._shifted(frame)
