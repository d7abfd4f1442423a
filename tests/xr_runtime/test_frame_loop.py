"""The frame loop never waits on a model: it keeps displaying when a service is slow,
stops answering or fails, holds the head when tracking is lost or a source gives NaN, and
records a span for every step."""

from __future__ import annotations

import math
import threading

import pytest
from pydantic import ValidationError

from genxr.platform.bus import InProcessBus
from genxr.platform.clock import MONOTONIC, ManualClock
from genxr.platform.messages import Pose
from genxr.platform.tracing import Tracer
from genxr.xr_runtime.timing import DisplayClock
from tests.helpers.frame_loop import WORLD, TurningHead, answer, make_loop


def test_world_frames_arrive_and_are_reprojected_to_the_newest_head():
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        loop, sink = make_loop(TurningHead(MONOTONIC), bus, MONOTONIC, rate_hz=200)
        metrics = loop.run(max_frames=60)
    assert metrics.frames == 60 and sink.count == 60
    assert metrics.world_updates >= 1
    latest = sink.latest
    assert latest.world_frame_id is not None and latest.world_frame_id < latest.frame_id
    assert latest.reprojection_deg > 0, "older content is turned to the newer head"
    summary = metrics.summary()
    assert summary["content_latency_ms_p50"] > 0 and summary["rotational_m2p_ms_p50"] > 0


def test_at_most_one_request_is_in_flight_and_none_queue():
    release = threading.Event()
    calls = []

    def slow(request):
        calls.append(request.request_id)
        release.wait(5)
        return answer(request)

    clock = ManualClock()
    with InProcessBus(workers=2) as bus:
        bus.serve(WORLD, slow)
        loop, _ = make_loop(TurningHead(clock), bus, clock, request_timeout_s=10.0)
        loop.run(max_frames=30)
        release.set()
    assert bus.stats.requests == 1, "the loop did not queue requests behind the slow one"


def test_a_service_that_stops_answering_times_out_and_frames_keep_coming_marked_stale():
    hang = threading.Event()
    served = []

    def stops_after_first(request):
        if served:
            hang.wait(10)
        served.append(request.request_id)
        return answer(request)

    with InProcessBus(workers=4) as bus:
        bus.serve(WORLD, stops_after_first)
        loop, sink = make_loop(TurningHead(MONOTONIC), bus, MONOTONIC, rate_hz=100, request_timeout_s=0.03)
        metrics = loop.run(max_frames=40)  # at least 0.4 s of real time: several deadlines pass
        hang.set()
    assert metrics.timeouts.get("world_model", 0) >= 1
    assert any(event.kind == "deadline_missed" for event in loop.events)
    assert sink.latest.stale and sink.latest.world_frame_id is not None, "old content is still re-projected"
    assert metrics.frames == 40 and metrics.stale_frames >= 1


def test_a_failing_service_is_logged_and_the_loop_goes_on():
    def dead_replica(request):
        raise RuntimeError("replica died")

    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, dead_replica)
        loop, sink = make_loop(TurningHead(MONOTONIC), bus, MONOTONIC, rate_hz=200)
        metrics = loop.run(max_frames=40)
    assert metrics.failures.get("world_model", 0) >= 1
    assert any(e.kind == "model_failed" and "replica died" in e.detail for e in loop.events)
    assert sink.count == 40 and sink.latest.stale


def test_nan_pose_from_a_source_holds_the_last_head_and_is_logged():
    clock = ManualClock()
    with InProcessBus() as bus:
        bus.serve(WORLD, answer)
        recorded = []
        loop, _ = make_loop(TurningHead(clock, broken={5, 6}), bus, clock, on_frame=recorded.append)
        metrics = loop.run(max_frames=10)
    assert metrics.frames == 10 and metrics.tracking_lost_frames == 2
    held = {f.frame_id: f for f in recorded}
    assert held[5].head == held[4].head and not held[5].head_tracked
    kinds = [e.kind for e in loop.events]
    assert kinds.count("tracking_lost") == 1 and kinds.count("tracking_regained") == 1
    detail = next(e.detail for e in loop.events if e.kind == "tracking_lost")
    assert "position.0: Input should be a finite number (got nan)" in detail


def test_lost_tracking_for_seconds_keeps_displaying_from_the_last_good_pose():
    clock = ManualClock()
    lost = set(range(10, 10 + 3 * 90))  # three seconds at 90 Hz
    with InProcessBus() as bus:
        bus.serve(WORLD, answer)
        shown = []
        loop, sink = make_loop(TurningHead(clock, lost=lost), bus, clock, on_frame=shown.append)
        metrics = loop.run(max_frames=300)
    assert metrics.frames == 300 and metrics.tracking_lost_frames == len(lost)
    assert all(f.head == shown[9].head for f in shown[10:280])
    assert shown[-1].head != shown[9].head


def test_display_clock_paces_at_the_rate_and_counts_missed_refreshes():
    clock = ManualClock()
    display = DisplayClock(90.0, clock)
    first = display.wait_frame()
    second = display.wait_frame()
    assert second.wake_time_ns - first.wake_time_ns == display.period_ns
    assert second.predicted_display_time_ns == second.wake_time_ns + display.period_ns
    clock.advance_ns(5 * display.period_ns)  # the loop overran
    third = display.wait_frame()
    assert third.missed_frames == 4 and display.missed_frames == 4


def test_every_step_records_a_span_on_its_track():
    clock = ManualClock()
    tracer = Tracer(clock=clock)
    with InProcessBus(tracer=tracer) as bus:
        bus.serve(WORLD, answer)
        loop, _ = make_loop(TurningHead(clock), bus, clock, tracer=tracer)
        loop.run(max_frames=5)
    tracks = {span.track for span in tracer.spans()}
    assert {"loop", "tracking", "compositor", "sink"} <= tracks
    names = {span.name for span in tracer.spans()}
    assert {"wait_frame", "read_tracking", "composite", "submit latest", "request world_model"} <= names


def test_source_end_stops_the_loop():
    clock = ManualClock()
    with InProcessBus() as bus:
        loop, sink = make_loop(TurningHead(clock, frames=7), bus, clock)
        metrics = loop.run()
    assert metrics.frames == 7 and sink.count == 7


def test_bad_chunk_size_is_refused():
    with InProcessBus() as bus, pytest.raises(ValueError, match="chunk_frames must be >= 1"):
        make_loop(TurningHead(MONOTONIC), bus, MONOTONIC, chunk_frames=0)


def test_validation_error_type_is_what_a_nan_pose_raises():
    with pytest.raises(ValidationError):
        Pose(position=(math.nan, 0.0, 0.0))
