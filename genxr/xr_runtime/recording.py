"""Session recordings that survive crashes and SIGKILL, their repair, and the source that replays them.

A recording is a folder:

* ``records.chunks`` - every message of the session (:class:`TrackingFrame`,
  :class:`SessionEvent` and, when the caller adds them, :class:`DisplayFrame` /
  :class:`WorldFrame` images) in an append-only sequence of chunks. A chunk is a 24-byte
  header - magic ``b"GXRC"``, chunk sequence number, record count, payload length, CRC32 of
  the payload, CRC32 of the previous 20 header bytes (all little-endian uint32) - followed by
  its payload: records, each a little-endian uint32 length and the message's msgpack bytes
  (:func:`genxr.platform.messages.encode`).
* ``manifest.json`` - written at start with ``complete: false`` and rewritten atomically
  (temp file + fsync + rename) on a clean close with ``complete: true`` and the counts.

The recorder keeps records in memory until ``flush_interval_s`` of session time (on its
clock; default 0.5 s) has passed since the last chunk, then writes them as one chunk and
fsyncs the file. A process killed at any point (SIGKILL, power loss) therefore loses at most
the records of the last ``flush_interval_s`` plus one frame; every earlier chunk is intact
on disk, and the chunk being written when it died is a torn tail.

:func:`read_recording` returns the records of every intact chunk and reports a torn tail in
``truncated_bytes`` and ``notes``; a chunk that fails its checksum while intact chunks follow
it (damage, not a crash) is a :class:`RecordingError` naming its byte offset.
:func:`verify_recording` reports the same without raising, and :func:`recover_recording`
saves a torn tail to a side file and truncates the chunk file to its last intact chunk;
it never truncates intact chunks. Recordings of the first format (``tracking.msgpack``
without checksums, ``events.jsonl``) are still read.

Hand-written rather than MCAP or rosbag: both need a schema registry and a reader library
for a stream of a few message types, and neither writes genxr's exact msgpack bytes.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import (
    MAX_MESSAGE_BYTES,
    DisplayFrame,
    Message,
    SessionEvent,
    TrackingFrame,
    WorldFrame,
    decode,
    encode,
)
from genxr.xr_runtime.timing import FrameTiming

CHUNKS_FILE = "records.chunks"
LEGACY_TRACKING_FILE = "tracking.msgpack"
"""The first format's tracking stream, still read by :func:`read_recording`."""
MANIFEST_FILE = "manifest.json"
CHUNK_MAGIC = b"GXRC"
_HEADER = struct.Struct("<4sIIIII")  # magic, sequence, record count, payload bytes, payload crc32, header crc32
_LENGTH = struct.Struct("<I")
HEADER_BYTES = _HEADER.size


