"""Export of a recording (:mod:`genxr.xr_runtime.recording.format`) to CSV or Parquet tables.

Two tables, one row per record:

* ``tracking`` (the layout of :mod:`genxr.xr_runtime.recording.table`): ``frame_id``, ``sample_time_ns``, ``predicted_display_time_ns``,
  ``head_tracked``, head position ``head_x/y/z`` (m) and orientation ``head_qx/qy/qz/qw``
  (a unit quaternion, x y z w), then per hand (``left``, ``right``) ``<side>_active`` and for
  every joint (OpenXR's 26, in order) its position ``<side>_<joint>_x/y/z`` (m), orientation
  ``<side>_<joint>_qx/qy/qz/qw``, radius ``<side>_<joint>_radius`` (m) and location flags
  ``<side>_<joint>_flags`` (OpenXR's ``XrSpaceLocationFlags`` bits: 1 orientation valid, 2
  position valid, 4 orientation tracked, 8 position tracked) - all empty when the hand is
  absent from the frame;
* ``events``: ``time_ns``, ``session_id``, ``kind``, ``detail``.

A torn tail is left out (as :func:`read_recording` does) and the export says so.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from genxr.xr_runtime.recording.reader import Recording, read_recording
from genxr.xr_runtime.recording.table import tracking_columns, tracking_row

FORMATS = ("csv", "parquet")


def tables(recording: Recording) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """(columns, rows) of each table."""
    return {
        "tracking": (tracking_columns(), [tracking_row(frame) for frame in recording.frames]),
        "events": (["time_ns", "session_id", "kind", "detail"],
                   [[e.time_ns, e.session_id, e.kind, e.detail] for e in recording.events]),
    }


def export_recording(folder: str | Path, out: str | Path, fmt: str = "csv") -> dict[str, Any]:
    """Writes ``out/tracking.<fmt>`` and ``out/events.<fmt>``; returns paths, row counts and notes."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    recording = read_recording(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"files": {}, "rows": {}, "notes": recording.notes}
    for name, (columns, rows) in tables(recording).items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                writer.writerows(["" if v is None else v for v in row] for row in rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({column: [row[i] for row in rows] for i, column in enumerate(columns)})
            pq.write_table(table, path)
        written["files"][name] = str(path)
        written["rows"][name] = len(rows)
    return written
