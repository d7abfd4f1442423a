"""Spans streamed to a file as they close: the tracer keeps only a recent window, so memory
stays flat however long a session runs, and the summary and trace.json computed from the
file are those of the same spans in memory."""

from __future__ import annotations

import errno
import json
import random
import tracemalloc

import pytest

from genxr.platform import tracing
from genxr.platform.clock import ManualClock
from genxr.platform.tracing import LiveSpanWriter, Span, Tracer, read_span_file
from tests.helpers.disk import DiskFillsUp
from tests.helpers.tracing import validate_chrome_trace


def varied_spans(count: int, seed: int = 0) -> list[Span]:
    """Spans as a session has them, and the awkward cases: ties, nesting, concurrent spans of one
    track, flows over several spans, every kind of argument, times far from zero."""
    rng = random.Random(seed)
    spans = []
    for index in range(count):
        start = 10**15 + rng.randrange(0, 10**9)
        if rng.random() < 0.1:
            start = 10**15  # equal starts: the order they were recorded in decides
        end = start + rng.choice([0, 1, 999, rng.randrange(10**7)])
        frame_id = rng.choice([None, rng.randrange(50)])
        sources = tuple(rng.randrange(60) for _ in range(rng.randrange(4)))
        args = rng.choice([{}, {"frames_out": 4, "error": "KeyError: 'x'"}, {"shape": (1, 2)}, {"ms": 1.5},
                           {"limit": float("inf")}, {"kind": object}, {"ok": True, "none": None}])
        spans.append(Span(rng.choice(["read_tracking", "composite", "serve world_model", "submit video"]),
                          rng.choice(["tracking", "loop", "world_model", "sink"]), start, end, frame_id, sources,
                          args))
    return spans


def streamed(spans: list[Span], path, max_spans: int) -> tuple[Tracer, LiveSpanWriter]:
    tracer = Tracer(clock=ManualClock(), max_spans=max_spans)
    with LiveSpanWriter(tracer, path, interval_s=0.01) as writer:
        for index, span in enumerate(spans):
            tracer.record(span)
            if index % 5000 == 0:
                writer.flush()
    return tracer, writer


def test_summary_and_trace_from_the_file_equal_those_from_memory(tmp_path):
    spans = varied_spans(3000)
    in_memory = Tracer(clock=ManualClock())
    for span in spans:
        in_memory.record(span)
    tracer, writer = streamed(spans, tmp_path / "spans.jsonl", max_spans=100)
    assert len(tracer.spans()) == 100 and tracer.dropped_spans == 0 and writer.missed_spans == 0
    span_file = read_span_file(tmp_path / "spans.jsonl")
    assert len(span_file) == writer.written == 3000
    assert span_file.summary() == in_memory.summary()
    path = span_file.write_chrome_trace(tmp_path / "trace.json")
    assert path.read_text() == json.dumps(in_memory.chrome_trace()), "the same trace.json, byte for byte"
    trace = json.loads(path.read_text())
    validate_chrome_trace(trace)
    assert any(e["ph"] == "f" for e in trace["traceEvents"]) and not list(tmp_path.glob("*.tmp"))


def test_a_session_shaped_run_gives_the_same_files(tmp_path):
    """Spans timed by the tracer itself on a clock, frame after frame, with flows."""
    clock = ManualClock(start_ns=123_456_789)
    in_memory, tracer = Tracer(clock=clock), Tracer(clock=clock, max_spans=10)
    with LiveSpanWriter(tracer, tmp_path / "spans.jsonl"):
        for frame in range(400):
            for each in (in_memory, tracer):
                with each.span("read_tracking", track="tracking", frame_id=frame):
                    with each.span("decode", track="tracking", frame_id=frame) as args:
                        args["bytes"] = frame * 3
                with each.span("composite", track="compositor", frame_id=frame, source_frame_ids=[frame, frame - 2]):
                    pass
            clock.advance_ns(11_111_111)
    span_file = read_span_file(tmp_path / "spans.jsonl")
    assert span_file.summary() == in_memory.summary()
    assert span_file.chrome_trace() == in_memory.chrome_trace()


def test_memory_stays_flat_while_spans_stream_to_the_file(tmp_path):
    clock = ManualClock()
    tracer = Tracer(clock=clock, max_spans=500)

    def run(frames: int, start: int) -> None:
        for frame in range(start, start + frames):
            with tracer.span("composite", track="compositor", frame_id=frame, source_frame_ids=[frame]):
                clock.advance_ns(1_000)
            if frame % 1000 == 0:
                writer.flush()

    with LiveSpanWriter(tracer, tmp_path / "spans.jsonl", interval_s=0.05) as writer:
        run(5_000, 0)  # the window is full, the allocator warm
        writer.flush()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            run(40_000, 5_000)
            writer.flush()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 500_000, f"{grown} bytes more after 40,000 spans: spans are accumulating in memory"
    assert len(tracer.spans()) == 500 and tracer.dropped_spans == 0 and writer.missed_spans == 0
    assert read_span_file(tmp_path / "spans.jsonl").summary()["composite"]["count"] == 45_000


