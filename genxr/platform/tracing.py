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

Memory is bounded: at most ``max_spans`` are kept (oldest first out). A
:class:`LiveSpanWriter` attached to the tracer receives every span as it closes and appends
it to a JSON-lines file (``spans.jsonl`` of a session), so the tracer need only keep a
recent window and a session may run for hours in flat memory; :func:`read_span_file` then
gives the per-stage summary and writes ``trace.json`` from that file, streaming, with the
same content as :meth:`Tracer.summary` / :meth:`Tracer.write_chrome_trace` of the same
spans. Spans neither kept nor handed to a span file are counted in ``dropped_spans``.

Hand-written rather than OpenTelemetry: OTel's span model has no Chrome/Perfetto exporter
in its Python SDK and its per-span overhead is a large share of a 90 Hz frame
(docs/architecture.md, "Measured").
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import threading
from array import array
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
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
        self._dropped = 0
        self._unsaved = 0
        """How many of the newest kept spans were recorded while no span file was attached."""
        self._files: list[LiveSpanWriter] = []
        self._lock = threading.Lock()

    @property
    def max_spans(self) -> int:
        """The most spans kept in memory."""
        return self._spans.maxlen

    @property
    def recorded_spans(self) -> int:
        """Spans recorded so far."""
        return self._recorded

    @property
    def dropped_spans(self) -> int:
        """Spans recorded but no longer kept because ``max_spans`` was exceeded, unless a
        :class:`LiveSpanWriter` had received them (those are in its file)."""
        return self._dropped

    def record(self, span: Span) -> None:
        """Adds a finished span (for work timed elsewhere, e.g. in another process)."""
        if span.end_ns < span.start_ns:
            raise ValueError(f"span {span.name!r} ends ({span.end_ns}) before it starts ({span.start_ns})")
        with self._lock:
            if len(self._spans) == self._spans.maxlen and self._unsaved == len(self._spans):
                self._dropped += 1  # the oldest, about to leave the window, was never handed to a file
                self._unsaved -= 1
            self._spans.append(span)
            self._recorded += 1
            if self._files:
                for writer in self._files:
                    writer._put(span)
            else:
                self._unsaved += 1

    def _attach(self, writer: LiveSpanWriter) -> None:
        """From now on ``writer`` receives every recorded span; it starts with the kept ones."""
        with self._lock:
            writer._pending = list(self._spans)
            writer.missed_spans += self._recorded - len(self._spans)
            self._unsaved = 0
            self._files.append(writer)

    def _detach(self, writer: LiveSpanWriter) -> None:
        with self._lock:
            if writer in self._files:
                self._files.remove(writer)

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


def _lane_indices(spans: Iterable[tuple[Hashable, int, int]]) -> Iterator[int]:
    """Per (track, start_ns, end_ns), sorted by start: the lane of its track it is drawn on,
    0 for the track itself; overlapping, non-nested spans go to lanes 1, 2, ..."""
    lanes: dict[Hashable, list[list[int]]] = {}  # track -> per lane, stack of open end times
    for track, start_ns, end_ns in spans:
        stacks = lanes.setdefault(track, [])
        for index, stack in enumerate(stacks):
            while stack and stack[-1] <= start_ns:
                stack.pop()
            if not stack or end_ns <= stack[-1]:
                stack.append(end_ns)
                yield index
                break
        else:
            stacks.append([end_ns])
            yield len(stacks) - 1


def _lane_name(track: str, lane: int) -> str:
    return track if lane == 0 else f"{track} #{lane + 1}"


def _assign_lanes(spans: list[Span]) -> list[str]:
    """Per span (sorted by start), the track name it is drawn on: overlapping, non-nested
    spans of one track go to "<track> #2", "#3", ... so every drawn track nests properly."""
    lanes = _lane_indices((span.track, span.start_ns, span.end_ns) for span in spans)
    return [_lane_name(span.track, lane) for span, lane in zip(spans, lanes)]


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
        args["frame_id"] = _jsonable(span.frame_id)
    if span.source_frame_ids:
        args["source_frame_ids"] = _jsonable(list(span.source_frame_ids))
    return {"name": span.name, "cat": span.track, "ph": "X", "ts": span.start_ns / NS_PER_US,
            "dur": span.duration_ns / NS_PER_US, "args": args}



