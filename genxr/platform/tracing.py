"""The one tracing API: spans on per-stage tracks, exported as Chrome Trace Event JSON.

A span is one piece of work of one pipeline stage (``track``: "tracking", "bus",
"world_model", "avatar", "compositor", "sink", ...) with start and end on the genxr clock.
It carries the ``frame_id`` it works for and optionally ``source_frame_ids``: the tracking
samples whose data it consumed (a world-model chunk consumes several; a displayed frame
shows content generated from an older sample). From those, the exporter draws Perfetto
flow arrows that follow each tracking sample through every span that used it, ending at
the frame that showed it.

    tracer = Tracer()
    with tracer.span("read_tracking", track="tracking", frame_id=7):
        ...
    tracer.write_chrome_trace("session/trace.json")   # opens in ui.perfetto.dev
    tracer.summary()  # {"read_tracking": {"count": 1, "p50_ms": ..., "p95_ms": ..., "p99_ms": ...}}

Format: ``{"traceEvents": [...]}`` with "M" metadata events naming the process and one
thread per track, "X" complete events (``ts``/``dur`` in microseconds, frame ids in
``args``) and "s"/"t"/"f" flow events bound to their enclosing slices. Spans of one track
that overlap without nesting (concurrent requests) are spread over extra tracks named
"<track> #2", ..., because Perfetto mishandles overlapping slices on one track.

Memory is bounded: at most ``max_spans`` are kept (oldest dropped first, counted in
``dropped_spans``), so a session may run indefinitely.

Hand-written rather than OpenTelemetry: OTel's span model has no Chrome/Perfetto exporter
in its Python SDK and its per-span overhead is a large share of a 90 Hz frame
(docs/architecture.md, "Measured").
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.stats import summary
from genxr.platform.units import NS_PER_MS, NS_PER_US


@dataclass(frozen=True)
class Span:
    """A finished span: ``name`` of work on ``track`` from ``start_ns`` to ``end_ns``."""

    name: str
    track: str
    start_ns: int
    end_ns: int
    frame_id: int | None = None
    source_frame_ids: tuple[int, ...] = ()
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class Tracer:
    """Collects spans from any thread; see the module docstring."""

    def __init__(self, clock: Clock = MONOTONIC, max_spans: int = 1_000_000, process_name: str = "genxr") -> None:
        if max_spans < 1:
            raise ValueError(f"max_spans must be >= 1, got {max_spans}")
        self.clock = clock
        self.process_name = process_name
        self._spans: deque[Span] = deque(maxlen=max_spans)
        self._recorded = 0
        self._lock = threading.Lock()

    @property
    def dropped_spans(self) -> int:
        """Spans recorded but no longer kept because ``max_spans`` was exceeded."""
        return self._recorded - len(self._spans)

    def record(self, span: Span) -> None:
        """Adds a finished span (for work timed elsewhere, e.g. in another process)."""
        if span.end_ns < span.start_ns:
            raise ValueError(f"span {span.name!r} ends ({span.end_ns}) before it starts ({span.start_ns})")
        with self._lock:
            self._spans.append(span)
            self._recorded += 1

    @contextmanager
    def span(self, name: str, *, track: str, frame_id: int | None = None,
             source_frame_ids: Iterable[int] = (), **args: Any) -> Iterator[dict[str, Any]]:
        """Times the ``with`` block as one span; yields its ``args`` dict to add results to.

        A span whose block raises is still recorded, with ``args["error"]`` naming the exception.
        """
        start_ns = self.clock.now_ns()
        try:
            yield args
        except BaseException as err:
            args["error"] = f"{type(err).__name__}: {err}"
            raise
        finally:
            self.record(Span(name, track, start_ns, self.clock.now_ns(), frame_id, tuple(source_frame_ids), args))

    def spans(self) -> list[Span]:
        """A snapshot of the kept spans, in recording order."""
        with self._lock:
            return list(self._spans)

    def spans_since(self, count: int) -> tuple[list[Span], int]:
        """(the kept spans recorded after the first ``count``, the number recorded so far);
        a follower passes the returned number back next time to get only newer spans."""
        with self._lock:
            recorded, kept = self._recorded, len(self._spans)
            new = min(max(recorded - count, 0), kept)
            return list(itertools.islice(self._spans, kept - new, kept)), recorded

    def summary(self) -> dict[str, dict[str, float]]:
        """Per span name: ``count``, ``mean_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``max_ms``."""
        return summarize(self.spans())

    def chrome_trace(self) -> dict[str, Any]:
        """The kept spans as a Chrome Trace Event JSON object (see module docstring)."""
        return chrome_trace(self.spans(), self.process_name, self.dropped_spans)

    def write_chrome_trace(self, path: str | os.PathLike[str]) -> Path:
        """Writes :meth:`chrome_trace` to ``path`` atomically (temp file + rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.chrome_trace()))
        os.replace(tmp, path)
        return path