@pytest.mark.slow
def test_a_million_spans_keep_the_tracer_bounded_and_the_summary_exact(tmp_path):
    clock = ManualClock(start_ns=10**14)
    tracer = Tracer(clock=clock, max_spans=1000)
    names = ("read_tracking", "request world_model", "composite", "submit video")
    with LiveSpanWriter(tracer, tmp_path / "spans.jsonl") as writer:
        for frame in range(250_000):
            for step, name in enumerate(names):
                with tracer.span(name, track="loop", frame_id=frame):
                    clock.advance_ns(1_000 * (step + 1) + frame % 13)
            if frame % 2_500 == 0:
                writer.flush()
                assert len(tracer.spans()) <= 1000 and len(writer._pending) <= writer.max_pending
    assert tracer.recorded_spans == 1_000_000 and len(tracer.spans()) == 1000
    assert tracer.dropped_spans == 0 and writer.missed_spans == 0 and writer.written == 1_000_000
    summary = read_span_file(tmp_path / "spans.jsonl").summary()
    for step, name in enumerate(names):  # durations 1000 * (step + 1) + frame % 13 ns
        durations = [1_000 * (step + 1) + frame % 13 for frame in range(250_000)]
        assert summary[name]["count"] == 250_000
        assert summary[name]["max_ms"] == max(durations) / 1e6
        assert summary[name]["mean_ms"] == pytest.approx(sum(durations) / len(durations) / 1e6, rel=1e-12)


def test_spans_kept_before_the_writer_starts_are_written_and_older_ones_counted(tmp_path):
    tracer = Tracer(clock=ManualClock(), max_spans=10)
    for frame in range(25):
        tracer.record(Span("tick", "loop", frame, frame + 1, frame_id=frame))
    assert tracer.dropped_spans == 15
    with LiveSpanWriter(tracer, tmp_path / "spans.jsonl") as writer:
        for frame in range(25, 40):
            tracer.record(Span("tick", "loop", frame, frame + 1, frame_id=frame))
    assert writer.written == 25 and writer.missed_spans == 15 and tracer.dropped_spans == 15
    trace = read_span_file(tmp_path / "spans.jsonl").chrome_trace(dropped_spans=writer.missed_spans)
    assert [e["args"]["frame_id"] for e in trace["traceEvents"] if e["ph"] == "X"] == list(range(15, 40))
    assert trace["otherData"]["dropped_spans"] == 15
    for frame in range(40, 60):  # no writer any more: the window drops again
        tracer.record(Span("tick", "loop", frame, frame + 1, frame_id=frame))
    assert tracer.dropped_spans == 15 + 10


def test_a_full_disk_keeps_every_whole_line_and_says_which_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tracing, "os", DiskFillsUp(room=20_000))
    tracer = Tracer(clock=ManualClock())
    path = tmp_path / "spans.jsonl"
    with LiveSpanWriter(tracer, path, interval_s=10) as writer:
        for frame in range(1000):
            tracer.record(Span("composite", "compositor", frame, frame + 5, frame_id=frame))
            if frame % 100 == 99:
                writer.flush()
    assert writer.error is not None and writer.error.errno == errno.ENOSPC
    assert str(path) in str(writer.error) and "No space left on device" in str(writer.error)
    text = path.read_text()
    assert text.endswith("\n") and len(text) <= 20_000, "the torn last line was cut off"
    assert writer.written == text.count("\n") and writer.written + writer.missed_spans == 1000
    assert len(read_span_file(path)) == writer.written and read_span_file(path).unreadable_lines == 0


def test_lines_being_appended_are_skipped_and_counted(tmp_path):
    tracer = Tracer(clock=ManualClock())
    with LiveSpanWriter(tracer, tmp_path / "spans.jsonl"):
        tracer.record(Span("composite", "compositor", 0, 10, frame_id=1))
    with open(tmp_path / "spans.jsonl", "a") as handle:
        handle.write('{"name": "composite", "ca')
    span_file = read_span_file(tmp_path / "spans.jsonl")
    assert len(span_file) == 1 and span_file.unreadable_lines == 1
    assert span_file.summary()["composite"]["count"] == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert read_span_file(empty).summary() == {} and read_span_file(empty).chrome_trace() == Tracer().chrome_trace()