class LiveSpanWriter:
    """Streams every span a tracer records to a JSON-lines file, one :func:`span_event` per
    line, appended every ``interval_s`` seconds by a background thread: a dashboard follows a
    session through it while it runs (``trace.json`` is written only at the end), and with it
    the tracer needs to keep only a recent window (its ``max_spans``) for memory to stay flat
    however long the session runs. :func:`read_span_file` reads the file back for the summary
    and ``trace.json``.

    Entering truncates the file and hands it the spans the tracer keeps; from then on the
    tracer hands it each span as it is recorded, in recording order. Leaving the ``with``
    block writes the rest, stops the thread and closes the file. ``missed_spans`` counts the
    tracer's spans the file lacks: dropped by the tracer before the writer was attached,
    beyond ``max_pending`` waiting spans (a stalled disk), or not written because writing
    failed. A failed write (a full disk) does not raise: ``error`` holds the ``OSError``,
    naming the file; the torn last line is cut off, so every line in the file is whole, and
    later spans are only counted.

        with LiveSpanWriter(tracer, folder / "spans.jsonl") as spans:
            loop.run(...)
        spans.read().write_chrome_trace(folder / "trace.json", dropped_spans=spans.missed_spans)
    """

    def __init__(self, tracer: Tracer, path: str | os.PathLike[str], interval_s: float = 0.25,
                 max_pending: int = 100_000) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.tracer, self.path, self.interval_s, self.max_pending = tracer, Path(path), interval_s, max_pending
        self.written = 0
        self.missed_spans = 0
        self.error: OSError | None = None
        self._pending: list[Span] = []
        self._fd: int | None = None
        self._size = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, span: Span) -> None:
        """Called by the tracer, under its lock, for every span it records."""
        if self.error is not None or len(self._pending) >= self.max_pending:
            self.missed_spans += 1
        else:
            self._pending.append(span)

    def flush(self) -> int:
        """Writes the spans recorded since the last flush; returns how many."""
        with self._write_lock:
            with self.tracer._lock:
                batch, self._pending = self._pending, []
                if batch and (self._fd is None or self.error is not None):
                    self.missed_spans += len(batch)
                    return 0
            if not batch:
                return 0
            data = "".join(json.dumps(span_event(span)) + "\n" for span in batch).encode()
            done = 0
            try:
                while done < len(data):
                    done += os.write(self._fd, data[done:])
            except OSError as err:
                whole = data.rfind(b"\n", 0, done) + 1  # the lines written entirely
                try:
                    os.ftruncate(self._fd, self._size + whole)
                except OSError:
                    pass
                complete = data.count(b"\n", 0, whole)
                self._size += whole
                self.written += complete
                with self.tracer._lock:
                    self.missed_spans += len(batch) - complete
                    self.error = OSError(err.errno, f"cannot append to the span stream {str(self.path)!r}: "
                                                    f"{err.strerror or err}; the {self.written} spans written "
                                                    "before are intact", str(self.path))
                return complete
            self._size += len(data)
            self.written += len(batch)
            return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def __enter__(self) -> LiveSpanWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as err:
            raise OSError(err.errno, f"cannot write the span stream {str(self.path)!r}: {err.strerror or err}",
                          str(self.path)) from err
        self._size = 0
        self.tracer._attach(self)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-spans", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.tracer._detach(self)
        try:
            self.flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def read(self) -> SpanFile:
        """The file as written so far (see :func:`read_span_file`); after the ``with`` block, every span."""
        return read_span_file(self.path)


def _ns(microseconds: float) -> int:
    """The integer nanoseconds a span file's ``microseconds`` were written from (``ns / NS_PER_US``);
    exact below 2^52 ns, 52 days of CLOCK_MONOTONIC: above, starts within ~2 ns of each other
    may tie, and the trace orders tied spans as they were recorded."""
    return round(microseconds * NS_PER_US)


