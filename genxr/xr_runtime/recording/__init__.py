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
