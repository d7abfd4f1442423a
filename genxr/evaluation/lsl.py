"""Publishes a genxr session over Lab Streaming Layer, so LabRecorder can record it into
one XDF file with a lab's other sensors (EEG, eye trackers, ...).

Three outlets per session (``source_id`` ``genxr-<session>-<stream>``, so LabRecorder
reconnects after a restart):

* ``genxr tracking`` (type ``MoCap``, float32, the display rate): :data:`TRACKING_CHANNELS` -
  head position (m) and orientation quaternion (x, y, z, w), head tracked (0/1), and per
  hand: active (0/1), wrist and index-tip positions (m, NaN when the hand is absent);
* ``genxr latency`` (type ``Latency``, one string channel, irregular): one JSON object per
  span - ``name``, ``track``, ``dur_ms``, ``frame_id``;
* ``genxr events`` (type ``Markers``, one string channel, irregular): session event kinds
  and details (``tracking_lost: left``).

Timestamps are the genxr clock's (CLOCK_MONOTONIC, seconds) - the clock ``pylsl.local_clock``
reads on Linux - taken from the data (tracking sample time, span start, event time), so
streams align with other LSL sources however late they are pushed.

:func:`follow_session` publishes a session folder as it is written: the recording's
chunks (fsync'd every 0.5 s) and ``spans.jsonl``, then ``trace.json`` when the session ends.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

from genxr.platform.messages import SessionEvent, TrackingFrame
from genxr.platform.units import NS_PER_S, US_PER_MS, US_PER_S
from genxr.xr_runtime.recording.format import CHUNKS_FILE
from genxr.xr_runtime.recording.reader import tail_recording

WRIST, INDEX_TIP = 1, 10
TRACKING_CHANNELS: tuple[str, ...] = (
    "head_x", "head_y", "head_z", "head_qx", "head_qy", "head_qz", "head_qw", "head_tracked",
    *(f"{side}_{name}" for side in ("left", "right")
      for name in ("active", "wrist_x", "wrist_y", "wrist_z", "index_tip_x", "index_tip_y", "index_tip_z")),
)


def tracking_sample(frame: TrackingFrame) -> list[float]:
    """The frame as one sample of the tracking stream (:data:`TRACKING_CHANNELS` order)."""
    sample = [*frame.head.position, *frame.head.orientation, float(frame.head_tracked)]
    for hand in (frame.left_hand, frame.right_hand):
        if hand is None:
            sample += [0.0] + [math.nan] * 6
        else:
            sample += [float(hand.is_active), *map(float, hand.positions[WRIST]), *map(float, hand.positions[INDEX_TIP])]
    return sample


class LslPublisher:
    """The three LSL outlets of one session (module docstring)."""

    def __init__(self, session: str, rate_hz: float = 90.0) -> None:
        import pylsl

        self.session = session
        tracking = pylsl.StreamInfo("genxr tracking", "MoCap", len(TRACKING_CHANNELS), rate_hz, "float32",
                                    f"genxr-{session}-tracking")
        channels = tracking.desc().append_child("channels")
        for name in TRACKING_CHANNELS:
            channel = channels.append_child("channel")
            channel.append_child_value("label", name)
            channel.append_child_value("unit", "" if name.endswith(("tracked", "active")) or "_q" in name else "metres")
        self.tracking = pylsl.StreamOutlet(tracking)
        self.latency = pylsl.StreamOutlet(pylsl.StreamInfo("genxr latency", "Latency", 1, pylsl.IRREGULAR_RATE,
                                                           "string", f"genxr-{session}-latency"))
        self.events = pylsl.StreamOutlet(pylsl.StreamInfo("genxr events", "Markers", 1, pylsl.IRREGULAR_RATE,
                                                          "string", f"genxr-{session}-events"))
        self.pushed = {"tracking": 0, "latency": 0, "events": 0}

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """True once every outlet has a consumer (e.g. LabRecorder), False after ``timeout_s``."""
        return all(outlet.wait_for_consumers(timeout_s) for outlet in (self.tracking, self.latency, self.events))

    def push_frame(self, frame: TrackingFrame) -> None:
        self.tracking.push_sample(tracking_sample(frame), frame.sample_time_ns / NS_PER_S)
        self.pushed["tracking"] += 1

    def push_span(self, event: dict[str, Any]) -> None:
        """A Chrome-trace "X" event (``ts``/``dur`` in microseconds) as one latency sample."""
        body = {"name": event["name"], "track": event.get("cat", ""), "dur_ms": event["dur"] / US_PER_MS,
                "frame_id": event.get("args", {}).get("frame_id")}
        self.latency.push_sample([json.dumps(body)], event["ts"] / US_PER_S)
        self.pushed["latency"] += 1

    def push_event(self, event: SessionEvent) -> None:
        self.events.push_sample([f"{event.kind}: {event.detail}" if event.detail else event.kind], event.time_ns / NS_PER_S)
        self.pushed["events"] += 1


def follow_session(folder: str | Path, publisher: LslPublisher, *, poll_s: float = 0.25,
                   stop: threading.Event | None = None) -> dict[str, int]:
    """Publishes the session in ``folder`` as it is written, until it has ended (``trace.json``
    exists and everything is pushed) or ``stop`` is set; returns the counts pushed."""
    folder = Path(folder)
    stop = stop or threading.Event()
    offset, chunk, spans_offset = 0, 0, 0
    spans_path = folder / "spans.jsonl"
    while True:
        finished = (folder / "trace.json").is_file()  # checked first: what follows is then complete
        if (folder / "recording" / CHUNKS_FILE).is_file():
            messages, offset, chunk = tail_recording(folder / "recording", offset, chunk)
            for message in messages:
                if isinstance(message, TrackingFrame):
                    publisher.push_frame(message)
                elif isinstance(message, SessionEvent):
                    publisher.push_event(message)
        if spans_path.is_file():
            with open(spans_path, "rb") as handle:
                handle.seek(spans_offset)
                data = handle.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line being appended waits for the next poll
            spans_offset += len(complete)
            for line in complete.decode().splitlines():
                if line:
                    publisher.push_span(json.loads(line))
        elif finished and spans_offset == 0:
            events = json.loads((folder / "trace.json").read_text())["traceEvents"]
            for event in events:
                if event.get("ph") == "X":
                    publisher.push_span(event)
        if finished or stop.wait(poll_s):
            return dict(publisher.pushed)
