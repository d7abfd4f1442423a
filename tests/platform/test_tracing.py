"""Tracing: spans on the injected clock, percentile summaries, and a Chrome Trace Event file
that is structurally valid for Perfetto (metadata, complete events, bound flow events)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genxr.platform.clock import ManualClock
from genxr.platform.tracing import Span, Tracer, chrome_trace, summarize
from tests.helpers.tracing import validate_chrome_trace


def traced_pipeline(frames: int = 3) -> Tracer:
    """Spans of a small session on a manual clock: tracking -> world model -> compositor."""
    clock = ManualClock()
    tracer = Tracer(clock=clock)
    for frame_id in range(frames):
        with tracer.span("read_tracking", track="tracking", frame_id=frame_id):
            clock.advance_ns(200_000)
        with tracer.span("world_model.step", track="world_model", frame_id=frame_id, source_frame_ids=[frame_id]):
            clock.advance_ns(5_000_000)
        with tracer.span("composite", track="compositor", frame_id=frame_id + 1, source_frame_ids=[frame_id]):
            clock.advance_ns(1_000_000)
    return tracer


def test_span_uses_the_injected_clock_and_tags():
    tracer = traced_pipeline(frames=1)
    spans = tracer.spans()
    assert [s.name for s in spans] == ["read_tracking", "world_model.step", "composite"]
    assert spans[1].start_ns == 200_000 and spans[1].duration_ns == 5_000_000
    assert spans[2].frame_id == 1 and spans[2].source_frame_ids == (0,)


def test_span_records_errors_and_reraises():
    tracer = Tracer(clock=ManualClock())
    with pytest.raises(KeyError):
        with tracer.span("decode", track="world_model", frame_id=1):
            raise KeyError("missing latent")
    (span,) = tracer.spans()
    assert span.args["error"] == "KeyError: 'missing latent'"


def test_yielded_args_are_recorded():
    tracer = Tracer(clock=ManualClock())
    with tracer.span("step", track="avatar") as args:
        args["frames_out"] = 4
    assert tracer.spans()[0].args == {"frames_out": 4}


def test_summary_percentiles_match_numpy():
    durations_ms = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    spans = [Span("step", "world_model", 0, int(d * 1e6)) for d in durations_ms]
    stats = summarize(spans)["step"]
    assert stats["count"] == 10
    assert stats["p50_ms"] == pytest.approx(np.percentile(durations_ms, 50))
    assert stats["p95_ms"] == pytest.approx(np.percentile(durations_ms, 95))
    assert stats["p99_ms"] == pytest.approx(np.percentile(durations_ms, 99))
    assert stats["max_ms"] == 100 and stats["mean_ms"] == pytest.approx(14.5)


def test_written_trace_is_valid_chrome_trace_json(tmp_path):
    tracer = traced_pipeline(frames=4)
    path = tracer.write_chrome_trace(tmp_path / "session" / "trace.json")
    trace = json.loads(path.read_text())
    validate_chrome_trace(trace)
    threads = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads == {"tracking", "world_model", "compositor"}
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == 12
    step = next(e for e in complete if e["name"] == "world_model.step")
    assert step["ts"] == 200.0 and step["dur"] == 5000.0 and step["args"]["frame_id"] == 0
    # Frame 0's sample flows from tracking through the world model to the compositor.
    flow0 = [e for e in trace["traceEvents"] if e["ph"] in "stf" and e["id"] == 0]
    assert [e["ph"] for e in flow0] == ["s", "t", "f"]
    assert not list(tmp_path.glob("session/*.tmp")), "written atomically"


def test_overlapping_spans_of_one_track_are_spread_over_lanes():
    spans = [Span("request", "world_model", 0, 100), Span("request", "world_model", 50, 150),
             Span("inner", "world_model", 10, 20)]
    trace = chrome_trace(spans)
    validate_chrome_trace(trace)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert names == {"world_model", "world_model #2"}


def test_memory_is_bounded_and_drops_are_counted():
    tracer = Tracer(clock=ManualClock(), max_spans=10)
    for i in range(25):
        tracer.record(Span("tick", "loop", i, i + 1, frame_id=i))
    assert len(tracer.spans()) == 10 and tracer.dropped_spans == 15
    assert tracer.spans()[0].frame_id == 15
    assert tracer.chrome_trace()["otherData"]["dropped_spans"] == 15


def test_bad_spans_and_limits_are_rejected():
    with pytest.raises(ValueError, match="ends .* before it starts"):
        Tracer().record(Span("x", "t", 10, 5))
    with pytest.raises(ValueError, match="max_spans must be >= 1"):
        Tracer(max_spans=0)
