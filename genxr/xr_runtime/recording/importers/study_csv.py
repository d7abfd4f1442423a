"""``genxr import study-csv``: the tables ``genxr study export`` writes, back into a recording.

The exact inverse of :mod:`genxr.evaluation.export`: ``tracking.csv`` (columns
:func:`~genxr.xr_runtime.recording.table.tracking_columns`, one row per frame) and, when it lies beside
it, ``events.csv`` (``time_ns, session_id, kind, detail``). Exporting a recording and importing
the CSV gives back the same frames (ids, times, poses, joints, radii, flags; the export writes
every float with ``repr``, which round-trips float64 and float32 exactly) and the same events.
Audio is not exported, so it does not come back. Without ``events.csv`` the import writes the
``started`` / ``stopped`` (and head ``tracking_lost`` / ``tracking_regained``) events a session writes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from genxr.platform.messages import (
    HAND_JOINT_COUNT,
    HAND_JOINT_NAMES,
    INT64_MAX,
    QUATERNION_TOLERANCE,
    UINT64_MAX,
    HandJoints,
    LocationFlags,
    Pose,
    SessionEvent,
    TrackingFrame,
)
from genxr.xr_runtime.recording.importers.common import (
    ImportReport,
    Progress,
    TrackingImportError,
    at,
    check_after,
    check_unit,
    parse_float,
    parse_int,
    session_events,
    write_recording,
)
from genxr.xr_runtime.recording.table import JOINT_FIELDS, tracking_columns

EVENT_COLUMNS = ("time_ns", "session_id", "kind", "detail")
_BOOLS = {"True": True, "False": False, "true": True, "false": False, "1": True, "0": False}


def _bool(text: str, path: Path, line: int, name: str) -> bool:
    if text not in _BOOLS:
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}; expected True or False")
    return _BOOLS[text]


class _Columns:
    """Positions of the export's columns in one CSV header (extra columns are ignored)."""

    def __init__(self, header: list[str], path: Path) -> None:
        index = {name: i for i, name in enumerate(header)}
        missing = [name for name in tracking_columns() if name not in index]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise TrackingImportError(f"{at(path, 1)}: the header lacks the column(s) {shown}; a tracking.csv "
                                      "from `genxr study export` has them all")
        known = set(tracking_columns())
        self.index = index
        self.width = len(header)
        self.extra = [name for name in header if name not in known]
        self.frame = {name: index[name] for name in tracking_columns()[:11]}
        self.hand_names = {side: [f"{side}_{joint}_{field}" for joint in HAND_JOINT_NAMES for field in JOINT_FIELDS]
                           for side in ("left", "right")}
        self.hand_cells = {side: [index[name] for name in names] for side, names in self.hand_names.items()}


def _hand(row: list[str], columns: _Columns, side: str, path: Path, line: int) -> HandJoints | None:
    active = row[columns.index[f"{side}_active"]]
    names = columns.hand_names[side]
    cells = [row[i] for i in columns.hand_cells[side]]
    if active == "":
        filled = next((i for i, cell in enumerate(cells) if cell != ""), None)
        if filled is not None:
            raise TrackingImportError(f"{at(path, line)}: {side}_active is empty (no {side} hand) but "
                                      f"{names[filled]} is {cells[filled]!r}; leave all of the hand's cells empty")
        return None
    values = np.empty((HAND_JOINT_COUNT, len(JOINT_FIELDS)))
    flags = np.empty(HAND_JOINT_COUNT, np.uint8)
    for k, (name, cell) in enumerate(zip(names, cells)):
        joint, field = divmod(k, len(JOINT_FIELDS))
        if JOINT_FIELDS[field] == "flags":
            flags[joint] = parse_int(cell, path, line, name, 0, 255)
        else:
            values[joint, field] = parse_float(cell, path, line, name)
    for joint, name in enumerate(HAND_JOINT_NAMES):
        if values[joint, 7] < 0:
            raise TrackingImportError(f"{at(path, line)}: {side}_{name}_radius {values[joint, 7]!r} is negative")
        if flags[joint] & LocationFlags.ORIENTATION_VALID:
            check_unit(tuple(values[joint, 3:7]), path, line, f"{side}_{name}_qx..qw")
    try:
        return HandJoints(hand=side, is_active=_bool(active, path, line, f"{side}_active"), location_flags=flags,
                          positions=values[:, 0:3].astype(np.float32), orientations=values[:, 3:7].astype(np.float32),
                          radii=values[:, 7].astype(np.float32))
    except ValidationError as err:
        raise TrackingImportError(f"{at(path, line)}: the {side} hand is invalid: {err}") from None


