"""The recording format: file names, the chunk layout, atomic JSON and the chunk scanner.

See :mod:`genxr.xr_runtime.recording` for the format and its guarantees.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genxr.platform.messages import (
    MAX_MESSAGE_BYTES,
)

CHUNKS_FILE = "records.chunks"
LEGACY_TRACKING_FILE = "tracking.msgpack"
"""The first format's tracking stream, still read by :func:`read_recording`."""
MANIFEST_FILE = "manifest.json"
CHUNK_MAGIC = b"GXRC"
CHUNK_HEADER = struct.Struct("<4sIIIII")  # magic, sequence, record count, payload bytes, payload crc32, header crc32
RECORD_LENGTH = struct.Struct("<I")
HEADER_BYTES = CHUNK_HEADER.size


class RecordingError(ValueError):
    """A recording that cannot be read or repaired; the message names the file and byte offset."""


def fsync_dir(folder: Path) -> None:
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
    fsync_dir(path.parent)


def chunk_bytes(sequence: int, records: list[bytes]) -> bytes:
    """One chunk (header + payload) holding ``records`` (encoded messages)."""
    payload = b"".join(RECORD_LENGTH.pack(len(r)) + r for r in records)
    head = struct.pack("<4sIIII", CHUNK_MAGIC, sequence, len(records), len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


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


def chunk_at(data: bytes, offset: int, sequence: int | None) -> tuple[int, bytes] | str:
    """(end offset, payload) of the intact chunk at ``offset``, or why there is none."""
    if len(data) - offset < HEADER_BYTES:
        return f"only {len(data) - offset} bytes remain, fewer than a chunk header"
    magic, seq, count, length, payload_crc, header_crc = CHUNK_HEADER.unpack_from(data, offset)
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
        if not isinstance(chunk_at(data, start, None), str):
            return start
        start = data.find(CHUNK_MAGIC, start + 1)
    return None


def scan_chunks(path: Path) -> ChunkScan:
    """Every intact chunk of ``path`` and a description of what follows them."""
    data = path.read_bytes()
    chunks: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        found = chunk_at(data, offset, len(chunks))
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


def chunk_records(offset: int, payload: bytes, path: Path) -> list[tuple[int, bytes]]:
    out, position = [], 0
    while position < len(payload):
        at = offset + HEADER_BYTES + position
        if position + RECORD_LENGTH.size > len(payload):
            raise RecordingError(f"{path}: record at byte {at} is corrupt: its length prefix is cut off")
        (length,) = RECORD_LENGTH.unpack_from(payload, position)
        if length > MAX_MESSAGE_BYTES or position + RECORD_LENGTH.size + length > len(payload):
            raise RecordingError(f"{path}: record at byte {at} is corrupt: it claims {length} bytes")
        out.append((at, payload[position + RECORD_LENGTH.size:position + RECORD_LENGTH.size + length]))
        position += RECORD_LENGTH.size + length
    return out
