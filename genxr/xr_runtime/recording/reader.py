"""Reading, verifying and repairing recordings (:mod:`genxr.xr_runtime.recording` describes the format).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genxr.platform.messages import (
    DisplayFrame,
    Message,
    SessionEvent,
    TrackingFrame,
    WorldFrame,
    decode,
)
from genxr.xr_runtime.recording.format import (
    CHUNKS_FILE,
    LEGACY_TRACKING_FILE,
    MANIFEST_FILE,
    RECORD_LENGTH,
    RecordingError,
    chunk_at,
    chunk_records,
    scan_chunks,
    write_json_atomic,
)


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


def read_manifest(folder: Path) -> dict[str, Any]:
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
        length = RECORD_LENGTH.unpack_from(data, offset)[0] if offset + RECORD_LENGTH.size <= len(data) else None
        if length is None or offset + RECORD_LENGTH.size + length > len(data):
            recording.truncated_bytes = len(data) - offset
            recording.notes.append(f"{path}: skipped a half-written last record ({recording.truncated_bytes} bytes "
                                   f"at byte {offset})")
            break
        try:
            recording.frames.append(decode(data[offset + RECORD_LENGTH.size:offset + RECORD_LENGTH.size + length],
                                           expected=TrackingFrame))
        except ValueError as err:
            raise RecordingError(f"{path}: record at byte {offset} is corrupt: {err}") from err
        offset += RECORD_LENGTH.size + length
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
    manifest = read_manifest(folder)
    scan = scan_chunks(folder / CHUNKS_FILE)
    if scan.corrupt:
        raise RecordingError(scan.problem)
    recording = Recording([], [], manifest, scan.torn_bytes, chunks=len(scan.chunks))
    for offset, payload in scan.chunks:
        for at, record in chunk_records(offset, payload, scan.path):
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
        found = chunk_at(data, position, chunk)
        if isinstance(found, str):
            break
        end, payload = found
        for at, record in chunk_records(offset + position, payload, path):
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
    manifest = read_manifest(folder)
    scan = scan_chunks(folder / CHUNKS_FILE)
    records = sum(len(chunk_records(offset, payload, scan.path)) for offset, payload in scan.chunks)
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