class RecordingError(ValueError):
    """A recording that cannot be read or repaired; the message names the file and byte offset."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, body: Any) -> None:
    """Writes ``body`` as JSON to ``path`` through a temp file, fsync and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(body, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def chunk_bytes(sequence: int, records: list[bytes]) -> bytes:
    """One chunk (header + payload) holding ``records`` (encoded messages)."""
    payload = b"".join(_LENGTH.pack(len(r)) + r for r in records)
    head = struct.pack("<4sIIII", CHUNK_MAGIC, sequence, len(records), len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


class Recorder:
    """Appends a session's messages to a recording folder in checksummed, fsync'd chunks
    (see the module docstring). ``fsync_ns`` and ``bytes_written`` count the cost."""

    def __init__(self, folder: str | os.PathLike[str], metadata: dict[str, Any] | None = None, *,
                 flush_interval_s: float = 0.5, clock: Clock = MONOTONIC) -> None:
        if not 0 < flush_interval_s <= 1.0:
            raise ValueError(f"flush_interval_s must be in (0, 1] seconds, got {flush_interval_s}")
        self.folder = Path(folder)
        self.metadata = dict(metadata or {})
        self.flush_interval_ns = round(flush_interval_s * 1e9)
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
            _fsync_dir(self.folder)
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


@dataclass(frozen=True)
class ChunkScan:
    """What :func:`scan_chunks` found in a chunk file (offsets in bytes)."""

    path: Path
    size: int
    chunks: list[tuple[int, bytes]]
    """(byte offset, payload) of each intact chunk, in order."""
    good_bytes: int
    """End of the last intact chunk."""
    problem: str | None = None
    """Why the bytes from ``good_bytes`` on are not an intact chunk, None if there are none."""
    corrupt: bool = False
    """True when intact chunks follow the bad one: damage in the middle, not a torn tail."""

    @property
    def torn_bytes(self) -> int:
        return 0 if self.corrupt else self.size - self.good_bytes


def _chunk_at(data: bytes, offset: int, sequence: int | None) -> tuple[int, bytes] | str:
    """(end offset, payload) of the intact chunk at ``offset``, or why there is none."""
    if len(data) - offset < HEADER_BYTES:
        return f"only {len(data) - offset} bytes remain, fewer than a chunk header"
    magic, seq, count, length, payload_crc, header_crc = _HEADER.unpack_from(data, offset)
    if magic != CHUNK_MAGIC or zlib.crc32(data[offset:offset + HEADER_BYTES - 4]) != header_crc:
        return "the chunk header fails its checksum"
    if sequence is not None and seq != sequence:
        return f"chunk number {seq} where {sequence} was expected"
    end = offset + HEADER_BYTES + length
    if end > len(data):
        return f"the chunk claims {length} payload bytes but the file ends {end - len(data)} bytes short"
    payload = data[offset + HEADER_BYTES:end]
    if zlib.crc32(payload) != payload_crc:
        return "the chunk payload fails its checksum"
    return end, payload


def _intact_chunk_after(data: bytes, offset: int) -> int | None:
    """Offset of the first intact chunk starting after ``offset``, if any."""
    start = data.find(CHUNK_MAGIC, offset + 1)
    while start != -1:
        if not isinstance(_chunk_at(data, start, None), str):
            return start
        start = data.find(CHUNK_MAGIC, start + 1)
    return None


def scan_chunks(path: Path) -> ChunkScan:
    """Every intact chunk of ``path`` and a description of what follows them."""
    data = path.read_bytes()
    chunks: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        found = _chunk_at(data, offset, len(chunks))
        if isinstance(found, str):
            later = _intact_chunk_after(data, offset)
            where = f"{path}: chunk {len(chunks)} at byte {offset}: {found}"
            if later is not None:
                return ChunkScan(path, len(data), chunks, offset, f"{where}; an intact chunk follows at byte {later}",
                                 corrupt=True)
            return ChunkScan(path, len(data), chunks, offset, f"{where} (a torn last chunk: {len(data) - offset} bytes)")
        end, payload = found
        chunks.append((offset, payload))
        offset = end
    return ChunkScan(path, len(data), chunks, offset)


def _records(offset: int, payload: bytes, path: Path) -> list[tuple[int, bytes]]:
    out, position = [], 0
    while position < len(payload):
        at = offset + HEADER_BYTES + position
        if position + _LENGTH.size > len(payload):
            raise RecordingError(f"{path}: record at byte {at} is corrupt: its length prefix is cut off")
        (length,) = _LENGTH.unpack_from(payload, position)
        if length > MAX_MESSAGE_BYTES or position + _LENGTH.size + length > len(payload):
            raise RecordingError(f"{path}: record at byte {at} is corrupt: it claims {length} bytes")
        out.append((at, payload[position + _LENGTH.size:position + _LENGTH.size + length]))
        position += _LENGTH.size + length
    return out


@dataclass
class Recording:
    """What :func:`read_recording` found."""

    frames: list[TrackingFrame]
    events: list[SessionEvent]
    manifest: dict[str, Any]
    truncated_bytes: int = 0
    """Bytes of a torn last chunk (the process died while writing it) that were skipped."""
    notes: list[str] = field(default_factory=list)
    images: list[DisplayFrame | WorldFrame] = field(default_factory=list)
    chunks: int = 0

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete")) and self.truncated_bytes == 0


def _read_manifest(folder: Path) -> dict[str, Any]:
    if not (folder / CHUNKS_FILE).is_file():
        legacy = " (it holds a first-format recording: read_recording reads it, verify/recover need chunks)" \
            if (folder / LEGACY_TRACKING_FILE).is_file() else ""
        raise RecordingError(f"{folder} is not a genxr recording: {CHUNKS_FILE} is missing{legacy}")
    try:
        return json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordingError(f"{folder / MANIFEST_FILE} cannot be read: {err}") from err


def _read_legacy(folder: Path) -> Recording:
    """A recording of the first format (``tracking.msgpack`` length-prefixed records without
    checksums, ``events.jsonl``), read so that sessions recorded before chunks stay usable."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordingError(f"{folder / MANIFEST_FILE} cannot be read: {err}") from err
    path = folder / LEGACY_TRACKING_FILE
    data = path.read_bytes()
    recording = Recording([], [], manifest, notes=[f"{folder}: first-format recording (no checksums)"])
    offset = 0
    while offset < len(data):
        length = _LENGTH.unpack_from(data, offset)[0] if offset + _LENGTH.size <= len(data) else None
        if length is None or offset + _LENGTH.size + length > len(data):
            recording.truncated_bytes = len(data) - offset
            recording.notes.append(f"{path}: skipped a half-written last record ({recording.truncated_bytes} bytes "
                                   f"at byte {offset})")
            break
        try:
            recording.frames.append(decode(data[offset + _LENGTH.size:offset + _LENGTH.size + length],
                                           expected=TrackingFrame))
        except ValueError as err:
            raise RecordingError(f"{path}: record at byte {offset} is corrupt: {err}") from err
        offset += _LENGTH.size + length
    events = folder / "events.jsonl"
    for number, line in enumerate(events.read_text().splitlines() if events.is_file() else [], start=1):
        try:
            recording.events.append(SessionEvent.model_validate_json(line))
        except ValueError as err:
            recording.notes.append(f"{events}:{number}: skipped an unreadable event ({err.__class__.__name__})")
    return recording


def read_recording(folder: str | os.PathLike[str]) -> Recording:
    """Reads a recording folder; see the module docstring for what happens to damage."""
    folder = Path(folder)
    if not (folder / CHUNKS_FILE).is_file() and (folder / LEGACY_TRACKING_FILE).is_file():
        return _read_legacy(folder)
    manifest = _read_manifest(folder)
    scan = scan_chunks(folder / CHUNKS_FILE)
    if scan.corrupt:
        raise RecordingError(scan.problem)
    recording = Recording([], [], manifest, scan.torn_bytes, chunks=len(scan.chunks))
    for offset, payload in scan.chunks:
        for at, record in _records(offset, payload, scan.path):
            try:
                message = decode(record)
            except ValueError as err:  # includes pydantic's ValidationError
                raise RecordingError(f"{scan.path}: record at byte {at} is corrupt: {err}") from err
            if isinstance(message, TrackingFrame):
                recording.frames.append(message)
            elif isinstance(message, SessionEvent):
                recording.events.append(message)
            else:
                recording.images.append(message)
    if scan.problem is not None:
        recording.notes.append(f"skipped {scan.problem}; `genxr study recover` saves and truncates it")
    if not manifest.get("complete"):
        recording.notes.append(f"{folder}: the session did not close cleanly (manifest complete=false)")
    return recording


def tail_recording(folder: str | os.PathLike[str], offset: int = 0, chunk: int = 0) -> tuple[list[Message], int, int]:
    """(messages of the intact chunks from byte ``offset`` on, the offset and number of the next chunk):
    follows a recording while it is written, reading only new bytes. Start with ``(0, 0)`` and
    pass the returned offset and number back; a chunk still being written is left for the next call."""
    path = Path(folder) / CHUNKS_FILE
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    messages: list[Message] = []
    position = 0
    while position < len(data):
        found = _chunk_at(data, position, chunk)
        if isinstance(found, str):
            break
        end, payload = found
        for at, record in _records(offset + position, payload, path):
            try:
                messages.append(decode(record))
            except ValueError as err:
                raise RecordingError(f"{path}: record at byte {at} is corrupt: {err}") from err
        position, chunk = end, chunk + 1
    return messages, offset + position, chunk


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_recording` found: intact chunks and records, and any damage."""

    folder: Path
    chunks: int
    records: int
    good_bytes: int
    torn_bytes: int
    problem: str | None
    corrupt: bool
    closed_cleanly: bool

    @property
    def ok(self) -> bool:
        """Every byte is an intact chunk (the session may still have ended uncleanly)."""
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "ok": self.ok, "chunks": self.chunks, "records": self.records,
                "good_bytes": self.good_bytes, "torn_bytes": self.torn_bytes, "problem": self.problem,
                "corrupt": self.corrupt, "closed_cleanly": self.closed_cleanly}


def verify_recording(folder: str | os.PathLike[str]) -> VerifyReport:
    """Checks every chunk's checksums without changing anything."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    scan = scan_chunks(folder / CHUNKS_FILE)
    records = sum(len(_records(offset, payload, scan.path)) for offset, payload in scan.chunks)
    return VerifyReport(folder, len(scan.chunks), records, scan.good_bytes, scan.torn_bytes, scan.problem,
                        scan.corrupt, bool(manifest.get("complete")))


def recover_recording(folder: str | os.PathLike[str]) -> VerifyReport:
    """Truncates a torn last chunk after saving its bytes to ``records.chunks.torn-at-<offset>``
    and notes the repair in the manifest; returns the report of the repaired recording.

    Raises :class:`RecordingError` (and changes nothing) when a bad chunk is followed by
    intact ones: cutting there would drop recorded data.
    """
    folder = Path(folder)
    report = verify_recording(folder)
    if report.corrupt:
        raise RecordingError(f"not repaired: {report.problem}. Truncating would drop the intact chunks after it; "
                             "copy the folder and inspect it by hand.")
    if report.torn_bytes == 0:
        return report
    path = folder / CHUNKS_FILE
    side = folder / f"{CHUNKS_FILE}.torn-at-{report.good_bytes}"
    with open(path, "rb") as source:
        source.seek(report.good_bytes)
        tail = source.read()
    with open(side, "wb") as handle:
        handle.write(tail)
        handle.flush()
        os.fsync(handle.fileno())
    with open(path, "r+b") as handle:
        handle.truncate(report.good_bytes)
        os.fsync(handle.fileno())
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest.setdefault("recovered", []).append(
        {"truncated_at_byte": report.good_bytes, "torn_bytes": report.torn_bytes, "saved_to": side.name,
         "intact_chunks": report.chunks})
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    return verify_recording(folder)


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
