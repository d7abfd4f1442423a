"""What the dashboard shows of one session folder, as JSON-able dicts.

Inputs (all optional but one): ``trace.json`` (Chrome Trace Event JSON written when the
session ends), ``spans.jsonl`` (one "X" event per line, appended while it runs by
:class:`genxr.platform.tracing.LiveSpanWriter`), ``metrics.json`` (the session's summary)
and ``recording/`` (tracking frames and events, fsync'd every 0.5 s while it runs).

Derived, all times in milliseconds unless named ``_s``:

* ``stages``: per span name, its track and count / mean / p50 / p95 / p99 / max duration;
* ``timeline``: per span name, start (seconds since the session's first span), duration and
  frame id of every span (evenly thinned to at most ``MAX_POINTS`` per stage);
* ``frame_work_ms``: per displayed frame, first start to last end of the loop's spans that
  carry its frame id (tracking read, requests, compositing, sinks), with ``deadline_ms`` the
  display period and ``over_deadline`` how many frames took longer;
* ``frame_intervals_ms``: gaps between consecutive recorded tracking samples (a missed
  refresh shows as a doubled period);
* ``world_updates_per_s``: "receive world_model" spans per second in whole 0.5 s bins of
  session time (bin centres in ``world_updates_t_s``);
* ``motion_to_photon``: rotational and content motion-to-photon p50/p99 from metrics.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genxr.platform.stats import summary
from genxr.platform.units import MS_PER_S, NS_PER_MS, NS_PER_S, US_PER_MS, US_PER_S
from genxr.xr_runtime.recording.format import CHUNKS_FILE, RecordingError
from genxr.xr_runtime.recording.reader import read_recording

MAX_POINTS = 4000
RATE_BIN_S = 0.5
LOOP_TRACKS = ("tracking", "loop", "compositor", "sink")
SPANS_FILE = "spans.jsonl"


def is_session_folder(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in ("trace.json", SPANS_FILE, "metrics.json",
                                                                         "recording"))


def read_spans(folder: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The "X" events of the session and where they came from (``trace.json`` once written)."""
    trace = folder / "trace.json"
    if trace.is_file():
        events = json.loads(trace.read_text())["traceEvents"]
        return [e for e in events if e.get("ph") == "X"], "trace.json"
    live = folder / SPANS_FILE
    if live.is_file():
        events = []
        for line in live.read_text().split("\n"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line being appended right now
        return events, SPANS_FILE
    return [], None


def _thin(indices: np.ndarray) -> np.ndarray:
    if indices.size <= MAX_POINTS:
        return indices
    return indices[np.linspace(0, indices.size - 1, MAX_POINTS).round().astype(int)]


def span_views(events: list[dict[str, Any]], deadline_ms: float | None) -> dict[str, Any]:
    """Stage percentiles, timelines, frame work times and world update rate from "X" events."""
    if not events:
        return {"stages": {}, "timeline": {}, "frame_work_ms": [], "over_deadline": 0, "world_updates_per_s": [],
                "world_updates_t_s": []}
    origin_us = min(e["ts"] for e in events)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_name.setdefault(event["name"], []).append(event)
    stages, timeline = {}, {}
    for name, group in sorted(by_name.items()):
        starts = np.array([(e["ts"] - origin_us) / US_PER_S for e in group])
        durations = np.array([e["dur"] / US_PER_MS for e in group])
        stages[name] = {"track": group[0].get("cat", ""), **summary(durations)}
        keep = _thin(np.argsort(starts, kind="stable"))
        timeline[name] = {"t_s": starts[keep].round(6).tolist(), "dur_ms": durations[keep].round(4).tolist(),
                          "frame_id": [group[i].get("args", {}).get("frame_id") for i in keep]}
    extent: dict[int, list[float]] = {}
    for event in events:
        frame = event.get("args", {}).get("frame_id")
        if frame is None or event.get("cat") not in LOOP_TRACKS:
            continue
        span = extent.setdefault(frame, [event["ts"], event["ts"] + event["dur"]])
        span[0], span[1] = min(span[0], event["ts"]), max(span[1], event["ts"] + event["dur"])
    work = [round((end - start) / US_PER_MS, 4) for _, (start, end) in sorted(extent.items())]
    received = np.array([(e["ts"] - origin_us) / US_PER_S for e in by_name.get("receive world_model", [])])
    duration_s = max((e["ts"] + e["dur"] - origin_us) / US_PER_S for e in events)
    bins = max(1, int(duration_s / RATE_BIN_S))  # whole bins only: a partial last bin would read as a drop
    width = RATE_BIN_S if duration_s >= RATE_BIN_S else max(duration_s, 1e-3)
    counts = np.histogram(received, bins=bins, range=(0, bins * width))[0]
    return {"stages": stages, "timeline": timeline, "frame_work_ms": work,
            "over_deadline": int(sum(w > deadline_ms for w in work)) if deadline_ms else 0,
            "world_updates_per_s": (counts / width).round(3).tolist(),
            "world_updates_t_s": ((np.arange(bins) + 0.5) * width).round(3).tolist()}


def recording_view(folder: Path) -> tuple[dict[str, Any], float | None]:
    """(frames, intervals, events, state of the recording; the display period in ms from its manifest)."""
    if not (folder / "recording" / CHUNKS_FILE).is_file():
        return {"frames": 0, "frame_intervals_ms": [], "events": [], "closed": None, "notes": []}, None
    try:
        recording = read_recording(folder / "recording")
    except RecordingError as err:
        return {"frames": 0, "frame_intervals_ms": [], "events": [], "closed": False, "notes": [str(err)]}, None
    times = np.array([f.sample_time_ns for f in recording.frames], dtype=np.int64)
    origin = int(times[0]) if times.size else 0
    intervals = (np.diff(times) / NS_PER_MS).round(4) if times.size > 1 else np.array([])
    keep = _thin(np.arange(intervals.size))
    rate = recording.manifest.get("display_rate_hz") or \
        recording.manifest.get("config", {}).get("session", {}).get("display_rate_hz")  # the runtime's, else the config's
    return {"frames": len(recording.frames), "frame_intervals_ms": intervals[keep].tolist(),
            "events": [{"t_s": (e.time_ns - origin) / NS_PER_S, "kind": e.kind, "detail": e.detail}
                       for e in recording.events][-200:],
            "closed": bool(recording.manifest.get("complete")), "notes": recording.notes}, (MS_PER_S / rate if rate else None)


def load_session(folder: str | Path) -> dict[str, Any]:
    """Everything the dashboard shows of one session (module docstring)."""
    folder = Path(folder)
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    recording, deadline_ms = recording_view(folder)
    events, spans_from = read_spans(folder)
    views = span_views(events, deadline_ms)
    m = metrics or {}
    return {
        "name": folder.name, "path": str(folder), "finished": (folder / "trace.json").is_file(),
        "spans_from": spans_from, "metrics": metrics, "deadline_ms": deadline_ms, "recording": recording, **views,
        "motion_to_photon": {
            "rotational": {"p50_ms": m.get("rotational_m2p_ms_p50"), "p99_ms": m.get("rotational_m2p_ms_p99")},
            "content": {"p50_ms": m.get("content_latency_ms_p50"), "p99_ms": m.get("content_latency_ms_p99")}},
        "update_rates_hz": {"world_model": m.get("world_model_hz"), "avatar": m.get("avatar_hz")},
    }


def perfetto_trace(folder: str | Path) -> dict[str, Any]:
    """The session's Chrome trace for Perfetto: trace.json, or the live spans so far as one."""
    folder = Path(folder)
    if (folder / "trace.json").is_file():
        return json.loads((folder / "trace.json").read_text())
    events, _ = read_spans(folder)
    tids: dict[str, int] = {}
    out: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                                  "args": {"name": f"genxr {folder.name} (live)"}}]
    for event in events:
        track = event.get("cat", "")
        if track not in tids:
            tids[track] = len(tids) + 1
            out.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tids[track], "args": {"name": track}})
        out.append({**event, "pid": 1, "tid": tids[track]})
    return {"traceEvents": out, "displayTimeUnit": "ms"}