def _frame(row: list[str], columns: _Columns, path: Path, line: int) -> TrackingFrame:
    if len(row) != columns.width:
        raise TrackingImportError(f"{at(path, line)}: the row has {len(row)} cells, the header {columns.width}")
    cell = {name: row[i] for name, i in columns.frame.items()}
    frame_id = parse_int(cell["frame_id"], path, line, "frame_id", 0, UINT64_MAX)
    sample = parse_int(cell["sample_time_ns"], path, line, "sample_time_ns", 0, INT64_MAX)
    display = parse_int(cell["predicted_display_time_ns"], path, line, "predicted_display_time_ns", 0, INT64_MAX)
    if display < sample:
        raise TrackingImportError(f"{at(path, line)}: predicted_display_time_ns {display} is before "
                                  f"sample_time_ns {sample}")
    position = tuple(parse_float(cell[f"head_{a}"], path, line, f"head_{a}") for a in "xyz")
    orientation = tuple(parse_float(cell[f"head_q{a}"], path, line, f"head_q{a}") for a in "xyzw")
    check_unit(orientation, path, line, "head_qx..qw")
    try:
        return TrackingFrame(frame_id=frame_id, sample_time_ns=sample, predicted_display_time_ns=display,
                             head=Pose(position=position, orientation=orientation),
                             head_tracked=_bool(cell["head_tracked"], path, line, "head_tracked"),
                             left_hand=_hand(row, columns, "left", path, line),
                             right_hand=_hand(row, columns, "right", path, line))
    except ValidationError as err:
        raise TrackingImportError(f"{at(path, line)}: the frame is invalid: {err}") from None


def read_tracking_csv(path: Path, notes: list[str] | None = None) -> Iterator[TrackingFrame]:
    """The frames of an exported ``tracking.csv``, row by row, checked (see the module docstring)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise TrackingImportError(f"{path} is empty; expected the header of a `genxr study export` tracking.csv")
        columns = _Columns(header, path)
        if columns.extra and notes is not None:
            notes.append(f"{path}: ignored {len(columns.extra)} column(s) the export does not write: "
                         f"{', '.join(columns.extra[:5])}")
        last_id: int | None = None
        last_sample: int | None = None
        for row in reader:
            if not row:
                continue
            frame = _frame(row, columns, path, reader.line_num)
            check_after(frame.frame_id, last_id, path, reader.line_num, "frame_id")
            check_after(frame.sample_time_ns, last_sample, path, reader.line_num, "sample_time_ns")
            last_id, last_sample = frame.frame_id, frame.sample_time_ns
            yield frame


def read_events_csv(path: Path) -> list[SessionEvent]:
    """The events of an exported ``events.csv``, in file order."""
    events: list[SessionEvent] = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header[:4]) != EVENT_COLUMNS:
            raise TrackingImportError(f"{at(path, 1)}: the header is {header}; expected {', '.join(EVENT_COLUMNS)}")
        for row in reader:
            if not row:
                continue
            if len(row) < 4:
                raise TrackingImportError(f"{at(path, reader.line_num)}: the row has {len(row)} cells, expected 4")
            time_ns = parse_int(row[0], path, reader.line_num, "time_ns", 0, INT64_MAX)
            try:
                events.append(SessionEvent(session_id=row[1], time_ns=time_ns, kind=row[2], detail=row[3]))
            except ValidationError as err:
                problem = err.errors()[0]
                name = problem["loc"][0] if problem["loc"] else "row"
                raise TrackingImportError(f"{at(path, reader.line_num)}: {name} {problem['input']!r} is invalid: "
                                          f"{problem['msg']}") from None
    return events


def _merged(frames: Iterator[TrackingFrame], events: list[SessionEvent]) -> Iterator[TrackingFrame | SessionEvent]:
    """Frames and events in time order; events keep their file order."""
    pending = iter(events)
    event = next(pending, None)
    for frame in frames:
        while event is not None and event.time_ns <= frame.sample_time_ns:
            yield event
            event = next(pending, None)
        yield frame
    while event is not None:
        yield event
        event = next(pending, None)


def _count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def import_study_csv(tracking_csv: str | os.PathLike[str], out: str | os.PathLike[str], *,
                     on_progress: Progress | None = None) -> ImportReport:
    """Writes the recording an exported ``tracking.csv`` (or the folder holding it, with its
    ``events.csv`` if present) came from at ``out`` (a new or empty folder).

    Raises :class:`TrackingImportError` naming the file, line and column of malformed input
    (a missing column, a value that is not a number, a non-unit quaternion, a frame id or
    sample time that does not increase); nothing is then left at ``out``.
    """
    path = Path(tracking_csv)
    if path.is_dir():
        path = path / "tracking.csv"
    if not path.is_file():
        raise TrackingImportError(f"{path} does not exist; give the tracking.csv `genxr study export` wrote")
    notes: list[str] = []
    events_path = path.with_name("events.csv")
    frames = read_tracking_csv(path, notes)
    if events_path.is_file():
        messages = _merged(frames, read_events_csv(events_path))
    else:
        notes.append(f"no {events_path.name} beside {path.name}: wrote the started/stopped events a session writes")
        messages = session_events(frames, f"import-{path.parent.name or 'study-csv'}"[:128],
                                  f"imported from {path}")
    conversion = {"frames": "as exported (OpenXR reference space, metres, ns)", "quaternion_tolerance":
                  QUATERNION_TOLERANCE}
    stats = write_recording(Path(out), messages, {"format": "study-csv", "source": str(path)}, source=path,
                            total_frames=_count_rows(path), on_progress=on_progress)
    return ImportReport.of("study-csv", path, Path(out), stats, conversion, notes)
