"""What every importer shares: the error, the report, value checks, and writing the recording atomically."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genxr import __version__
from genxr.platform.clock import ManualClock
from genxr.platform.messages import QUATERNION_TOLERANCE, SessionEvent, TrackingFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.format import fsync_dir
from genxr.xr_runtime.recording.writer import Recorder

Progress = Callable[[int, int | None], None]
"""Called with (frames written, frames expected or None) every :data:`PROGRESS_EVERY` frames and at the end."""
PROGRESS_EVERY = 1000
CHUNK_INTERVAL_S = 1.0
"""Recorded seconds per chunk of the imported recording (the recorder's largest flush interval)."""


class TrackingImportError(ValueError):
    """Input that cannot be imported. The message names the file, the line (or row), the field and the
    offending value; nothing is left at the output folder."""


def at(path: Path, line: int | None = None) -> str:
    """``path:line`` (or ``path``) for the start of an error message."""
    return f"{path}:{line}" if line is not None else str(path)


def parse_float(text: Any, path: Path, line: int | None, name: str) -> float:
    """``text`` (a CSV cell or a JSON value) as a finite float, or a :class:`TrackingImportError` naming it."""
    if isinstance(text, bool):
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}, not a number")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}; it must be finite")
    return value


def parse_int(text: Any, path: Path, line: int | None, name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    """``text`` as an integer in [low, high], or a :class:`TrackingImportError` naming it."""
    if isinstance(text, (bool, float)):
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}, not an integer")
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise TrackingImportError(f"{at(path, line)}: {name} is {text!r}, not an integer") from None
    if not low <= value <= high:
        raise TrackingImportError(f"{at(path, line)}: {name} {value} is outside [{low}, {high}]")
    return value


def check_unit(quaternion: tuple[float, ...], path: Path, line: int | None, name: str) -> None:
    """Raises unless ``quaternion``'s norm is within ``QUATERNION_TOLERANCE`` of 1 (as a :class:`Pose` requires)."""
    norm = math.sqrt(sum(v * v for v in quaternion))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise TrackingImportError(
            f"{at(path, line)}: {name} {list(quaternion)} has norm {norm:.6f}; a unit quaternion is required "
            f"(tolerance {QUATERNION_TOLERANCE})")


def check_after(value: int, previous: int | None, path: Path, line: int | None, name: str) -> None:
    """Raises unless ``value`` is after ``previous`` (a stream's ids and times strictly increase)."""
    if previous is not None and value <= previous:
        raise TrackingImportError(
            f"{at(path, line)}: {name} {value} is not after the previous {previous}; "
            f"{name} must strictly increase (a replay plays frames in order)")


@dataclass
class WriteStats:
    """Counts of what :func:`write_recording` wrote."""

    frames: int = 0
    events: int = 0
    first_ns: int = 0
    last_ns: int = 0
    head_tracked: int = 0
    hands: dict[str, int] = field(default_factory=lambda: {"left": 0, "right": 0})

    def count(self, frame: TrackingFrame) -> None:
        if self.frames == 0:
            self.first_ns = frame.sample_time_ns
        self.last_ns = frame.sample_time_ns
        self.frames += 1
        self.head_tracked += frame.head_tracked
        for side in ("left", "right"):
            self.hands[side] += getattr(frame, f"{side}_hand") is not None


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: ``duration_s`` from the first to the last frame's sample time;
    ``head_tracked`` and ``hands_tracked`` the fraction of frames with the head tracked / the hand present."""

    format: str
    source: Path
    out: Path
    frames: int
    duration_s: float
    head_tracked: float
    hands_tracked: dict[str, float]
    events: int
    conversion: dict[str, Any]
    notes: list[str]

    @classmethod
    def of(cls, fmt: str, source: Path, out: Path, stats: WriteStats, conversion: dict[str, Any],
           notes: list[str]) -> ImportReport:
        frames = max(stats.frames, 1)
        return cls(fmt, source, out, stats.frames, (stats.last_ns - stats.first_ns) / NS_PER_S,
                   stats.head_tracked / frames, {side: n / frames for side, n in stats.hands.items()},
                   stats.events, conversion, notes)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "source": str(self.source), "out": str(self.out), "frames": self.frames,
                "duration_s": round(self.duration_s, 6), "head_tracked": round(self.head_tracked, 4),
                "hands_tracked": {side: round(v, 4) for side, v in self.hands_tracked.items()},
                "events": self.events, "conversion": self.conversion, "notes": self.notes,
                "replay": f"genxr demo --source replay --replay {self.out}"}


def session_events(frames: Iterable[TrackingFrame], session_id: str,
                   started_detail: str) -> Iterator[TrackingFrame | SessionEvent]:
    """``frames`` between a ``started`` and a ``stopped`` event, with ``tracking_lost`` /
    ``tracking_regained`` (detail ``head``) where ``head_tracked`` changes - the events a session writes."""
    last: TrackingFrame | None = None
    for frame in frames:
        if last is None:
            yield SessionEvent(session_id=session_id, time_ns=frame.sample_time_ns, kind="started",
                               detail=started_detail[:4096])
        if frame.head_tracked != (last.head_tracked if last is not None else True):
            yield SessionEvent(session_id=session_id, time_ns=frame.sample_time_ns,
                               kind="tracking_regained" if frame.head_tracked else "tracking_lost", detail="head")
        yield frame
        last = frame
    if last is not None:
        yield SessionEvent(session_id=session_id, time_ns=last.sample_time_ns, kind="stopped", detail="finished")


def _time_ns(message: TrackingFrame | SessionEvent) -> int:
    return message.sample_time_ns if isinstance(message, TrackingFrame) else message.time_ns


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrackingImportError(f"{out} already exists and is not an empty folder; give --out a new folder")


def write_recording(out: Path, messages: Iterable[TrackingFrame | SessionEvent], metadata: dict[str, Any], *,
                    source: Path, total_frames: int | None = None, on_progress: Progress | None = None) -> WriteStats:
    """Writes ``messages`` (in time order) as a recording at ``out`` with the session's recorder.

    The recording is written into a hidden folder beside ``out`` and renamed to ``out`` only once
    it is complete, so an error (a :class:`TrackingImportError` raised while ``messages`` is read)
    or an interruption leaves nothing at ``out``. Chunks hold :data:`CHUNK_INTERVAL_S` of recorded time.
    """
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    stats = WriteStats()
    try:
        messages = iter(messages)
        first = next(messages, None)
        clock = ManualClock(start_ns=0 if first is None else _time_ns(first))
        with Recorder(staging, {"genxr": __version__, "imported": metadata}, flush_interval_s=CHUNK_INTERVAL_S,
                      clock=clock) as recorder:
            for message in itertools.chain([] if first is None else [first], messages):
                clock.sleep_until_ns(_time_ns(message))
                if isinstance(message, TrackingFrame):
                    recorder.add_frame(message)
                    stats.count(message)
                    if on_progress is not None and stats.frames % PROGRESS_EVERY == 0:
                        on_progress(stats.frames, total_frames)
                else:
                    recorder.add_event(message)
                    stats.events += 1
            if stats.frames == 0:
                raise TrackingImportError(f"{source} holds no tracking frames to import")
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if on_progress is not None:
        on_progress(stats.frames, total_frames)
    return stats