@dataclass(frozen=True)
class SpanFile:
    """A span file (:class:`LiveSpanWriter`'s JSON lines) indexed in compact arrays, about
    80 bytes a span: what the summary and the trace need, and where each line is, so that
    :meth:`write_chrome_trace` streams the file into ``trace.json`` without holding the spans
    (see :func:`read_span_file`)."""

    path: Path
    names: tuple[str, ...]
    tracks: tuple[str, ...]
    name_ids: np.ndarray
    track_ids: np.ndarray
    start_ns: np.ndarray
    duration_ns: np.ndarray
    ts_us: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    flow_frames: np.ndarray
    """(frame id, row, position in the row's frame set) of every frame a span carries."""
    flow_rows: np.ndarray
    flow_positions: np.ndarray
    unreadable_lines: int = 0

    def __len__(self) -> int:
        return len(self.start_ns)

    def summary(self) -> dict[str, dict[str, float]]:
        """:func:`summarize` of the file's spans (the same as :meth:`Tracer.summary` of the same spans)."""
        order = np.argsort(self.name_ids, kind="stable")  # recording order within each name
        durations = self.duration_ns[order]
        bounds = np.searchsorted(self.name_ids[order], np.arange(len(self.names) + 1))
        out: dict[str, dict[str, float]] = {}
        for index, name in sorted(enumerate(self.names), key=lambda item: item[1]):
            stats = summary(durations[bounds[index]:bounds[index + 1]], per=NS_PER_MS)
            out[name] = {**stats, "count": float(stats["count"])}
        return out

    def _events(self, process_name: str, lines: Any) -> Iterator[bytes]:
        """The events of :func:`chrome_trace` for the file's spans, JSON-encoded, in the same order.
        The "X" events are the file's lines with ``pid`` and ``tid`` spliced in (a line holds the
        same keys in the same order, written by the same ``json.dumps``); the rows are visited
        in chunks, so memory holds the index, not a Python object per span."""
        yield json.dumps({"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                          "args": {"name": process_name}}).encode()
        count = len(self)
        ends = self.start_ns + self.duration_ns
        order = np.lexsort((-ends, self.start_ns))  # stable, like sorted(): ties keep recording order
        lane_of = _lane_indices(itertools.chain.from_iterable(
            zip(self.track_ids[chunk].tolist(), self.start_ns[chunk].tolist(), ends[chunk].tolist())
            for chunk in _chunks(order)))
        tids: dict[str, int] = {}
        lane_names: dict[tuple[int, int], str] = {}
        tid_of_row = np.zeros(count, dtype=np.int32)
        for chunk in _chunks(order):
            rows = chunk.tolist()
            tracks = self.track_ids[chunk].tolist()
            offsets, lengths = self.offsets[chunk].tolist(), self.lengths[chunk].tolist()
            chunk_tids = []
            for track, offset, length in zip(tracks, offsets, lengths):
                lane = next(lane_of)
                name = lane_names.get((track, lane))
                if name is None:
                    name = lane_names[(track, lane)] = _lane_name(self.tracks[track], lane)
                tid = tids.get(name)
                if tid is None:
                    tid = tids[name] = len(tids) + 1
                    yield json.dumps({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                                      "args": {"name": name}}).encode()
                    yield json.dumps({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
                                      "args": {"sort_index": tid}}).encode()
                chunk_tids.append(tid)
                yield _complete_event(lines[offset:offset + length], tid)
            tid_of_row[rows] = chunk_tids
        if not len(self.flow_frames):
            return
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        flow_rank = rank[self.flow_rows]
        seen = np.lexsort((self.flow_positions, flow_rank))  # the order chrome_trace meets the frames in
        frames, first = np.unique(self.flow_frames[seen], return_index=True)
        first_seen = first[np.searchsorted(frames, self.flow_frames)]
        del rank, seen, frames, first
        chain = np.lexsort((flow_rank, first_seen))  # per frame in order of appearance, its spans in order
        del flow_rank
        groups = first_seen[chain]
        del first_seen
        starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
        del groups
        sizes = np.diff(np.append(starts, len(chain)))
        position = np.arange(len(chain)) - np.repeat(starts, sizes)  # index within its frame's chain
        size = np.repeat(sizes, sizes)
        for chunk in _chunks(np.flatnonzero(size >= 2)):
            rows = self.flow_rows[chain[chunk]]
            for frame, tid, ts, index, length in zip(self.flow_frames[chain[chunk]].tolist(),
                                                     tid_of_row[rows].tolist(), self.ts_us[rows].tolist(),
                                                     position[chunk].tolist(), size[chunk].tolist()):
                phase = "s" if index == 0 else "f" if index == length - 1 else "t"
                event = {"name": "tracking sample", "cat": "flow", "ph": phase, "id": frame, "pid": 1, "tid": tid,
                         "ts": ts}
                if phase != "s":
                    event["bp"] = "e"
                yield json.dumps(event).encode()

    def chrome_trace(self, process_name: str = "genxr", dropped_spans: int = 0) -> dict[str, Any]:
        """The file's spans as :func:`chrome_trace` gives them, in memory (small files, tests)."""
        return json.loads(self._write(None, process_name, dropped_spans))

    def write_chrome_trace(self, path: str | os.PathLike[str], process_name: str = "genxr",
                           dropped_spans: int = 0) -> Path:
        """Writes the file's spans to ``path`` as :meth:`Tracer.write_chrome_trace` writes the same
        spans (atomically), streaming: memory holds the index, not the events; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            self._write(tmp, process_name, dropped_spans)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def _write(self, target: Path | None, process_name: str, dropped_spans: int) -> bytes:
        """Writes the trace to ``target``, or returns it when None."""
        pieces: list[bytes] = []
        with open(self.path, "rb") as source, (open(target, "wb") if target is not None else nullcontext()) as out:
            size = os.fstat(source.fileno()).st_size
            lines = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            write = out.write if out is not None else pieces.append
            try:
                write(b'{"traceEvents": [')
                for index, event in enumerate(self._events(process_name, lines)):
                    if index:
                        write(b", ")
                    write(event)
                write(b'], "displayTimeUnit": "ms", "otherData": '
                      + json.dumps({"generator": "genxr", "dropped_spans": dropped_spans}).encode() + b"}")
            finally:
                if size:
                    lines.close()
        return b"".join(pieces)


_CHUNK = 1 << 16
_SPLICE_AT = b', "ph": "X", '


def _chunks(values: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _complete_event(line: bytes, tid: int) -> bytes:
    """A span file's line as the "X" event of :func:`chrome_trace` on thread ``tid``."""
    line = line.rstrip(b"\n")
    at = line.find(_SPLICE_AT)  # the first: JSON strings before it (name, cat) escape every quote
    if line.startswith(b'{"name": ') and at > 0:
        at += len(_SPLICE_AT)
        return b"%s\"pid\": 1, \"tid\": %d, %s" % (line[:at], tid, line[at:])
    event = json.loads(line)
    return json.dumps({"name": event["name"], "cat": event["cat"], "ph": "X", "pid": 1, "tid": tid,
                       "ts": event["ts"], "dur": event["dur"], "args": event["args"]}).encode()


def read_span_file(path: str | os.PathLike[str]) -> SpanFile:
    """Indexes a span file written by :class:`LiveSpanWriter` (``spans.jsonl``) in one pass;
    lines that are not whole span events (a line being appended) are skipped and counted."""
    path = Path(path)
    names: dict[str, int] = {}
    tracks: dict[str, int] = {}
    name_ids, track_ids, lengths, flow_positions = (array("i") for _ in range(4))
    starts, durations, line_offsets, flow_frames, flow_rows = (array("q") for _ in range(5))
    ts_us = array("d")
    unreadable = 0
    position = 0
    with open(path, "rb") as handle:
        for line in handle:
            offset, position = position, position + len(line)
            try:
                event = json.loads(line)
                name, track, ts, dur, args = event["name"], event["cat"], event["ts"], event["dur"], event["args"]
                start_ns, duration_ns = _ns(ts), _ns(dur)
                frame_id = args.get("frame_id")
                frame_set = list({*(() if frame_id is None else (int(frame_id),)),
                                  *(int(frame) for frame in args.get("source_frame_ids", ()))})
            except (ValueError, KeyError, TypeError, AttributeError):
                unreadable += 1
                continue
            row = len(starts)
            name_ids.append(names.setdefault(name, len(names)))
            track_ids.append(tracks.setdefault(track, len(tracks)))
            starts.append(start_ns)
            durations.append(duration_ns)
            ts_us.append(ts)
            line_offsets.append(offset)
            lengths.append(len(line))
            for index, frame in enumerate(frame_set):
                flow_frames.append(frame)
                flow_rows.append(row)
                flow_positions.append(index)

    def numpy(values: array, dtype: Any) -> np.ndarray:
        return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)  # no copy

    return SpanFile(path=path, names=tuple(names), tracks=tuple(tracks), name_ids=numpy(name_ids, np.int32),
                    track_ids=numpy(track_ids, np.int32), start_ns=numpy(starts, np.int64),
                    duration_ns=numpy(durations, np.int64), ts_us=numpy(ts_us, np.float64),
                    offsets=numpy(line_offsets, np.int64), lengths=numpy(lengths, np.int32),
                    flow_frames=numpy(flow_frames, np.int64), flow_rows=numpy(flow_rows, np.int64),
                    flow_positions=numpy(flow_positions, np.int32), unreadable_lines=unreadable)