def summarize(spans: Iterable[Span]) -> dict[str, dict[str, float]]:
    """Per span name, latency statistics in milliseconds (see :meth:`Tracer.summary`)."""
    by_name: dict[str, list[int]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span.duration_ns)
    out: dict[str, dict[str, float]] = {}
    for name, durations in sorted(by_name.items()):
        stats = summary(durations, per=NS_PER_MS)
        out[name] = {**stats, "count": float(stats["count"])}
    return out


def _assign_lanes(spans: list[Span]) -> list[str]:
    """Per span (sorted by start), the track name it is drawn on: overlapping, non-nested
    spans of one track go to "<track> #2", "#3", ... so every drawn track nests properly."""
    lanes: dict[str, list[list[int]]] = {}  # track -> per lane, stack of open end times
    names = []
    for span in spans:
        stacks = lanes.setdefault(span.track, [])
        for index, stack in enumerate(stacks):
            while stack and stack[-1] <= span.start_ns:
                stack.pop()
            if not stack or span.end_ns <= stack[-1]:
                stack.append(span.end_ns)
                names.append(span.track if index == 0 else f"{span.track} #{index + 1}")
                break
        else:
            stacks.append([span.end_ns])
            names.append(span.track if len(stacks) == 1 else f"{span.track} #{len(stacks)}")
    return names


def chrome_trace(spans: Iterable[Span], process_name: str = "genxr", dropped_spans: int = 0) -> dict[str, Any]:
    """Chrome Trace Event JSON for ``spans`` (one thread per track, flows per tracking sample)."""
    ordered = sorted(spans, key=lambda s: (s.start_ns, -s.end_ns))
    lanes = _assign_lanes(ordered)
    tids: dict[str, int] = {}
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": process_name}},
    ]
    flows: dict[int, list[tuple[Span, int]]] = {}
    for span, lane in zip(ordered, lanes):
        tid = tids.get(lane)
        if tid is None:
            tid = tids[lane] = len(tids) + 1
            events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": lane}})
            events.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid, "args": {"sort_index": tid}})
        args = dict(span.args)
        if span.frame_id is not None:
            args["frame_id"] = span.frame_id
        if span.source_frame_ids:
            args["source_frame_ids"] = list(span.source_frame_ids)
        events.append({"name": span.name, "cat": span.track, "ph": "X", "pid": 1, "tid": tid,
                       "ts": span.start_ns / NS_PER_US, "dur": span.duration_ns / NS_PER_US,
                       "args": {k: _jsonable(v) for k, v in args.items()}})
        for frame in {*(() if span.frame_id is None else (span.frame_id,)), *span.source_frame_ids}:
            flows.setdefault(frame, []).append((span, tid))
    for frame, chain in flows.items():
        if len(chain) < 2:
            continue
        for index, (span, tid) in enumerate(chain):
            phase = "s" if index == 0 else "f" if index == len(chain) - 1 else "t"
            event = {"name": "tracking sample", "cat": "flow", "ph": phase, "id": frame, "pid": 1, "tid": tid,
                     "ts": span.start_ns / NS_PER_US}
            if phase != "s":
                event["bp"] = "e"
            events.append(event)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"generator": "genxr", "dropped_spans": dropped_spans}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def span_event(span: Span) -> dict[str, Any]:
    """One span as a Chrome Trace "X" event without a thread id: ``cat`` is the track,
    ``ts``/``dur`` microseconds, ``args.frame_id`` / ``args.source_frame_ids`` as in :func:`chrome_trace`."""
    args = {k: _jsonable(v) for k, v in span.args.items()}
    if span.frame_id is not None:
        args["frame_id"] = span.frame_id
    if span.source_frame_ids:
        args["source_frame_ids"] = list(span.source_frame_ids)
    return {"name": span.name, "cat": span.track, "ph": "X", "ts": span.start_ns / NS_PER_US,
            "dur": span.duration_ns / NS_PER_US, "args": args}


class LiveSpanWriter:
    """Appends a tracer's new spans to a JSON-lines file every ``interval_s`` seconds, one
    :func:`span_event` per line, so a dashboard can follow a session while it runs
    (``trace.json`` is written only at the end). A background thread does the writing;
    leaving the ``with`` block writes the rest and stops it. Spans dropped by the tracer's
    ``max_spans`` before they were written are counted in ``missed_spans``.

        with LiveSpanWriter(tracer, folder / "spans.jsonl"):
            loop.run(...)
    """

    def __init__(self, tracer: Tracer, path: str | os.PathLike[str], interval_s: float = 0.25) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.tracer, self.path, self.interval_s = tracer, Path(path), interval_s
        self.written = 0
        self.missed_spans = 0
        self._seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        """Writes the spans recorded since the last flush; returns how many."""
        spans, recorded = self.tracer.spans_since(self._seen)
        self.missed_spans += recorded - self._seen - len(spans)
        self._seen = recorded
        if spans:
            with open(self.path, "a") as handle:
                handle.write("".join(json.dumps(span_event(span)) + "\n" for span in spans))
            self.written += len(spans)
        return len(spans)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def __enter__(self) -> LiveSpanWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self._thread = threading.Thread(target=self._run, name="live-spans", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
